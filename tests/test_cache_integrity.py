"""The feature cache checks what it reuses: replaced audio, changed or truncated cache files and non-finite
features never reach a probe as if they were the features of the dataset.

Why: the hostile-user report behind these tests found that replacing the audio behind a cached entry, or
changing bytes of a cached ``train.f16``, was used as is (test accuracy 1.00 where a fresh cache gives 0.33), and
that a truncated index crashed every rerun. Each test below reproduces one of those faults and asserts that the
result equals a fresh extraction, with a warning that names the cache entry.
"""
from __future__ import annotations

import errno
import json
import logging
import os
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from benchmark.audio import WindowSpec
from benchmark.cache import CacheSpaceError, FeatureCache
from benchmark.extract import Pooling, load_or_extract
from benchmark.tasks.base import Track
from tests.planted import PlantedEncoder

SR = 16000
SPEC = WindowSpec(window=1.0, hop=1.0, min_fraction=0.25)
SHARD = 3


def _write(path: Path, seed: int, seconds: float = 1.5) -> None:
    x = (0.3 * np.random.default_rng(seed).standard_normal(int(seconds * SR))).astype(np.float32)
    sf.write(path, x, SR)


def _tracks(folder: Path, n: int = 7) -> list[Track]:
    folder.mkdir(parents=True, exist_ok=True)
    tracks = []
    for i in range(n):
        path = folder / f"clip{i:02d}.wav"
        if not path.exists():
            _write(path, i)
        tracks.append(Track(f"clip{i:02d}", path, "train", 0))
    return tracks


def _extract(encoder, tracks, root: Path, pooling: Pooling = Pooling()):
    cache = FeatureCache(root, {"test": "integrity", "pooling": pooling.mode})
    features, stats = load_or_extract(encoder, {"train": tracks}, cache, SPEC, batch_size=2, pooling=pooling,
                                      shard_tracks=SHARD)
    return cache, features["train"], stats


def _rows(features) -> np.ndarray:
    return np.asarray(features.features, dtype=np.float32)


def test_audio_replaced_behind_a_cached_entry_is_extracted_again(tmp_path):
    tracks = _tracks(tmp_path / "audio")
    _extract(PlantedEncoder(), tracks, tmp_path / "cache")
    _write(tracks[4].path, seed=99)  # same path, new content
    encoder = PlantedEncoder()
    _, features, _ = _extract(encoder, tracks, tmp_path / "cache")
    fresh = PlantedEncoder()
    _, reference, _ = _extract(fresh, tracks, tmp_path / "fresh")
    assert encoder.calls == fresh.calls > 0  # merged shards are gone: the split is extracted again
    assert np.array_equal(_rows(features), _rows(reference))


@pytest.mark.parametrize("damage", ["other finite values", "NaN bytes", "truncated data", "truncated index",
                                    "index not JSON", "index without checksum"])
def test_a_damaged_split_is_extracted_again_with_a_warning_naming_it(tmp_path, caplog, damage):
    tracks = _tracks(tmp_path / "audio")
    cache, reference, _ = _extract(PlantedEncoder(), tracks, tmp_path / "cache")
    expected = _rows(reference).copy()
    data, index = cache.dir / "train.f16", cache.dir / "train.index.json"
    raw = bytearray(data.read_bytes())
    if damage == "other finite values":
        raw[10:12] = np.float16(7.0).tobytes()
        data.write_bytes(bytes(raw))
    elif damage == "NaN bytes":
        raw[0:2] = np.float16(np.nan).tobytes()
        data.write_bytes(bytes(raw))
    elif damage == "truncated data":
        data.write_bytes(bytes(raw[: len(raw) // 2]))
    elif damage == "truncated index":
        index.write_text(index.read_text()[:40])
    elif damage == "index not JSON":
        index.write_bytes(b"\xff\xfe garbage")
    else:
        meta = json.loads(index.read_text())
        del meta["data_sha256"]
        index.write_text(json.dumps(meta))
    encoder = PlantedEncoder()
    with caplog.at_level(logging.WARNING, logger="benchmark.cache"):
        _, features, _ = _extract(encoder, tracks, tmp_path / "cache")
    assert encoder.calls > 0, "the damaged split was used as it was"
    assert np.array_equal(_rows(features), expected)
    warnings = [r.getMessage() for r in caplog.records if "extracting it again" in r.getMessage()]
    assert len(warnings) == 1 and str(cache.dir) in warnings[0] and "split train" in warnings[0], warnings
    # and the next run trusts the rewritten entry without running the encoder
    again = PlantedEncoder()
    _extract(again, tracks, tmp_path / "cache")
    assert again.calls == 0


def test_a_changed_shard_is_not_reused(tmp_path, caplog):
    tracks = _tracks(tmp_path / "audio")
    cache = FeatureCache(tmp_path / "cache", {"test": "integrity", "pooling": "time_mean"})
    # a failed track keeps the shards after the merge: make track 1's file unreadable
    (tmp_path / "audio" / "clip01.wav").write_bytes(b"not audio")
    load_or_extract(PlantedEncoder(), {"train": tracks}, cache, SPEC, batch_size=2, shard_tracks=SHARD)
    shard = cache.shard_dir("train", SHARD) / "000001.f16"
    raw = bytearray(shard.read_bytes())
    raw[0:2] = np.float16(3.0).tobytes()
    shard.write_bytes(bytes(raw))
    (cache.dir / "train.index.json").unlink()  # the split must be merged again from its shards
    encoder = PlantedEncoder()
    with caplog.at_level(logging.WARNING, logger="benchmark.cache"):
        features, _ = load_or_extract(encoder, {"train": tracks}, cache, SPEC, batch_size=2, shard_tracks=SHARD)
    assert any("shard 1 of split train does not hold the bytes" in r.getMessage() for r in caplog.records)
    assert encoder.calls > 0
    fresh_cache = FeatureCache(tmp_path / "fresh", {"test": "integrity", "pooling": "time_mean"})
    reference, _ = load_or_extract(PlantedEncoder(), {"train": tracks}, fresh_cache, SPEC, batch_size=2,
                                   shard_tracks=SHARD)
    assert np.array_equal(_rows(features["train"]), _rows(reference["train"]))


class NaNForOneTrack(PlantedEncoder):
    """Returns NaN hidden states for the windows of one clip (as an fp16 overflow would)."""

    def __init__(self, bad_length: int) -> None:
        super().__init__()
        self.bad_length = bad_length

    def hidden_states(self, waveforms, lengths=None):
        states, frames = super().hidden_states(waveforms, lengths)
        if waveforms.shape[-1] == self.bad_length:
            states = states.clone()
            states[:, 0] = float("nan")
        return states, frames


def test_non_finite_features_are_refused_at_write_naming_the_track(tmp_path, caplog):
    folder = tmp_path / "audio"
    tracks = _tracks(folder, n=4)
    _write(tracks[2].path, seed=2, seconds=0.7)  # a unique window length: its batch holds this clip only
    bad = len(sf.read(tracks[2].path)[0])
    with caplog.at_level(logging.WARNING, logger="benchmark.extract"):
        cache, features, stats = _extract(NaNForOneTrack(bad), tracks, tmp_path / "cache")
    assert stats.skipped["train"] == ["clip02"]
    assert "NaN or inf features" in stats.failures["train"]["clip02"]
    assert any("skipping track clip02" in r.getMessage() for r in caplog.records)
    assert np.isfinite(_rows(features)).all()
    assert 2 not in set(features.window_track.tolist())  # no row of clip02 in the cache
    assert len(np.unique(features.window_track)) == 3


def test_shards_left_by_a_kill_after_the_index_are_removed_by_the_next_run(tmp_path):
    tracks = _tracks(tmp_path / "audio")
    cache, _, _ = _extract(PlantedEncoder(), tracks, tmp_path / "cache")
    leftover = cache.shard_dir("train", SHARD)
    leftover.mkdir(parents=True)
    (leftover / "000000.f16").write_bytes(b"\0" * 64)  # as a kill -9 between the index and the rmtree leaves it
    (cache.dir / f"train.f16.tmp{999999999}").write_bytes(b"x")  # a dead writer's temporary
    encoder = PlantedEncoder()
    _extract(encoder, tracks, tmp_path / "cache")
    assert encoder.calls == 0
    assert not (cache.dir / "shards").exists()
    assert not list(cache.dir.glob("*.tmp*"))


def test_a_full_disk_names_the_cache_folder(tmp_path, monkeypatch):
    tracks = _tracks(tmp_path / "audio", n=3)
    real_open = open

    class FullFile:
        def __init__(self, handle):
            self.handle = handle

        def write(self, data):
            raise OSError(errno.ENOSPC, "No space left on device")

        def __getattr__(self, name):
            return getattr(self.handle, name)

    def full_open(path, mode="r", *args, **kwargs):
        handle = real_open(path, mode, *args, **kwargs)
        return FullFile(handle) if str(path).endswith(f".part{os.getpid()}") else handle  # a shard's rows

    monkeypatch.setattr("builtins.open", full_open)
    with pytest.raises(CacheSpaceError) as info:
        _extract(PlantedEncoder(), tracks, tmp_path / "cache")
    message = str(info.value)
    assert "the disk is full" in message and str(tmp_path / "cache") in message and "GB free" in message
    assert "cache_dir=" in message


def test_an_unchanged_cache_is_read_without_the_encoder(tmp_path):
    tracks = _tracks(tmp_path / "audio")
    _, first, _ = _extract(PlantedEncoder(), tracks, tmp_path / "cache")
    encoder = PlantedEncoder()
    _, second, _ = _extract(encoder, tracks, tmp_path / "cache")
    assert encoder.calls == 0 and np.array_equal(_rows(first), _rows(second))
