"""``model.normalize_scope``: MARBLE v1 z-normalises each file's whole waveform once, then cuts it into windows.

With ``file`` (and normalisation on) the extractor's DataLoader workers normalise the decoded, cropped track with
``Wav2Vec2FeatureExtractor``'s formula before windowing, and the encoder skips its own per-window step. The
reference here is the library itself: ``transformers.Wav2Vec2FeatureExtractor(do_normalize=True)`` applied to the
whole decoded file, cut into the same windows, and fed to the encoder with its normalisation off.

The signal is built so the two scopes must disagree: 12 s whose first half is quiet (amplitude 0.01) and second
half loud (0.5), in 5 s windows (two windows; the 2 s tail is dropped). Per window, the quiet first window is
scaled up to unit variance; per file, it stays quiet (std ~0.03), because the loud half dominates the statistics.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import soundfile as sf
import torch
from transformers import Wav2Vec2FeatureExtractor

from benchmark.audio import WindowSpec, load_audio, window_bounds
from benchmark.cache import FeatureCache
from benchmark.embed import embed_waveform
from benchmark.encoders import build_encoder
from benchmark.encoders.base import file_normalization_eps, window_forward
from benchmark.encoders.baselines import HandcraftedSpec
from benchmark.encoders.mert import MertSpec
from benchmark.errors import ConfigError
from benchmark.extract import _TrackWindows, extract_split
from benchmark.feature_store import feature_cache
from benchmark.record import run_checksum
from benchmark.resources import config_file_values
from benchmark.tasks.base import Track
from tests.conftest import FIXTURES, REPO_ROOT

SR = 24000  # MERT-v1's rate: the file is written at it, so decoding is exact (no resampling)
SPEC = WindowSpec(window=5.0, hop=5.0, min_fraction=0.5)
TOL = 1e-5  # the native loader's tolerance against reference hidden states (tests/test_mert_native.py)
TASK = type("Task", (), {"dataset_identity": staticmethod(lambda: {"task": "scope"})})()


@pytest.fixture(autouse=True)
def _offline(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """No network, and the weight-hash sidecar in tmp."""
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("BENCHMARK_HASH_CACHE", str(tmp_path / "sha256.json"))


def mert(**overrides: Any):
    """The mert-v1-95m model yaml on the tiny fixture checkpoint (do_normalize false in its preprocessor config)."""
    cfg = config_file_values(REPO_ROOT / "configs" / "model" / "mert-v1-95m.yaml")
    cfg["checkpoint"] = str(FIXTURES / "v1-95m-tiny")
    cfg.update(overrides)
    return build_encoder(cfg)


@pytest.fixture(scope="module")
def clip(tmp_path_factory: pytest.TempPathFactory) -> Track:
    """12 s: a tone in noise at amplitude 0.01 for 6 s, then 0.5; a float WAV at 24 kHz (decoded bit for bit)."""
    t = np.arange(12 * SR) / SR
    rng = np.random.default_rng(0)
    x = (np.sin(2 * np.pi * 220 * t) + 0.3 * rng.standard_normal(len(t))) * np.where(t < 6.0, 0.01, 0.5)
    path = tmp_path_factory.mktemp("audio") / "clip.wav"
    sf.write(path, x.astype(np.float32), SR, subtype="FLOAT")
    return Track(track_id="clip", path=path, split="train", target=0)


def library_windows(track: Track) -> np.ndarray:
    """The whole decoded file through Wav2Vec2FeatureExtractor(do_normalize=True), then cut into SPEC's windows."""
    decoded = load_audio(track.path, SR)
    processor = Wav2Vec2FeatureExtractor(feature_size=1, sampling_rate=SR, padding_value=0.0, do_normalize=True)
    whole = processor(decoded, sampling_rate=SR, return_tensors="np")["input_values"][0]
    return np.stack([whole[s:e] for s, e in window_bounds(len(decoded), SR, SPEC)])


def extractor_windows(track: Track, encoder) -> np.ndarray:
    """What the extractor's dataset yields for ``track`` with the flag the extractor reads from ``encoder``."""
    dataset = _TrackWindows([track], [0], SR, SPEC, encoder.min_samples, normalize_eps=file_normalization_eps(encoder))
    _, windows, info = dataset[0]
    assert "error" not in info
    return np.stack(windows)


# ------------------------------------------------------------------------------------------------- the numbers
def test_file_scope_equals_the_library_normalising_the_whole_file_once(clip: Track) -> None:
    file_scope = mert(normalize=True, normalize_scope="file")
    assert file_scope.input_normalization_scope == "file" and file_normalization_eps(file_scope) == 1e-7
    windows = extractor_windows(clip, file_scope)
    reference = library_windows(clip)
    assert windows.shape == reference.shape == (2, 5 * SR)
    assert float(np.abs(windows - reference).max()) < 1e-5  # the input step itself
    # the quiet first window stays quiet: the loud half sets the file's statistics
    assert windows[0].std() < 0.05 and 1.1 < windows[1].std() < 1.5

    states, frames = window_forward(file_scope)(torch.from_numpy(windows))
    expected, expected_frames = mert(normalize=False).hidden_states(torch.from_numpy(reference))
    assert states.shape == expected.shape and torch.equal(frames, expected_frames)
    assert float((states - expected).abs().max()) < TOL


def test_file_scope_takes_its_statistics_from_the_cropped_part_only(clip: Track) -> None:
    """task.crop_seconds=6 keeps the quiet half alone: normalised as a file it is at unit variance, as the library
    makes the first 6 s (MARBLE crops, then normalises what it kept); the loud samples after the crop count for
    nothing."""
    file_scope = mert(normalize=True, normalize_scope="file")
    cropped = WindowSpec(window=5.0, hop=5.0, min_fraction=0.5, crop=6.0)
    dataset = _TrackWindows([clip], [0], SR, cropped, file_scope.min_samples,
                            normalize_eps=file_normalization_eps(file_scope))
    _, windows, _ = dataset[0]
    processor = Wav2Vec2FeatureExtractor(feature_size=1, sampling_rate=SR, padding_value=0.0, do_normalize=True)
    first6 = processor(load_audio(clip.path, SR)[:6 * SR], sampling_rate=SR, return_tensors="np")["input_values"][0]
    assert [len(w) for w in windows] == [5 * SR]  # the 1 s tail is dropped, but its samples are in the statistics
    assert float(np.abs(windows[0] - first6[:5 * SR]).max()) < 1e-5
    assert 0.95 < windows[0].std() < 1.05


def test_file_scope_differs_from_window_scope_on_the_quiet_window(clip: Track) -> None:
    file_scope = mert(normalize=True, normalize_scope="file")
    window_scope = mert(normalize=True)
    states, _ = window_forward(file_scope)(torch.from_numpy(extractor_windows(clip, file_scope)))
    raw = extractor_windows(clip, window_scope)  # no file step: the decoded audio as it is
    np.testing.assert_array_equal(raw, np.stack([load_audio(clip.path, SR)[s:e] for s, e in
                                                 window_bounds(12 * SR, SR, SPEC)]))
    per_window, _ = window_scope.hidden_states(torch.from_numpy(raw))
    assert float((states[:, 0] - per_window[:, 0]).abs().max()) > 0.05  # the quiet window: scaled up per window


def test_window_scope_is_what_it_was(clip: Track) -> None:
    """window (the default) normalises each window on its own, as Wav2Vec2FeatureExtractor does per window, and
    an encoder built with the key equals one built without it, bit for bit."""
    before = mert(normalize=True)
    explicit = mert(normalize=True, normalize_scope="window")
    assert before.input_normalization_scope == explicit.input_normalization_scope == "window"
    assert file_normalization_eps(explicit) is None and window_forward(explicit) == explicit.hidden_states
    raw = torch.from_numpy(extractor_windows(clip, explicit))
    states, _ = explicit.hidden_states(raw)
    assert torch.equal(states, before.hidden_states(raw)[0])
    processor = Wav2Vec2FeatureExtractor(feature_size=1, sampling_rate=SR, padding_value=0.0, do_normalize=True)
    per_window = processor(list(raw.numpy()), sampling_rate=SR, return_tensors="np")["input_values"]
    expected, _ = mert(normalize=False).hidden_states(torch.from_numpy(np.asarray(per_window)))
    assert float((states - expected).abs().max()) < TOL


def test_the_extractor_normalises_in_its_workers_and_caches_the_file_scope_features(
    clip: Track, tmp_path: Path
) -> None:
    """Through extract_split with one DataLoader worker: the flag reaches the worker as a float, and the cached
    (float16, time-mean) rows are those of the library reference."""
    file_scope = mert(normalize=True, normalize_scope="file")
    cache = FeatureCache(tmp_path / "cache", {"test": "normalize_scope"})
    extract_split(file_scope, [clip], cache, "train", SPEC, batch_size=2, num_workers=1)
    rows = np.asarray(cache.load("train").features, dtype=np.float32)
    expected, _ = mert(normalize=False).hidden_states(torch.from_numpy(library_windows(clip)))
    expected_rows = expected.mean(dim=2).transpose(0, 1).numpy()  # [windows, states, dim]
    assert rows.shape == expected_rows.shape == (2, 3, 32)
    np.testing.assert_allclose(rows, expected_rows, atol=2e-3, rtol=2e-3)  # float16 storage


def test_embed_honours_the_file_scope(clip: Track) -> None:
    """``python -m benchmark embed`` normalises the whole file before windowing too (here every span is kept)."""
    file_scope = mert(normalize=True, normalize_scope="file")
    decoded = load_audio(clip.path, SR)
    states = embed_waveform(file_scope, decoded, 5.0)
    processor = Wav2Vec2FeatureExtractor(feature_size=1, sampling_rate=SR, padding_value=0.0, do_normalize=True)
    whole = processor(decoded, sampling_rate=SR, return_tensors="np")["input_values"][0]
    off = mert(normalize=False)
    parts = [off.hidden_states(torch.from_numpy(whole[s:e])[None])[0][:, 0] for s, e in
             [(0, 5 * SR), (5 * SR, 10 * SR), (10 * SR, 12 * SR)]]
    expected = torch.cat(parts, dim=1).numpy()
    assert states.shape == expected.shape and float(np.abs(states - expected).max()) < TOL


def test_a_file_scope_encoder_refuses_windows_that_were_not_normalised_per_file() -> None:
    file_scope = mert(normalize=True, normalize_scope="file")
    x = torch.zeros(1, 5 * SR)
    with pytest.raises(ValueError, match="normalize_scope=file: each whole file must be z-normalised"):
        file_scope.hidden_states(x)
    with pytest.raises(ValueError, match="prenormalized=True, but this encoder normalises each window itself"):
        mert(normalize=True).hidden_states(x, prenormalized=True)


def test_with_normalisation_off_the_file_scope_changes_nothing() -> None:
    """normalize=false (MARBLE's 330M) or null with a snapshot whose do_normalize is false: no step to scope."""
    for normalize in (False, None):
        plain, scoped = mert(normalize=normalize), mert(normalize=normalize, normalize_scope="file")
        assert scoped.input_normalization_scope is None and file_normalization_eps(scoped) is None
        assert scoped.identity() == plain.identity()


def test_normalize_null_follows_a_snapshot_whose_do_normalize_is_true(clip: Track, tmp_path: Path) -> None:
    folder = tmp_path / "snapshot"
    folder.mkdir()
    for item in (FIXTURES / "v1-95m-tiny").iterdir():
        if item.is_file():
            (folder / item.name).write_bytes(item.read_bytes())
    pre = json.loads((folder / "preprocessor_config.json").read_text())
    (folder / "preprocessor_config.json").write_text(json.dumps({**pre, "do_normalize": True}))
    scoped = mert(checkpoint=str(folder), normalize_scope="file")
    assert scoped.input_normalization_scope == "file" and scoped.identity()["normalize_scope"] == "file"
    np.testing.assert_allclose(extractor_windows(clip, scoped), library_windows(clip), atol=1e-5, rtol=0)


# ------------------------------------------------------------------------------------ identity, cache, config
def test_the_cache_key_changes_only_for_the_file_scope() -> None:
    default, window = mert(normalize=True), mert(normalize=True, normalize_scope="window")
    file_scope = mert(normalize=True, normalize_scope="file")
    assert "normalize_scope" not in default.identity() and window.identity() == default.identity()
    assert file_scope.identity() == {**default.identity(), "normalize_scope": "file"}
    keys = [feature_cache(Path("/c"), e, SPEC, TASK).key for e in (default, window, file_scope)]
    assert keys[0] == keys[1] != keys[2]


def test_an_unknown_scope_is_a_config_error_naming_the_key_and_the_values() -> None:
    message = r"model.normalize_scope='files': must be one of window, file"
    with pytest.raises(ConfigError, match=message):
        MertSpec(name="mert-v1-95m", kind="mert", batch_size=1, normalize_scope="files")
    with pytest.raises(ConfigError, match=message):
        mert(normalize_scope="files")  # a config built in code, never validated by the schema
    assert MertSpec(name="m", kind="mert", batch_size=1).normalize_scope == "window"


def test_baselines_refuse_the_file_scope() -> None:
    """A baseline has no normalisation step: file is refused even with normalize null (it would change nothing
    but the record)."""
    with pytest.raises(ConfigError, match=r"model.normalize_scope='file': model mfcc \(handcrafted\) has no"):
        HandcraftedSpec(name="mfcc", kind="handcrafted", batch_size=1, feature="mfcc", normalize_scope="file")
    assert HandcraftedSpec(name="mfcc", kind="handcrafted", batch_size=1, feature="mfcc").normalize_scope == "window"


def test_the_default_keeps_every_protocol_checksum(compose_config) -> None:
    config = compose_config("task=emomusic", "model=mert-v1-95m")
    assert config["model"]["normalize_scope"] == "window"
    before = {**config, "model": {k: v for k, v in config["model"].items() if k != "normalize_scope"}}
    assert run_checksum(config) == run_checksum(before)
    scoped = {**config, "model": {**config["model"], "normalize_scope": "file"}}
    assert run_checksum(scoped) != run_checksum(config)
    # a committed record, written before the key existed, keeps its checksum with the key at window
    path = sorted((REPO_ROOT / "results" / "runs").rglob("*.json"))[0]
    record = json.loads(path.read_text())
    grown = {**record["config"], "model": {**record["config"]["model"], "normalize_scope": "window"}}
    assert run_checksum({k: v for k, v in grown.items() if k != "seed"}) == record["protocol_checksum"]
