"""Feature extraction: decode, window, run the encoder once per window, pool, and commit to the cache in shards.

Decoding and resampling run in DataLoader workers so they overlap the forward pass. Windows of equal length are
batched together without padding, so a window's features never depend on what it was batched with (MERT's
group-norm conv stack normalises over the padded length, so padding would change them).

Work is committed in shards of ``shard_tracks`` consecutive tracks (see :mod:`benchmark.cache`), so an
interrupted extraction (``kill -9``, Ctrl-C, a crash) keeps every finished shard and a rerun of the same command
computes only the rest. The result equals an uninterrupted run bit for bit because batches are formed from one
shard's windows only, always in the same order (a shard's batches do not depend on where a run started), and
each shard's rows are stored in canonical (track, window, frame) order.

A file that cannot be decoded (:class:`~benchmark.audio.AudioReadError`) is skipped with a warning naming it and
reported per split (:class:`ExtractionStats` ``skipped``); the runner decides whether the split lost too much.
"""
from __future__ import annotations

import contextlib
import fcntl

import itertools
import logging
import time
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Any, Callable, Iterable, Iterator, Sequence

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset

from benchmark import audio as audio_module
from benchmark.audio import AudioReadError, WindowSpec, cropped_length, load_audio, window_bounds, zero_mean_unit_var
from benchmark.errors import ConfigError
from benchmark.cache import FeatureCache, ShardResult, SplitFeatures, file_stamp, track_list_checksum
from benchmark.distributed import SINGLE_PROCESS, Ranks
from benchmark.encoders.base import Encoder, file_normalization_eps, window_forward
from benchmark.tasks.base import Track

log = logging.getLogger(__name__)

DEFAULT_SHARD_TRACKS = 64
FLAGS = ("padded_short", "non_finite")


def _pad(audio: np.ndarray, min_samples: int) -> tuple[np.ndarray, bool]:
    """``benchmark.audio.pad_to_minimum`` when that module has it, else the same zero-padding here."""
    pad = getattr(audio_module, "pad_to_minimum", None)
    if pad is not None:
        return pad(audio, min_samples)
    if len(audio) >= min_samples:
        return audio, False
    return np.pad(audio, (0, min_samples - len(audio))), True


class _NonFiniteWatch(logging.Handler):
    """Notices load_audio's warning that NaN/inf samples were zeroed (the count is not returned otherwise)."""

    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.seen = False

    def emit(self, record: logging.LogRecord) -> None:
        if "NaN or inf" in record.getMessage():
            self.seen = True


class _TrackWindows(Dataset):
    """Yields ``(track_index, [window waveforms], info)`` per track; runs in DataLoader workers.

    ``info`` has ``error`` (the AudioReadError message, no windows then), ``padded`` (shorter than the encoder's
    receptive field, zero-padded) and ``non_finite`` (NaN/inf samples were zeroed by load_audio).

    ``normalize_eps``: None, or the variance floor of a whole-file z-normalisation (``model.normalize_scope=file``,
    from :func:`~benchmark.encoders.base.file_normalization_eps`): the decoded, resampled and cropped track is then
    normalised once, before padding and windowing, as MARBLE v1 does. A float, not the encoder: this runs in
    DataLoader workers.
    """

    def __init__(self, tracks: list[Track], indices: Sequence[int], sample_rate: int, spec: WindowSpec,
                 min_samples: int, normalize_eps: float | None = None) -> None:
        self.tracks, self.indices = tracks, list(indices)
        self.sample_rate, self.spec, self.min_samples = sample_rate, spec, min_samples
        self.normalize_eps = normalize_eps

    def __len__(self) -> int:
        return len(self.indices)

    def __getitem__(self, k: int) -> tuple[int, list[np.ndarray], dict[str, Any]]:
        i = self.indices[k]
        t = self.tracks[i]
        watch = _NonFiniteWatch()
        audio_log = logging.getLogger(audio_module.__name__)
        audio_log.addHandler(watch)
        try:
            audio = load_audio(t.path, self.sample_rate, t.offset, t.duration)
        except AudioReadError as exc:
            return i, [], {"error": str(exc)}
        finally:
            audio_log.removeHandler(watch)
        if self.normalize_eps is not None:
            audio = normalized_file(audio, self.sample_rate, self.spec, self.normalize_eps)
        audio, padded = _pad(audio, self.min_samples)
        windows = [audio[s:e] for s, e in window_bounds(len(audio), self.sample_rate, self.spec)]
        return i, windows, {"padded": bool(padded), "non_finite": watch.seen}


def normalized_file(audio: np.ndarray, sample_rate: int, spec: WindowSpec, eps: float) -> np.ndarray:
    """The part of a decoded track that is windowed (all of it, or its first ``spec.crop`` seconds), z-normalised
    as one waveform.

    Why the crop first: MARBLE v1 crops, resamples, then normalises what it kept, so samples after the crop must
    not move the statistics. Samples in a dropped short tail are still counted, as MARBLE counts them. The windows
    of the returned array are those of the original (``window_bounds`` crops at the same length).
    """
    return zero_mean_unit_var(audio[:cropped_length(len(audio), sample_rate, spec)], eps)


def _first(batch: list) -> object:
    return batch[0]


@dataclass
class ExtractionStats:
    """What an extraction cost and what it could not use, for the run record.

    ``skipped``: per split, the track ids whose audio could not be decoded (no features); ``flagged``: per split,
    ``padded_short`` (zero-padded to the encoder's receptive field) and ``non_finite`` (NaN/inf samples zeroed)
    track ids (a track whose features are NaN/inf is not cached: it is skipped, with the reason); ``failures``: per
    split, track id -> the decoder's message. These are read from the cache index, so a run served from the cache
    reports them too.
    """

    seconds: float = 0.0
    audio_seconds: float = 0.0
    windows: int = 0
    forward_calls: int = 0
    per_split: dict[str, dict[str, float]] = field(default_factory=dict)
    skipped: dict[str, list[str]] = field(default_factory=dict)
    failures: dict[str, dict[str, str]] = field(default_factory=dict)
    flagged: dict[str, dict[str, list[str]]] = field(default_factory=dict)


def _batches(
    loader: Iterable[tuple[int, list[np.ndarray]]], batch_size: int
) -> Iterator[tuple[list[int], list[int], np.ndarray]]:
    """Group windows by length into batches of up to ``batch_size``.

    Yields ``(track_indices, window_indices, [B, N] audio)``; ``window_indices`` is each window's position in
    its track (frame-level caches record it to place every frame in time). Buckets of rare lengths (a clip's
    short tail) are flushed oldest first once too many windows are pending, so memory stays bounded however long
    the split. The batches depend only on the sequence given (the extractor gives one shard's tracks in order).
    """
    buckets: OrderedDict[int, list[tuple[int, int, np.ndarray]]] = OrderedDict()
    pending, max_pending = 0, 4 * batch_size

    def emit(bucket: list[tuple[int, int, np.ndarray]]) -> tuple[list[int], list[int], np.ndarray]:
        return [i for i, _, _ in bucket], [w for _, w, _ in bucket], np.stack([x for _, _, x in bucket])

    for track_index, windows in loader:
        for window_index, w in enumerate(windows):
            bucket = buckets.setdefault(len(w), [])
            bucket.append((track_index, window_index, w))
            pending += 1
            if len(bucket) == batch_size:
                pending -= len(bucket)
                del buckets[len(w)]
                yield emit(bucket)
        while pending > max_pending:
            _, bucket = buckets.popitem(last=False)
            pending -= len(bucket)
            yield emit(bucket)
    for bucket in buckets.values():
        yield emit(bucket)


@dataclass(frozen=True)
class Pooling:
    """How the hidden states of a window become cache rows.

    ``mode="time_mean"`` (clip-level tasks): one row per window, the mean of each hidden state over the window's
    valid frames. ``mode="none"`` (frame-level tasks): one row per valid frame, in time order within the window.
    ``layers``: the hidden states kept, in this order (``None`` = all); frame-level caches keep only the
    requested ones because a row per frame of every layer would be tens of GB for a large encoder.
    """

    mode: str = "time_mean"
    layers: tuple[int, ...] | None = None

    def __post_init__(self) -> None:
        if self.mode not in ("time_mean", "none"):
            raise ValueError(f"unknown pooling {self.mode!r}; expected time_mean or none")

    def num_states(self, encoder: Encoder) -> int:
        return encoder.num_hidden_states if self.layers is None else len(self.layers)

    def rows(self, states: torch.Tensor, frame_lengths: torch.Tensor) -> tuple[np.ndarray, np.ndarray]:
        """``[S, B, T, D]`` states -> (``[rows, S', D]`` float32 rows, ``[B]`` rows per window)."""
        if self.layers is not None:
            states = states[list(self.layers)]
        if self.mode == "time_mean":
            return _time_mean(states, frame_lengths).numpy(), np.ones(states.shape[1], dtype=np.int64)
        counts = frame_lengths.clamp(max=states.shape[2]).to(torch.long).cpu().numpy()
        per_window = [states[:, b, :int(n)].transpose(0, 1) for b, n in enumerate(counts)]
        return torch.cat(per_window, dim=0).float().cpu().numpy(), counts


TIME_MEAN = Pooling()


def track_key(t: Track) -> str:
    """What identifies a track's audio in a split: id, offset and duration (a song may give several clips)."""
    return f"{t.track_id}|{t.offset}|{t.duration}"


def content_key(t: Track) -> str:
    """:func:`track_key` plus the audio file's ``size:mtime_ns``: the key of a track's rows in the cache.

    Why: the cache must not serve the features of audio that was replaced behind the same path (same name, new
    content). A stat per track costs microseconds; hashing every file on every run would cost a full read of the
    dataset. Copying a dataset without keeping modification times (``cp`` without ``-p``) therefore means one new
    extraction, never wrong features.
    """
    stamp = file_stamp(t.path)
    return f"{track_key(t)}|{'absent' if stamp is None else f'{stamp[0]}:{stamp[1]}'}"


def tracks_checksum(tracks: list[Track]) -> str:
    return track_list_checksum(content_key(t) for t in tracks)


def shard_groups(num_tracks: int, shard_tracks: int, positions: Sequence[int] | None = None) -> dict[int, list[int]]:
    """Shard number -> indices of the tracks it holds, in order. ``positions`` (default ``0..n-1``) place each
    track in the task's full split list, so dropping a missing file does not move later tracks to other shards."""
    positions = list(range(num_tracks)) if positions is None else list(positions)
    if len(positions) != num_tracks:
        raise ValueError(f"{len(positions)} positions for {num_tracks} tracks")
    groups: dict[int, list[int]] = {}
    for i, p in enumerate(positions):
        groups.setdefault(int(p) // int(shard_tracks), []).append(i)
    return dict(sorted(groups.items()))


def extract_split(
    encoder: Encoder,
    tracks: list[Track],
    cache: FeatureCache,
    split: str,
    spec: WindowSpec,
    batch_size: int,
    num_workers: int = 0,
    progress: Callable[[int], None] | None = None,
    stats: ExtractionStats | None = None,
    pooling: Pooling = TIME_MEAN,
    shard_tracks: int = DEFAULT_SHARD_TRACKS,
    positions: Sequence[int] | None = None,
    ranks: Ranks = SINGLE_PROCESS,
    on_plan: Callable[[int], None] | None = None,
) -> None:
    """Encode every window of ``tracks`` not yet in a complete shard, commit shard by shard, then finalise.

    With several processes (``ranks``) every process calls this: the shards still to compute are dealt out
    round robin, each rank commits its own, and rank 0 merges them after a barrier. ``on_plan`` is told how many
    tracks this process will account for (its shards and those already done), for a progress bar's total.
    With ``pooling.mode == "none"`` the split's index also lists ``windows``: ``[track, window, rows]`` in row
    order, so a reader can place every frame in its track and in time.
    """
    if int(shard_tracks) < 1:
        raise ConfigError(f"shard_tracks={shard_tracks!r}: must be a whole number >= 1")
    row_shape = (pooling.num_states(encoder), encoder.dim)
    keys = [content_key(t) for t in tracks]
    groups = shard_groups(len(tracks), shard_tracks, positions)
    shard_of = {i: s for s, idx in groups.items() for i in idx}

    def finished_shards() -> dict[int, ShardResult]:
        found = {}
        for s, idx in groups.items():
            result = cache.complete_shard(split, shard_tracks, s, row_shape, [keys[i] for i in idx])
            if result is not None:
                found[s] = result
        return found

    # Rank 0 alone tidies the folder and decides what is left to do (the other ranks could see a shard that a
    # fast rank just committed and deal the work out differently); the broadcast is also the ranks' meeting point.
    done: dict[int, ShardResult] = {}
    if ranks.is_zero:
        cache.prepare()
        done = finished_shards()
    finished = set(ranks.broadcast(sorted(done)))  # one collective: every rank deals out the same list
    todo = [s for s in groups if s not in finished]
    mine = todo[ranks.rank::ranks.world_size]  # round robin: shards are equal-sized runs of tracks
    if on_plan is not None:
        on_plan(sum(len(groups[s]) for s in mine) + sum(len(groups[s]) for s in done))
    if progress is not None and done:
        progress(sum(len(groups[s]) for s in done))
    start, audio_samples, windows, calls = time.perf_counter(), 0, 0, 0
    if mine:
        indices = [i for s in mine for i in groups[s]]
        dataset = _TrackWindows(tracks, indices, encoder.sample_rate, spec, encoder.min_samples,
                                normalize_eps=file_normalization_eps(encoder))
        forward = window_forward(encoder)  # windows of files the workers normalised (normalize_scope=file)
        loader = DataLoader(dataset, batch_size=1, collate_fn=_first, num_workers=num_workers, shuffle=False)
        for s, items in itertools.groupby(loader, key=lambda item: shard_of[item[0]]):
            idx = groups[s]
            local = {i: n for n, i in enumerate(idx)}
            failed: dict[str, dict[str, Any]] = {}
            flagged: dict[str, list[str]] = {name: [] for name in FLAGS}
            dropped: set[int] = set()  # positions in the shard of tracks refused for non-finite features
            shard_calls = 0

            def windows_of(items=items, local=local, failed=failed, flagged=flagged):
                for i, track_windows, info in items:
                    t = tracks[i]
                    if info.get("error"):
                        log.warning("skipping track %s (%s split): %s", t.track_id, split, info["error"])
                        failed[keys[i]] = {"reason": info["error"], "path": str(t.path),
                                           "stamp": file_stamp(t.path)}
                    if info.get("padded"):
                        flagged["padded_short"].append(keys[i])
                    if info.get("non_finite"):
                        flagged["non_finite"].append(keys[i])
                    yield local[i], track_windows
                    if progress is not None:
                        progress(1)

            writer = cache.shard_writer(split, shard_tracks, s, row_shape)
            try:
                for positions_in_shard, window_indices, audio in _batches(windows_of(), batch_size):
                    with torch.inference_mode():
                        states, frame_lengths = forward(torch.from_numpy(audio).to(encoder.device))
                    shard_calls += 1
                    rows, counts = pooling.rows(states, frame_lengths)
                    rows16 = rows.astype(np.float16)
                    finite = np.isfinite(rows16).reshape(len(rows16), -1).all(axis=1)
                    if not finite.all():  # refused at write time: the track is reported, never cached
                        bad = np.repeat(np.arange(len(counts)), counts)[~finite]
                        for b in sorted(set(bad.tolist())):
                            refuse_non_finite(tracks[idx[positions_in_shard[b]]], keys[idx[positions_in_shard[b]]],
                                              failed, dropped, positions_in_shard[b], split)
                    writer.append(rows16, positions_in_shard, window_indices, counts)
                    audio_samples += audio.size
                    windows += len(positions_in_shard)
                flagged = {name: sorted(set(ks), key=[keys[i] for i in idx].index) for name, ks in flagged.items()}
                done[s] = writer.commit([keys[i] for i in idx], failed, flagged, shard_calls, drop=dropped)
            except BaseException:
                writer.abort()
                raise
            calls += shard_calls
    ranks.barrier()  # every rank has committed its shards
    if ranks.is_zero:
        done.update({s: r for s, r in finished_shards().items() if s not in done})
        lost = [s for s in groups if s not in done]
        if lost:
            raise RuntimeError(f"cache shards {lost} of split {split} are missing after extraction: a rank's "
                               f"commit did not reach {cache.dir} (is the cache folder shared by every node?)")
        shards = [(s, done[s]) for s in groups]
        any_failed = any(r.failed for _, r in shards)
        extra: dict[str, Any] = {"window": spec.as_dict(), "split": split, "frame_level": pooling.mode == "none"}
        cache.finalise(split, shard_tracks, shards, [t.track_id for t in tracks], keys, track_list_checksum(keys),
                       row_shape, extra=extra, keep_shards=any_failed)
    ranks.barrier()  # no rank reads the split before rank 0 has merged it
    if stats is not None:
        seconds = time.perf_counter() - start
        stats.seconds += seconds
        stats.audio_seconds += audio_samples / encoder.sample_rate
        stats.windows += windows
        stats.forward_calls += calls
        stats.per_split[split] = {"seconds": seconds, "windows": windows, "tracks": len(tracks),
                                  "shards": len(groups), "shards_reused": len(groups) - len(todo),
                                  "shards_this_process": len(mine)}


def refuse_non_finite(track: Track, key: str, failed: dict[str, dict[str, Any]], dropped: set[int],
                      position: int, split: str) -> None:
    """Leave a track whose features hold NaN or inf out of the cache, as a failed track with the reason.

    Why: a NaN row would reach the probes and stop training with an error far from its cause (or, averaged
    away, bias a score); refused here, the track is named, counted against ``max_missing_fraction`` like an
    unreadable file, and extracted again once its audio file changes.
    """
    if key in failed:
        return
    reason = ("the encoder returned NaN or inf features for this track (try model.dtype=fp32, or check the audio "
              "for extreme values)")
    log.warning("skipping track %s (%s split): %s", track.track_id, split, reason)
    failed[key] = {"reason": reason, "path": str(track.path), "stamp": file_stamp(track.path)}
    dropped.add(position)


def _time_mean(states: torch.Tensor, frame_lengths: torch.Tensor) -> torch.Tensor:
    """``[S, B, T, D]`` -> ``[B, S, D]`` mean over each item's valid frames."""
    states = states.float()
    frame_lengths = frame_lengths.to(states.device)
    T = states.shape[2]
    mask = (torch.arange(T, device=states.device)[None, :] < frame_lengths[:, None]).to(states.dtype)  # [B, T]
    summed = torch.einsum("sbtd,bt->bsd", states, mask)
    return (summed / frame_lengths.clamp(min=1)[:, None, None].to(states.dtype)).cpu()


@contextlib.contextmanager
def split_lock(cache: FeatureCache, split: str) -> Iterator[None]:
    """Exclusive lock on one split of one cache folder, held while it is extracted.

    The jobs of a sweep (seeds, probes, launched in parallel by joblib or submitit) share one cache entry; without
    the lock they would write the same shards at once and one job's finalisation would delete the other's work in
    progress. ``flock`` is released by the kernel when a process dies, so a killed job never blocks a rerun. (On
    network file systems without flock support, run the extraction stage once before fanning out the seeds.)
    """
    cache.dir.mkdir(parents=True, exist_ok=True)
    with open(cache.dir / f"{split}.lock", "a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def load_or_extract(
    encoder: Encoder,
    tracks_by_split: dict[str, list[Track]],
    cache: FeatureCache,
    spec: WindowSpec,
    batch_size: int,
    num_workers: int = 0,
    console=None,
    pooling: Pooling = TIME_MEAN,
    shard_tracks: int = DEFAULT_SHARD_TRACKS,
    positions: dict[str, Sequence[int]] | None = None,
    ranks: Ranks = SINGLE_PROCESS,
) -> tuple[dict[str, SplitFeatures], ExtractionStats]:
    """Return the features of every split, running the encoder only for what is missing from the cache.

    Every split is extracted (and cached) before anything is judged, so a run stopped afterwards for too many
    unreadable files loses no work. ``stats.skipped`` / ``failures`` / ``flagged`` come from the cache indices.
    With several processes, every rank calls this and takes part in each split (see :func:`extract_split`);
    rank 0 holds the split's lock for all of them and decides what is missing, and the returned stats add up the
    work of every rank (``seconds`` is the slowest rank's).
    """
    stats = ExtractionStats()
    # one stat of every audio file per run (the checksums hold each file's size and mtime), not one per check
    checksums = {s: tracks_checksum(tr) for s, tr in tracks_by_split.items()} if ranks.is_zero else {}
    missing = ranks.broadcast([s for s in tracks_by_split if not cache.has(s, checksums[s])]
                              if ranks.is_zero else None)
    if missing:
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

        with Progress(
            TextColumn("extract {task.description}"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn(),
            console=console, transient=False, disable=not ranks.is_zero,
        ) as bar:
            for split in missing:
                # concurrent jobs (a sweep's seeds) extract a split once; the ranks of one job share rank 0's lock
                with split_lock(cache, split) if ranks.is_zero else contextlib.nullcontext():
                    if ranks.broadcast(cache.has(split, checksums[split]) if ranks.is_zero else None):
                        continue  # another process finished it while this one waited
                    label = split if ranks.world_size == 1 else f"{split} (rank 0 of {ranks.world_size})"
                    job = bar.add_task(label, total=len(tracks_by_split[split]))
                    extract_split(
                        encoder, tracks_by_split[split], cache, split, spec, batch_size, num_workers,
                        progress=lambda n, job=job: bar.advance(job, n), stats=stats, pooling=pooling,
                        shard_tracks=shard_tracks, positions=(positions or {}).get(split), ranks=ranks,
                        on_plan=lambda total, job=job: bar.update(job, total=total),
                    )
    if ranks.world_size > 1:
        stats = _summed(ranks.gather_objects(stats))
    if ranks.is_zero:
        for split in tracks_by_split:
            cache.tidy(split)  # shards left by a process killed after its split's index was written
    ranks.barrier()
    for split in tracks_by_split:
        index = cache.index(split)
        failed = index.get("failed", {})
        stats.skipped[split] = list(failed)
        stats.failures[split] = {tid: f["reason"] for tid, f in failed.items()}
        stats.flagged[split] = {name: list(index.get("flagged", {}).get(name, [])) for name in FLAGS}
    return {s: cache.load(s) for s in tracks_by_split}, stats


def _summed(per_rank: list[ExtractionStats]) -> ExtractionStats:
    """The work of all ranks as one run's: counts add up, wall time is the slowest rank's."""
    total = ExtractionStats(seconds=max(s.seconds for s in per_rank))
    for s in per_rank:
        total.audio_seconds += s.audio_seconds
        total.windows += s.windows
        total.forward_calls += s.forward_calls
        for split, numbers in s.per_split.items():
            merged = total.per_split.setdefault(split, {})
            for key, value in numbers.items():
                if key == "seconds":
                    merged[key] = max(merged.get(key, 0.0), value)
                elif key in ("windows", "shards_this_process"):
                    merged[key] = merged.get(key, 0) + value
                else:  # the same on every rank: tracks, shards, shards_reused
                    merged[key] = value
    return total


def drop_featureless(features: SplitFeatures, index: dict[str, Any] | None = None
                     ) -> tuple[SplitFeatures, np.ndarray, dict[str, Any] | None]:
    """Leave out the tracks that have no row (their audio could not be decoded).

    Returns the split with ``track_ids`` reduced and ``window_track`` renumbered, the kept track positions (to
    select targets with), and, when given, the cache index with ``track_ids`` and ``windows`` renumbered the same
    way (frame-level layouts read it). Targets, evaluators and chance levels must all use the kept tracks only.
    """
    n = len(features.track_ids)
    has_rows = np.bincount(features.window_track, minlength=n) > 0 if len(features.window_track) else np.zeros(n, bool)
    kept = np.nonzero(has_rows)[0]
    if len(kept) == n:
        return features, kept, index
    renumber = np.full(n, -1, dtype=np.int64)
    renumber[kept] = np.arange(len(kept))
    reduced = SplitFeatures(features=features.features, window_track=renumber[features.window_track],
                            track_ids=[features.track_ids[i] for i in kept])
    if index is not None:
        index = dict(index)
        index["track_ids"] = reduced.track_ids
        if "windows" in index:
            index["windows"] = [[int(renumber[t]), w, r] for t, w, r in index["windows"]]
    return reduced, kept, index
