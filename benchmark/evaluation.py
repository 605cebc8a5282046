"""Evaluators: turn the per-row outputs of every probe head into metrics, the way the task scores them.

A row is what the probe sees: a window of a clip-level task (window predictions are averaged per track before
scoring) or a frame of a frame-level task (frames are decoded per track, e.g. into beat times). The probe and
the sweep only know this interface, so a new kind of task brings its evaluator and reuses all the training code.
Evaluators are built by the task's kind (:mod:`benchmark.kinds`), which also declares the direction of the
primary metric they name.
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Protocol

import numpy as np
import torch

from benchmark import metrics as M
from benchmark.kinds.base import get_kind

if TYPE_CHECKING:
    from benchmark.kinds.clip import ClipKind


class Evaluator(Protocol):
    """Scores every head from its row outputs ``[heads, rows, outputs]`` (after the output activation).

    ``primary`` names the metric that selection reads; it must be a metric a registered kind declares
    (:func:`benchmark.kinds.metric`), which gives its direction: the probe refuses a name it cannot look up
    rather than assume that larger is better.
    """

    primary: str

    def __call__(self, row_scores: torch.Tensor) -> list[dict[str, float]]:
        ...


def average_per_track(window_scores: torch.Tensor, window_track: torch.Tensor, num_tracks: int) -> torch.Tensor:
    """Mean of ``[H, windows, C]`` scores over the windows of each track -> ``[H, tracks, C]``."""
    H, _, C = window_scores.shape
    sums = torch.zeros(H, num_tracks, C, dtype=window_scores.dtype)
    sums.index_add_(1, window_track, window_scores)
    counts = torch.bincount(window_track, minlength=num_tracks).clamp(min=1).to(window_scores.dtype)
    return sums / counts[None, :, None]


class ClipEvaluator:
    """Clip-level tasks: average window predictions per track, then the kind's ``compute_metrics``.

    ``kind`` is a :class:`~benchmark.kinds.ClipKind` or its name (``"multiclass"``...).
    """

    def __init__(self, kind: "str | ClipKind", labels: list[str], window_track: np.ndarray,
                 track_targets: np.ndarray):
        self.kind = get_kind(kind) if isinstance(kind, str) else kind
        self.task_type, self.labels = self.kind.name, list(labels)
        self.primary = self.kind.primary.name
        self.window_track = torch.as_tensor(window_track, dtype=torch.long)
        self.track_targets = track_targets

    def __call__(self, row_scores: torch.Tensor) -> list[dict[str, float]]:
        track_scores = average_per_track(row_scores, self.window_track, len(self.track_targets))
        return [self.kind.compute_metrics(self.track_targets, track_scores[h].numpy(), self.labels)
                for h in range(track_scores.shape[0])]


class KeyEnsembleEvaluator:
    """MARBLE v1's GiantSteps key protocol (the ``key`` kind with ``task.ensemble=marble``): four per-song
    strategies over a song's window logits, and the test score of the strategy validation chose.

    Each head's row outputs are its window LOGITS (the kind's loss, ``cross_entropy_logits``, does not activate
    them). Per head it reports ``ensemble_vote``, ``ensemble_max``, ``ensemble_gmean``, ``ensemble_mean`` (mean
    weighted scores over songs, :func:`benchmark.metrics.key_ensemble_scores`), ``ensemble_best`` (their maximum),
    ``ensemble_val_select`` (the score of the strategy chosen on validation), ``ensemble_val_select_index`` (that
    strategy's position in :data:`~benchmark.metrics.KEY_ENSEMBLE_STRATEGIES`: 0 vote, 1 max, 2 gmean, 3 mean; a
    number because metrics are numbers in records) and ``weighted_score`` / ``accuracy`` of the ``mean`` strategy.

    Without ``select_from`` (the validation evaluator) the strategy is chosen on this split's own scores
    (:func:`benchmark.metrics.best_key_ensemble`), remembered per head in :attr:`chosen`, and ``ensemble_val_select``
    equals ``ensemble_best``. With it (the test evaluator) each head uses the strategy ``select_from`` chose on its
    most recent call: :func:`benchmark.sweep.train_sweep` scores valid and then test on each head's restored best
    checkpoint, so that is the strategy best on the validation pass of the selected checkpoint.

    Difference from MARBLE: its prober keeps the strategy of the highest validation score seen over ALL validation
    passes, Lightning's sanity-check pass (two batches, before training) included. Outside the sanity check that
    is the same pass as the checkpoint MARBLE tests (both keep the first strictly higher ``best_ensemble_score``),
    so the only difference is that a sanity-check pass, scored on two batches, can never pick the strategy here
    (this suite runs no sanity check). Re-predicting the restored weights could in principle also break an exact
    tie between strategies differently from the epoch's own pass.
    """

    def __init__(self, labels: list[str], window_track: np.ndarray, track_targets: np.ndarray,
                 select_from: "KeyEnsembleEvaluator | None" = None):
        self.labels = list(labels)
        self.window_track = np.asarray(window_track, dtype=np.int64)
        self.track_targets = np.asarray(track_targets)
        self.select_from = select_from
        # selection and early stopping read ensemble_best on validation; the headline test number is val-select
        self.primary = "ensemble_best" if select_from is None else "ensemble_val_select"
        self.chosen: list[str] | None = None

    def __call__(self, row_scores: torch.Tensor) -> list[dict[str, float]]:
        logits = row_scores.double().numpy() if isinstance(row_scores, torch.Tensor) else np.asarray(row_scores)
        per_head = [M.key_ensemble_scores(self.track_targets, head, self.window_track, self.labels)
                    for head in logits]
        if self.select_from is None:
            chosen = self.chosen = [M.best_key_ensemble(s) for s in per_head]
        else:
            chosen = self._validation_choice(len(per_head))
        return [self._with_selection(s, name) for s, name in zip(per_head, chosen)]

    def _validation_choice(self, heads: int) -> list[str]:
        """The strategy per head that the validation evaluator chose last; refused when it has not scored these
        heads, since a test score of a strategy nobody chose on validation would be a test-set choice."""
        chosen = self.select_from.chosen
        if chosen is None or len(chosen) != heads:
            raise RuntimeError(f"val-select: the validation evaluator has chosen strategies for "
                               f"{0 if chosen is None else len(chosen)} head(s), {heads} are scored on this split; "
                               "score valid before test, with the same heads")
        return list(chosen)

    @staticmethod
    def _with_selection(scores: dict[str, float], chosen: str) -> dict[str, float]:
        """A head's scores plus the best strategy's score and the chosen strategy's score and index."""
        best = max(scores[f"ensemble_{name}"] for name in M.KEY_ENSEMBLE_STRATEGIES)
        return {**scores, "ensemble_best": best, "ensemble_val_select": scores[f"ensemble_{chosen}"],
                "ensemble_val_select_index": float(M.KEY_ENSEMBLE_STRATEGIES.index(chosen))}
