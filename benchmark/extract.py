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
) -> Iterator[tuple[list[int], np.ndarray]]:
    """Group windows by length into batches of up to ``batch_size``; yields ``(track_indices, [B, N] audio)``.

    Buckets of rare lengths (a clip's short tail) are flushed oldest first once too many windows are pending, so
    memory stays bounded however long the split.
    """
    buckets: OrderedDict[int, list[tuple[int, np.ndarray]]] = OrderedDict()
    pending, max_pending = 0, 4 * batch_size
    for track_index, windows in loader:
        for w in windows:
            bucket = buckets.setdefault(len(w), [])
            bucket.append((track_index, w))
            pending += 1
            if len(bucket) == batch_size:
                pending -= len(bucket)
                del buckets[len(w)]
                yield [i for i, _ in bucket], np.stack([x for _, x in bucket])
        while pending > max_pending:
            _, bucket = buckets.popitem(last=False)
            pending -= len(bucket)
            yield [i for i, _ in bucket], np.stack([x for _, x in bucket])
    for bucket in buckets.values():
        yield [i for i, _ in bucket], np.stack([x for _, x in bucket])


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
) -> None:
    """Encode every window of ``tracks`` and write the time-mean of each hidden state to the cache."""
    dataset = _TrackWindows(tracks, encoder.sample_rate, spec, encoder.min_samples)
    loader = DataLoader(dataset, batch_size=1, collate_fn=_first, num_workers=num_workers, shuffle=False)
    writer = cache.writer(split, encoder.num_hidden_states, encoder.dim)
    start, audio_samples, windows, calls = time.perf_counter(), 0, 0, 0
    seen_tracks: set[int] = set()
    try:
        for track_indices, audio in _batches(_counting(loader, progress, seen_tracks), batch_size):
            with torch.inference_mode():
                states, frame_lengths = encoder.hidden_states(torch.from_numpy(audio).to(encoder.device))
            calls += 1
            pooled = _time_mean(states, frame_lengths)
            writer.append(pooled.numpy(), track_indices)
            audio_samples += audio.size
            windows += len(track_indices)
    except BaseException:
        writer.abort()
        raise
    writer.finish(
        [t.track_id for t in tracks], tracks_checksum(tracks), extra={"window": spec.as_dict(), "split": split}
    )
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
                    progress=lambda n, job=job: bar.advance(job, n), stats=stats,
                )
    return {s: cache.load(s) for s in tracks_by_split}, stats
