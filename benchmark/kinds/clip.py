"""The clip-level kinds: one target per track, scored from the track's window predictions averaged.

``multiclass`` (accuracy), ``key`` (MIREX weighted score), ``multilabel`` (macro ROC-AUC) and ``regression``
(mean R2). The arithmetic of each metric stays in :mod:`benchmark.metrics` (thin wrappers of scikit-learn and
mir_eval, so scores match published ones); a kind decides which of them it reports, which is primary and in which
direction, how its targets are encoded and what "chance" means for it.
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

from benchmark import metrics as M
from benchmark.kinds.base import Metric, TaskKind, register_kind
from benchmark.kinds.losses import BCE, CROSS_ENTROPY, MSE

if TYPE_CHECKING:
    from benchmark.evaluation import ClipEvaluator
    from benchmark.tasks.base import Task, Track


def standardized_targets(targets: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Regression targets z-scored with train mean and population std, for every split.

    The probe's MSE and learning rate then see unit-scale targets whatever the units (BPM, dB, Hz); R2 is unchanged
    because the same affine map applies to targets and, through training, to predictions.
    """
    mean = targets["train"].mean(axis=0)
    std = targets["train"].std(axis=0)
    std = np.where(std > 1e-12, std, 1.0)
    return {s: ((y - mean) / std).astype(np.float32) for s, y in targets.items()}


class ClipKind(TaskKind):
    """A kind with one target per track: window predictions are averaged per track, then scored from arrays.

    Subclasses set the class attributes of :class:`~benchmark.kinds.base.TaskKind` and implement
    :meth:`encode_targets` and :meth:`scores`; :meth:`chance` defaults to the training mean as a constant
    prediction.
    """

    level = "clip"

    def probe_targets(self, targets: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        """The per-split track targets the probe trains on and is scored against (by default as encoded)."""
        return targets

    def compute_metrics(self, y_true: Any, y_score: Any, labels: list[str]) -> dict[str, float]:
        """All metrics of one split from ``y_true`` (as :meth:`encode_targets` gives them) and the ``[N, C]``
        activated outputs; see :func:`benchmark.metrics.compute_metrics` for shapes and errors."""
        return self.scores(np.asarray(y_true), np.asarray(y_score), list(labels))

    def scores(self, y_true: np.ndarray, y_score: np.ndarray, labels: list[str]) -> dict[str, float]:
        raise NotImplementedError

    def chance(self, train_targets: np.ndarray, test_targets: np.ndarray, labels: list[str]) -> float:
        """Test score (primary metric) of the best constant prediction fitted on train: here the training mean
        (tags: each tag's base rate; regression: each target's mean). Scored like every real prediction."""
        mean = np.asarray(train_targets, dtype=np.float64).mean(axis=0)
        constant = np.broadcast_to(mean, test_targets.shape).copy()
        return self.compute_metrics(test_targets, constant, labels)[self.primary.name]

    def build_evaluator(self, labels: list[str], window_track: np.ndarray,
                        track_targets: np.ndarray) -> "ClipEvaluator":
        """Scores every head on one split: window outputs averaged per track, then :meth:`compute_metrics`."""
        from benchmark.evaluation import ClipEvaluator

        return ClipEvaluator(self, labels, window_track, track_targets)


class ClassKind(ClipKind):
    """One class per track (an int64 index into the labels), trained with softmax cross-entropy."""

    loss = CROSS_ENTROPY

    def encode_targets(self, task: "Task", tracks: list["Track"]) -> np.ndarray:
        """int ``[N]`` class indices."""
        return np.asarray([t.target for t in tracks], dtype=np.int64)

    def chance(self, train_targets: np.ndarray, test_targets: np.ndarray, labels: list[str]) -> float:
        """The single class whose constant prediction scores best on train (the majority class for accuracy; for
        the key weighted score a near-by key can score better), scored on test."""
        n_out = len(labels)

        def constant(y: np.ndarray, c: int) -> float:
            scores = np.zeros((len(y), n_out))
            scores[:, c] = 1.0
            return self.compute_metrics(y, scores, labels)[self.primary.name]

        best = self.primary.best(range(n_out), key=lambda c: constant(train_targets, c))
        return constant(test_targets, best)


class MulticlassKind(ClassKind):
    """Single-label classification (genre, chord): top-1 accuracy of the argmax."""

    name = "multiclass"
    primary = Metric("accuracy")
    metrics = (primary,)

    def scores(self, y_true: np.ndarray, y_score: np.ndarray, labels: list[str]) -> dict[str, float]:
        return M.multiclass_scores(y_true, y_score, labels)


class KeyKind(ClassKind):
    """Musical key (24 mir_eval key labels): MIREX weighted score of the argmax key, and exact-key accuracy."""

    name = "key"
    primary = Metric("weighted_score")
    metrics = (primary, Metric("accuracy"))

    def scores(self, y_true: np.ndarray, y_score: np.ndarray, labels: list[str]) -> dict[str, float]:
        return M.key_scores(y_true, y_score, labels)


class MultilabelKind(ClipKind):
    """Tagging: multi-hot targets, sigmoid outputs, macro ROC-AUC (primary) and AP over the scorable tags."""

    name = "multilabel"
    loss = BCE
    primary = Metric("roc_auc")
    metrics = (primary, Metric("average_precision"), Metric("tags_scored"))

    def encode_targets(self, task: "Task", tracks: list["Track"]) -> np.ndarray:
        """float ``[N, C]`` multi-hot from each track's tuple of tag indices."""
        y = np.zeros((len(tracks), task.num_outputs), dtype=np.float32)
        for i, t in enumerate(tracks):
            y[i, list(t.target)] = 1.0
        return y

    def scores(self, y_true: np.ndarray, y_score: np.ndarray, labels: list[str]) -> dict[str, float]:
        return M.multilabel_scores(y_true, y_score, labels)


class RegressionKind(ClipKind):
    """Real-valued targets (tempo, arousal/valence): MSE on z-scored targets, mean R2 over targets (primary) and
    ``r2_<label>`` per target."""

    name = "regression"
    loss = MSE
    primary = Metric("r2")
    metrics = (primary,)

    def find_metric(self, name: str) -> Metric | None:
        if name.startswith("r2_"):  # per-target R2 follows r2
            return Metric(name, self.primary.higher_is_better)
        return super().find_metric(name)

    def encode_targets(self, task: "Task", tracks: list["Track"]) -> np.ndarray:
        """float ``[N, T]`` from each track's tuple of target values."""
        return np.asarray([list(t.target) for t in tracks], dtype=np.float32).reshape(len(tracks), -1)

    def probe_targets(self, targets: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        """Z-scored with train statistics (:func:`standardized_targets`): unit scale for the MSE and the
        learning rates whatever the units; R2 is unchanged by it."""
        return standardized_targets(targets)

    def scores(self, y_true: np.ndarray, y_score: np.ndarray, labels: list[str]) -> dict[str, float]:
        return M.regression_scores(y_true, y_score, labels)


MULTICLASS = register_kind(MulticlassKind())
MULTILABEL = register_kind(MultilabelKind())
REGRESSION = register_kind(RegressionKind())
KEY = register_kind(KeyKind())
