"""The seam between feature extraction and the layer sweep: what any task level hands to the probes."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from benchmark.cache import FeatureCache, SplitFeatures
from benchmark.evaluation import Evaluator
from benchmark.extract import ExtractionStats


@dataclass
class ProbeData:
    """Everything a layer sweep needs, whatever the task's level.

    ``splits`` rows are windows (clip-level tasks) or frames (frame-level tasks); ``train_targets`` has one
    target per training row; ``state_ids`` names the hidden state at each position of the features' layer axis.
    """

    splits: dict[str, SplitFeatures]
    train_targets: np.ndarray
    evaluators: dict[str, Evaluator]
    loss: str
    num_outputs: int
    chance: float
    cache: FeatureCache
    extraction: ExtractionStats
    state_ids: list[int] | None = None
