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
