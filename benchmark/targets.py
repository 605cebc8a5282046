"""Target types that tasks build and the pipeline reads: core types with no dependencies of their own.

Why a module of its own: tasks construct their targets and the frame-level path consumes them; both depend on
this module, and neither on the other, so task modules never import pipeline code.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class BeatTarget:
    """The annotation of one track: beat times and the downbeat times among them (seconds, ascending)."""

    beats: tuple[float, ...]
    downbeats: tuple[float, ...] = ()

    def arrays(self) -> tuple[np.ndarray, np.ndarray]:
        return np.asarray(self.beats, dtype=np.float64), np.asarray(self.downbeats, dtype=np.float64)


CHORD_ROOTS: tuple[str, ...] = ("C", "C#", "D", "D#", "E", "F", "F#", "G", "G#", "A", "A#", "B")
CHORD_VOCABULARY: tuple[str, ...] = ("N",) + tuple(f"{r}:{q}" for r in CHORD_ROOTS for q in ("maj", "min"))
"""The 25 classes of frame-level chord recognition, in output order: no chord, then 12 roots x {maj, min} in
mir_eval syntax (the MIREX ``majmin`` vocabulary). Here, not in the kind, so that tasks name their labels from the
same list without importing pipeline code."""


@dataclass(frozen=True)
class ChordSegments:
    """The chord annotation of one track: contiguous segments ``(start, end, label)`` in seconds, labels in
    mir_eval syntax (``C:maj``, ``A:min``, ``N`` for no chord).

    Why segments and not per-frame labels: they are what chord datasets publish (``.lab`` files) and what
    ``mir_eval.chord`` scores against; the frame grid is the encoder's business and differs between encoders,
    so per-frame targets are derived from the segments when the frames are known.
    """

    starts: tuple[float, ...]
    ends: tuple[float, ...]
    labels: tuple[str, ...]

    def __post_init__(self) -> None:
        if not len(self.starts) == len(self.ends) == len(self.labels):
            raise ValueError(f"{len(self.starts)} starts, {len(self.ends)} ends and {len(self.labels)} labels")
        if any(e <= s for s, e in zip(self.starts, self.ends)):
            raise ValueError("every chord segment must end after it starts")
        if any(b < a for a, b in zip(self.ends, self.starts[1:])):
            raise ValueError("chord segments must be in time order and must not overlap")

    def intervals(self) -> np.ndarray:
        """``[n, 2]`` (start, end) seconds, as ``mir_eval.io.load_labeled_intervals`` gives them."""
        return np.asarray(list(zip(self.starts, self.ends)), dtype=np.float64).reshape(-1, 2)
