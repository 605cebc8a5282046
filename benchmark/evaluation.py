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
