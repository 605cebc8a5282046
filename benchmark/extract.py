"""Feature extraction: decode, window, run the encoder once per window, pool, and stream into the cache.

Decoding and resampling run in DataLoader workers so they overlap the forward pass. Windows of equal length are
batched together without padding, so a window's features never depend on what it was batched with (MERT's
group-norm conv stack normalises over the padded length, so padding would change them).
"""
from __future__ import annotations

import logging
import time
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Callable, Iterator

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset

from benchmark.audio import WindowSpec, load_audio, window_bounds
from benchmark.cache import FeatureCache, SplitFeatures, track_list_checksum
from benchmark.encoders.base import Encoder
from tasks.base import Track

log = logging.getLogger(__name__)


class _TrackWindows(Dataset):
    """Yields ``(track_index, [window waveforms])`` for each track; runs in DataLoader workers."""

    def __init__(self, tracks: list[Track], sample_rate: int, spec: WindowSpec, min_samples: int) -> None:
        self.tracks, self.sample_rate, self.spec, self.min_samples = tracks, sample_rate, spec, min_samples

    def __len__(self) -> int:
        return len(self.tracks)

    def __getitem__(self, i: int) -> tuple[int, list[np.ndarray]]:
        t = self.tracks[i]
        audio = load_audio(t.path, self.sample_rate, t.offset, t.duration)
        if len(audio) < self.min_samples:
            audio = np.pad(audio, (0, self.min_samples - len(audio)))
        return i, [audio[s:e] for s, e in window_bounds(len(audio), self.sample_rate, self.spec)]


def _first(batch: list) -> object:
    return batch[0]


@dataclass
class ExtractionStats:
    """What an extraction cost, for the run record."""

    seconds: float = 0.0
    audio_seconds: float = 0.0
    windows: int = 0
    forward_calls: int = 0
    per_split: dict[str, dict[str, float]] = field(default_factory=dict)


def _batches(
    loader: Iterator[tuple[int, list[np.ndarray]]], batch_size: int
) -> Iterator[tuple[list[int], list[int], np.ndarray]]:
    """Group windows by length into batches of up to ``batch_size``.

    Yields ``(track_indices, window_indices, [B, N] audio)``; ``window_indices`` is each window's position in
    its track (frame-level caches record it to place every frame in time). Buckets of rare lengths (a clip's
    short tail) are flushed oldest first once too many windows are pending, so memory stays bounded however long
    the split.
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
) -> None:
    """Encode every window of ``tracks`` and write its rows (see :class:`Pooling`) to the cache.

    With ``pooling.mode == "none"`` the split's index also lists ``windows``: ``[track, window, rows]`` in the
    order the rows were written, so a reader can place every frame in its track and in time.
    """
    dataset = _TrackWindows(tracks, encoder.sample_rate, spec, encoder.min_samples)
    loader = DataLoader(dataset, batch_size=1, collate_fn=_first, num_workers=num_workers, shuffle=False)
    writer = cache.writer(split, pooling.num_states(encoder), encoder.dim)
    start, audio_samples, windows, calls = time.perf_counter(), 0, 0, 0
    seen_tracks: set[int] = set()
    window_rows: list[list[int]] = []
    try:
        for track_indices, window_indices, audio in _batches(_counting(loader, progress, seen_tracks), batch_size):
            with torch.inference_mode():
                states, frame_lengths = encoder.hidden_states(torch.from_numpy(audio).to(encoder.device))
            calls += 1
            rows, counts = pooling.rows(states, frame_lengths)
            writer.append(rows, np.repeat(track_indices, counts))
            if pooling.mode == "none":
                window_rows.extend([int(t), int(w), int(n)] for t, w, n in zip(track_indices, window_indices, counts))
            audio_samples += audio.size
            windows += len(track_indices)
    except BaseException:
        writer.abort()
        raise
    extra: dict[str, object] = {"window": spec.as_dict(), "split": split}
    if pooling.mode == "none":
        extra["windows"] = window_rows
    writer.finish([t.track_id for t in tracks], tracks_checksum(tracks), extra=extra)
    if stats is not None:
        seconds = time.perf_counter() - start
        stats.seconds += seconds
        stats.audio_seconds += audio_samples / encoder.sample_rate
        stats.windows += windows
        stats.forward_calls += calls
        stats.per_split[split] = {"seconds": seconds, "windows": windows, "tracks": len(tracks)}


def _counting(loader, progress, seen: set[int]):
    for item in loader:
        yield item
        if progress is not None:
            progress(1)


def _time_mean(states: torch.Tensor, frame_lengths: torch.Tensor) -> torch.Tensor:
    """``[S, B, T, D]`` -> ``[B, S, D]`` mean over each item's valid frames."""
    states = states.float()
    frame_lengths = frame_lengths.to(states.device)
    T = states.shape[2]
    mask = (torch.arange(T, device=states.device)[None, :] < frame_lengths[:, None]).to(states.dtype)  # [B, T]
    summed = torch.einsum("sbtd,bt->bsd", states, mask)
    return (summed / frame_lengths.clamp(min=1)[:, None, None].to(states.dtype)).cpu()


def tracks_checksum(tracks: list[Track]) -> str:
    return track_list_checksum(f"{t.track_id}|{t.offset}|{t.duration}" for t in tracks)


def load_or_extract(
    encoder: Encoder,
    tracks_by_split: dict[str, list[Track]],
    cache: FeatureCache,
    spec: WindowSpec,
    batch_size: int,
    num_workers: int = 0,
    console=None,
    pooling: Pooling = TIME_MEAN,
) -> tuple[dict[str, SplitFeatures], ExtractionStats]:
    """Return the features of every split, running the encoder only for splits missing from the cache."""
    stats = ExtractionStats()
    missing = [s for s, tr in tracks_by_split.items() if not cache.has(s, tracks_checksum(tr))]
    if missing:
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

        with Progress(
            TextColumn("extract {task.description}"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn(),
            console=console, transient=False,
        ) as bar:
            for split in missing:
                job = bar.add_task(split, total=len(tracks_by_split[split]))
                extract_split(
                    encoder, tracks_by_split[split], cache, split, spec, batch_size, num_workers,
                    progress=lambda n, job=job: bar.advance(job, n), stats=stats, pooling=pooling,
                )
    return {s: cache.load(s) for s in tracks_by_split}, stats
