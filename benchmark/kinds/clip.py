"""The clip-level kinds: one target per track, scored from the track's window predictions averaged.

``multiclass`` (accuracy), ``key`` (MIREX weighted score), ``multilabel`` (macro ROC-AUC) and ``regression``
(mean R2). The arithmetic of each metric stays in :mod:`benchmark.metrics` (thin wrappers of scikit-learn and
mir_eval, so scores match published ones); a kind decides which of them it reports, which is primary and in which
direction, how its targets are encoded and what "chance" means for it.
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Any, Mapping

import numpy as np

from benchmark import metrics as M
from benchmark.kinds.base import Metric, TaskKind, register_kind
from benchmark.kinds.losses import BCE, CROSS_ENTROPY, CROSS_ENTROPY_LOGITS, MSE

if TYPE_CHECKING:
    from benchmark.evaluation import ClipEvaluator, Evaluator, KeyEnsembleEvaluator
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

    def build_evaluators(self, labels: list[str], window_tracks: Mapping[str, np.ndarray],
                         track_targets: Mapping[str, np.ndarray]) -> dict[str, "Evaluator"]:
        """The evaluator of each split of ``window_tracks`` (valid and test), by default each on its own.

        One call for all splits because a kind may score test with what validation chose (the key kind's MARBLE
        ensemble scores test with the strategy that was best on validation); the default does not link them.
        """
        return {s: self.build_evaluator(labels, window_tracks[s], track_targets[s]) for s in window_tracks}


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


class BalancedMulticlassKind(ClassKind):
    """Single-label classification with unequal classes (dance tune types): class-balanced accuracy, the mean of
    the per-class recalls, is primary (validation selects on it), and plain accuracy is reported beside it."""

    name = "multiclass_balanced"
    primary = Metric("balanced_accuracy")
    metrics = (primary, Metric("accuracy"))

    def scores(self, y_true: np.ndarray, y_score: np.ndarray, labels: list[str]) -> dict[str, float]:
        return M.balanced_multiclass_scores(y_true, y_score, labels)


# The scores of the key kind's MARBLE ensemble (KeyEnsembleKind), all weighted scores: higher is better.
ENSEMBLE_METRICS: tuple[Metric, ...] = tuple(
    Metric(f"ensemble_{name}") for name in (*M.KEY_ENSEMBLE_STRATEGIES, "best", "val_select"))


class KeyKind(ClassKind):
    """Musical key (24 mir_eval key labels): MIREX weighted score of the argmax key, and exact-key accuracy."""

    name = "key"
    primary = Metric("weighted_score")
    metrics = (primary, Metric("accuracy"))

    def find_metric(self, name: str) -> Metric | None:
        """Also the ``ensemble_*`` scores of :class:`KeyEnsembleKind`: that variant is not registered (its tasks
        keep ``task_type`` key), and selection looks a metric's direction up in the registry."""
        return super().find_metric(name) or next((m for m in ENSEMBLE_METRICS if m.name == name), None)

    def scores(self, y_true: np.ndarray, y_score: np.ndarray, labels: list[str]) -> dict[str, float]:
        return M.key_scores(y_true, y_score, labels)

    def marble_ensemble(self) -> "KeyEnsembleKind":
        """This kind scored with MARBLE v1's per-song ensemble (:data:`KEY_ENSEMBLE`), for a key task whose config
        asks for it (``giantsteps_key``'s ``task.ensemble=marble``)."""
        return KEY_ENSEMBLE


class KeyEnsembleKind(KeyKind):
    """The key kind scored as MARBLE v1 scores GiantSteps (``task.ensemble=marble``): four per-song strategies.

    Its heads' window logits go to the evaluator unactivated (loss ``cross_entropy_logits``, trained exactly as
    ``cross_entropy``), which scores ``vote``, ``max``, ``gmean`` and ``mean`` per song
    (:class:`benchmark.evaluation.KeyEnsembleEvaluator`). Validation's primary metric is ``ensemble_best`` (their
    maximum: early stopping, checkpoints, learning-rate decay and the layer choice); the test evaluator reports,
    as its primary, ``ensemble_val_select``: the test score of the strategy that validation chose for that head.

    Why not a registered kind of its own: the task type stays ``key`` (records and the field's tables group key
    tasks by it), and the registry's list of clip-level kinds stays the list of task types. A task that wants
    this variant returns :meth:`KeyKind.marble_ensemble` as its ``kind`` (``tasks/giantsteps_key.py``).
    """

    loss = CROSS_ENTROPY_LOGITS
    primary = ENSEMBLE_METRICS[-2]  # ensemble_best
    metrics = (primary, *ENSEMBLE_METRICS[:-2], ENSEMBLE_METRICS[-1], *KeyKind.metrics)

    def scores(self, y_true: np.ndarray, y_score: np.ndarray, labels: list[str]) -> dict[str, float]:
        """The evaluator's metrics for one score row per song (one clip per song: every strategy then predicts
        the row's argmax); what the chance level of a constant key is scored with."""
        from benchmark.evaluation import KeyEnsembleEvaluator

        one_clip_each = np.arange(len(y_true))
        return KeyEnsembleEvaluator(labels, one_clip_each, y_true)(np.asarray(y_score, dtype=np.float64)[None])[0]

    def build_evaluator(self, labels: list[str], window_track: np.ndarray,
                        track_targets: np.ndarray) -> "KeyEnsembleEvaluator":
        """A split scored on its own: the strategy is chosen on the split itself (what validation does)."""
        from benchmark.evaluation import KeyEnsembleEvaluator

        return KeyEnsembleEvaluator(labels, window_track, track_targets)

    def build_evaluators(self, labels: list[str], window_tracks: Mapping[str, np.ndarray],
                         track_targets: Mapping[str, np.ndarray]) -> dict[str, "Evaluator"]:
        """Valid chooses each head's strategy; test scores the strategy valid chose (MARBLE's val-select)."""
        from benchmark.evaluation import KeyEnsembleEvaluator

        valid = self.build_evaluator(labels, window_tracks["valid"], track_targets["valid"])
        out: dict[str, Evaluator] = {"valid": valid}
        for split in window_tracks:
            if split != "valid":
                out[split] = KeyEnsembleEvaluator(labels, window_tracks[split], track_targets[split],
                                                  select_from=valid)
        return {s: out[s] for s in window_tracks}


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
MULTICLASS_BALANCED = register_kind(BalancedMulticlassKind())
MULTILABEL = register_kind(MultilabelKind())
REGRESSION = register_kind(RegressionKind())
KEY = register_kind(KeyKind())
KEY_ENSEMBLE = KeyEnsembleKind()  # not registered: see KeyEnsembleKind
