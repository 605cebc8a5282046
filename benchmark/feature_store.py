"""The feature store: where a run's features live and how extraction commits them.

Its own module (between the data and the probes) so that every path that reads features, the clip-level runner
and the frame-level path alike, builds cache entries and extraction settings the same way without importing the
runner (which orchestrates them and so must not be imported back).
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from benchmark.audio import WindowSpec
from benchmark.cache import FeatureCache, SplitFeatures
from benchmark.encoders.base import Encoder
from benchmark.errors import ConfigError
from benchmark.extract import DEFAULT_SHARD_TRACKS, ExtractionStats, track_key
from benchmark.tasks.base import SPLITS, SharedAudio, Task, Track

# The one cache "split" that holds every item of a shared audio collection (Task.shared_audio).
SHARED_SPLIT = "all"


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
                  dataset: dict[str, Any] | None = None, **extra: Any) -> FeatureCache:
    """The cache entry of everything that changes the features; ``extra`` adds fields (e.g. the layers kept).

    ``dataset`` replaces the task's own dataset identity (a shared audio collection's, :class:`SharedAudio`)."""
    return FeatureCache(cache_dir, {
        "encoder": encoder.identity(),
        "sample_rate": encoder.sample_rate,
        "window": spec.as_dict(),
        "pooling": pooling,
        "dataset": task.dataset_identity() if dataset is None else dataset,
        **extra,
    })


def shared_extraction_plan(shared: SharedAudio) -> tuple[dict[str, list[Track]], dict[str, list[int]]]:
    """The items of a shared collection to extract (those whose file is present) and their positions in it.

    Every present item is extracted, not only the ones the running task lists, so that the collection's other
    tasks find all their tracks in the cache; positions in the full list keep the shards stable when files are
    added later.
    """
    seen: set[str] = set()
    for item in shared.tracks:
        if item.track_id in seen:
            raise ValueError(f"shared audio {shared.identity}: item {item.track_id!r} is listed twice")
        seen.add(item.track_id)
    present = [(i, t) for i, t in enumerate(shared.tracks) if t.path.is_file()]
    return {SHARED_SPLIT: [t for _, t in present]}, {SHARED_SPLIT: [i for i, _ in present]}


class RowSubset:
    """Some rows of a (memory-mapped) feature array, read lazily: what the probes see of a shared extraction.

    Why not a copy: a shared collection's cache (all MTG-Jamendo tracks) can hold tens of GB; each task reads
    only its tracks' rows, batch by batch, as it reads an ordinary split's memory map. Supports what the probe
    code does with a split's features: ``len``, ``shape``, ``dtype``, slices (another lazy subset), integer index
    arrays (an array) and ``np.asarray``.
    """

    def __init__(self, base: np.ndarray, rows: np.ndarray) -> None:
        self.base, self.rows = base, np.asarray(rows, dtype=np.int64)

    def __len__(self) -> int:
        return len(self.rows)

    @property
    def shape(self) -> tuple[int, ...]:
        return (len(self.rows), *self.base.shape[1:])

    @property
    def dtype(self) -> np.dtype:
        return self.base.dtype

    def __getitem__(self, key: Any) -> Any:
        if isinstance(key, slice):
            return RowSubset(self.base, self.rows[key])
        return np.asarray(self.base[self.rows[np.asarray(key)]])

    def __array__(self, dtype: Any = None, copy: Any = None) -> np.ndarray:
        out = np.asarray(self.base[self.rows])
        return out if dtype is None else out.astype(dtype, copy=False)


def select_tracks(shared: SplitFeatures, tracks: list[Track]) -> SplitFeatures:
    """The rows of ``tracks`` from a shared collection's features, as a split of the task's own.

    ``track_ids`` are the task's tracks in its order; a track without rows (its audio could not be decoded) keeps
    its place with none, as in an ordinary split, so that :func:`~benchmark.extract.drop_featureless` treats both
    alike. A task track that the collection does not list is a bug in the task's ``shared_audio``.
    """
    position = {tid: i for i, tid in enumerate(shared.track_ids)}
    unknown = [t.track_id for t in tracks if t.track_id not in position]
    if unknown:
        raise ValueError(f"{len(unknown)} track(s) of the task are not items of its shared audio collection "
                         f"(e.g. {unknown[:3]}): the task's shared_audio() must list every track it reads")
    order = np.argsort(shared.window_track, kind="stable")
    counts = np.bincount(shared.window_track, minlength=len(shared.track_ids))
    starts = np.concatenate([[0], np.cumsum(counts)[:-1]])
    rows: list[np.ndarray] = []
    owner: list[np.ndarray] = []
    for j, t in enumerate(tracks):
        k = position[t.track_id]
        rows.append(order[starts[k]:starts[k] + counts[k]])
        owner.append(np.full(counts[k], j, dtype=shared.window_track.dtype))
    selected = np.concatenate(rows) if rows else np.zeros(0, np.int64)
    window_track = np.concatenate(owner) if owner else np.zeros(0, shared.window_track.dtype)
    return SplitFeatures(features=RowSubset(shared.features, selected), window_track=window_track,
                         track_ids=[t.track_id for t in tracks])


def split_shared_stats(stats: ExtractionStats, by_split: dict[str, list[Track]]) -> ExtractionStats:
    """An extraction's per-item outcomes (undecodable, flagged) under the task's splits instead of ``all``."""
    split_of = {t.track_id: s for s, tracks in by_split.items() for t in tracks}

    def regroup(ids: Any) -> dict[str, list[str]]:
        out: dict[str, list[str]] = {s: [] for s in by_split}
        for tid in ids:
            if tid in split_of:
                out[split_of[tid]].append(tid)
        return out

    failures = stats.failures.get(SHARED_SPLIT, {})
    flagged = stats.flagged.get(SHARED_SPLIT, {})
    by_name = {name: regroup(ids) for name, ids in flagged.items()}
    return ExtractionStats(
        seconds=stats.seconds, audio_seconds=stats.audio_seconds, windows=stats.windows,
        forward_calls=stats.forward_calls, per_split=dict(stats.per_split),
        skipped=regroup(stats.skipped.get(SHARED_SPLIT, [])),
        failures={s: {tid: failures[tid] for tid in ids} for s, ids in regroup(failures).items()},
        flagged={s: {name: by_name[name][s] for name in flagged} for s in by_split})
