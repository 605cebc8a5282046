"""The feature store: where a run's features live and how extraction commits them.

Its own module (between the data and the probes) so that every path that reads features, the clip-level runner
and the frame-level path alike, builds cache entries and extraction settings the same way without importing the
runner (which orchestrates them and so must not be imported back).
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

from benchmark.audio import WindowSpec
from benchmark.cache import FeatureCache
from benchmark.encoders.base import Encoder
from benchmark.errors import ConfigError
from benchmark.extract import DEFAULT_SHARD_TRACKS, track_key
from benchmark.tasks.base import SPLITS, Task, Track


def track_positions(tracks: list[Track]) -> dict[str, dict[str, int]]:
    """Per split, track key -> position in the task's full split list (missing files included).

    The extractor groups tracks into shards by this position, so a file dropped because it is missing (or was
    deleted after it failed to decode) does not shift later tracks into other shards: their work is reused.
    """
    out: dict[str, dict[str, int]] = {s: {} for s in SPLITS}
    for t in tracks:
        split = out.setdefault(t.split, {})
        split.setdefault(track_key(t), len(split))
    return out


def shard_positions(by_split: dict[str, list[Track]], known: dict[str, dict[str, int]]) -> dict[str, list[int]]:
    """Positions of the usable tracks in their full split lists."""
    return {s: [known[s][track_key(t)] for t in tr] for s, tr in by_split.items()}


def extraction_settings(config: dict[str, Any], positions: dict[str, list[int]] | None) -> dict[str, Any]:
    """Keyword arguments of :func:`~benchmark.extract.load_or_extract` that say how work is committed.

    ``shard_tracks`` (configs/config.yaml, default 64) is how many tracks the extractor commits to the cache at a
    time. It is an execution setting: record.LOCATION_KEYS leaves it out of the protocol checksum.
    """
    shard_tracks = config.get("shard_tracks", DEFAULT_SHARD_TRACKS)
    if isinstance(shard_tracks, bool) or not isinstance(shard_tracks, int) or shard_tracks < 1:
        raise ConfigError(f"shard_tracks={shard_tracks!r}: must be a whole number >= 1 (default "
                          f"{DEFAULT_SHARD_TRACKS}: tracks committed to the cache together)")
    return {"shard_tracks": shard_tracks, "positions": positions}


def feature_cache(cache_dir: Path, encoder: Encoder, spec: WindowSpec, task: Task, pooling: str = "time_mean",
                  **extra: Any) -> FeatureCache:
    """The cache entry of everything that changes the features; ``extra`` adds fields (e.g. the layers kept)."""
    return FeatureCache(cache_dir, {
        "encoder": encoder.identity(),
        "sample_rate": encoder.sample_rate,
        "window": spec.as_dict(),
        "pooling": pooling,
        "dataset": task.dataset_identity(),
        **extra,
    })
