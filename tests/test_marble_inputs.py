"""The two input options a faithful MARBLE v1 run needs, and that they change nothing while they are off.

* ``task.crop_seconds`` (windowed tasks): only a clip's first seconds are cut into windows (MARBLE's EMO: the first
  30 s of each 45-s clip in 5-s windows, six windows). ``WindowSpec.crop`` carries it into the feature-cache key, and
  only when it is set.
* ``model.normalize`` (kind ``mert``): overrides the preprocessor config's ``do_normalize``, as MARBLE's model cards
  do; set, it enters the encoder's identity (so the cache key), unset the identity is what it was.

Both are listed in ``record.NEUTRAL_DEFAULTS`` at null, so configs that hold them at null keep their protocol
checksum and record names.
"""
from __future__ import annotations

import json
import shutil
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import numpy as np
import pytest
import soundfile as sf
import torch

from benchmark.audio import WindowSpec, load_audio, window_bounds
from benchmark.cache import FeatureCache
from benchmark.encoders import build_encoder
from benchmark.encoders.mert import input_normalization
from benchmark.errors import ConfigError
from benchmark.extract import _TrackWindows
from benchmark.feature_store import feature_cache
from benchmark.record import run_checksum
from benchmark.resources import config_file_values
from benchmark.run_checks import check_compatible, window_spec
from benchmark.schema import WindowedTaskSpec
from benchmark.tasks.base import Track
from tests.conftest import FIXTURES, REPO_ROOT

SR = 24000  # MERT-v1's rate


@pytest.fixture(autouse=True)
def _offline(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """No network, and the weight-hash sidecar in tmp."""
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("BENCHMARK_HASH_CACHE", str(tmp_path / "sha256.json"))


def stub_encoder(**identity: Any) -> SimpleNamespace:
    """What window_spec, check_compatible and feature_cache read from an encoder (MERT-v1's numbers)."""
    return SimpleNamespace(name="stub", sample_rate=SR, context_seconds=5.0, min_samples=400, frame_level=True,
                           identity=lambda: {"name": "stub", "kind": "mert", **identity})


STUB_TASK = SimpleNamespace(name="emomusic", level="clip", dataset_identity=lambda: {"task": "emomusic"})


def mert(yaml: str, fixture: str | Path, **overrides: Any):
    """A kind-mert encoder built from its model yaml on a tiny fixture checkpoint, as a user builds it."""
    cfg = config_file_values(REPO_ROOT / "configs" / "model" / f"{yaml}.yaml")
    cfg["checkpoint"] = str(fixture if isinstance(fixture, Path) else FIXTURES / fixture)
    cfg.update(overrides)
    return build_encoder(cfg)


# ------------------------------------------------------------------------------------------------ crop_seconds
def test_crop_30_of_a_45_s_clip_gives_six_5_s_windows_from_its_start() -> None:
    spec = WindowSpec(window=5.0, hop=5.0, min_fraction=0.5, crop=30.0)
    bounds = window_bounds(45 * SR, SR, spec)
    assert bounds == [(k * 5 * SR, (k + 1) * 5 * SR) for k in range(6)]
    assert [start / SR for start, _ in bounds] == [0.0, 5.0, 10.0, 15.0, 20.0, 25.0]
    # MARBLE's EMO keeps a last window down to 1 s (min_fraction 0.2): with the crop there is none to keep
    assert window_bounds(45 * SR, SR, WindowSpec(5.0, 5.0, 0.2, crop=30.0)) == bounds
    # without the crop the whole clip is windowed: 9 windows up to 45 s
    whole = window_bounds(45 * SR, SR, WindowSpec(5.0, 5.0, 0.5))
    assert len(whole) == 9 and whole[-1] == (40 * SR, 45 * SR)
    # a crop longer than the clip changes nothing; a crop inside a window leaves one short window
    assert window_bounds(45 * SR, SR, WindowSpec(5.0, 5.0, 0.5, crop=60.0)) == whole
    assert window_bounds(45 * SR, SR, WindowSpec(5.0, 5.0, 0.5, crop=3.0)) == [(0, 3 * SR)]


def test_crop_reaches_the_extractor_and_keeps_the_first_seconds_of_the_decoded_audio(tmp_path: Path) -> None:
    """task.crop_seconds -> window_spec -> the extractor: the first 30 s of the file, cut at 0, 5, ... 25 s."""
    rng = np.random.default_rng(7)
    path = tmp_path / "clip.wav"
    sf.write(path, (0.1 * rng.standard_normal(45 * 16000)).astype(np.float32), 16000)  # 45 s at 16 kHz
    spec = window_spec({"window_seconds": 5.0, "hop_seconds": None, "window_min_fraction": 0.5,
                        "crop_seconds": 30}, stub_encoder())
    assert spec == WindowSpec(5.0, 5.0, 0.5, crop=30.0)
    track = Track(track_id="1", path=path, split="train", target=(0.0, 0.0))
    _, windows, info = _TrackWindows([track], [0], SR, spec, min_samples=400)[0]
    decoded = load_audio(path, SR)  # resampled to 24 kHz, then cropped
    assert "error" not in info and len(decoded) == 45 * SR
    assert [len(w) for w in windows] == [5 * SR] * 6
    np.testing.assert_array_equal(np.concatenate(windows), decoded[:30 * SR])


def test_crop_seconds_is_checked_by_the_schema_and_against_the_receptive_field() -> None:
    assert WindowedTaskSpec(name="emomusic", kind="emomusic").crop_seconds is None
    with pytest.raises(ConfigError, match=r"task.crop_seconds=0"):
        WindowedTaskSpec(name="emomusic", kind="emomusic", crop_seconds=0.0)
    with pytest.raises(ConfigError, match=r"task.crop_seconds=0.01 .*receptive field"):
        check_compatible(STUB_TASK, stub_encoder(), WindowSpec(5.0, 5.0, 0.5, crop=0.01))  # 240 < 400 samples
    check_compatible(STUB_TASK, stub_encoder(), WindowSpec(5.0, 5.0, 0.5, crop=30.0))


def test_without_crop_the_window_dict_and_the_feature_cache_key_are_those_of_before(tmp_path: Path) -> None:
    enc = stub_encoder()
    before = {"window": 5.0, "hop": 5.0, "min_fraction": 0.5}  # WindowSpec.as_dict() before crop existed
    unset = window_spec({"window_seconds": 5.0, "window_min_fraction": 0.5}, enc)
    null = window_spec({"window_seconds": 5.0, "window_min_fraction": 0.5, "crop_seconds": None}, enc)
    assert unset.as_dict() == null.as_dict() == before
    old_key = FeatureCache(tmp_path, {"encoder": enc.identity(), "sample_rate": SR, "window": before,
                                      "pooling": "time_mean", "dataset": STUB_TASK.dataset_identity()})
    assert feature_cache(tmp_path, enc, null, STUB_TASK).dir == old_key.dir
    cropped = window_spec({"window_seconds": 5.0, "window_min_fraction": 0.5, "crop_seconds": 30.0}, enc)
    assert cropped.as_dict() == {**before, "crop": 30.0}
    assert feature_cache(tmp_path, enc, cropped, STUB_TASK).dir != old_key.dir


def test_null_options_keep_the_protocol_checksum_and_set_ones_change_it(compose_config) -> None:
    config = compose_config("task=emomusic", "model=mert-v1-95m")
    assert config["task"]["crop_seconds"] is None and config["model"]["normalize"] is None
    before = {**config, "task": {k: v for k, v in config["task"].items() if k != "crop_seconds"},
              "model": {k: v for k, v in config["model"].items() if k != "normalize"}}  # as configs were
    assert run_checksum(config) == run_checksum(before)
    assert run_checksum({**config, "task": {**config["task"], "crop_seconds": 30.0}}) != run_checksum(config)
    for value in (True, False):
        assert run_checksum({**config, "model": {**config["model"], "normalize": value}}) != run_checksum(config)
    cropped = compose_config("task=emomusic", "model=mert-v1-95m", "task.crop_seconds=30", "model.normalize=true")
    assert cropped["task"]["crop_seconds"] == 30.0 and cropped["model"]["normalize"] is True


# ---------------------------------------------------------------------------------------------- model.normalize
def test_normalize_override_enters_the_identity_only_when_set() -> None:
    default = mert("mert-v1-95m", "v1-95m-tiny")
    null = mert("mert-v1-95m", "v1-95m-tiny", normalize=None)
    on = mert("mert-v1-95m", "v1-95m-tiny", normalize=True)
    off = mert("mert-v1-95m", "v1-95m-tiny", normalize=False)
    assert "normalize" not in default.identity() and null.identity() == default.identity()
    assert on.identity() == {**default.identity(), "normalize": True}
    assert off.identity() == {**default.identity(), "normalize": False}
    spec = WindowSpec(5.0, 5.0, 0.5)
    keys = {feature_cache(Path("/c"), e, spec, STUB_TASK).key for e in (default, null, on, off)}
    assert len(keys) == 3  # default and null share one entry
    # the random-init controls read the arch files (do_normalize off); the override applies to them alike
    arch = json.loads((REPO_ROOT / "benchmark" / "encoders" / "arch" / "mert-v1-95m.preprocessor_config.json")
                      .read_text())
    assert [input_normalization(arch, o) for o in (None, True, False)] == [False, True, False]
    with pytest.raises(ConfigError, match="model.normalize='false'"):
        mert("mert-v1-95m", "v1-95m-tiny", normalize="false")


def _model_input(enc, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(what reaches the model's conv stack, the hidden states) for waveforms ``x``."""
    seen: list[torch.Tensor] = []
    hook = enc.model.feature_extractor.register_forward_pre_hook(lambda _m, args: seen.append(args[0].clone()))
    try:
        states, _ = enc.hidden_states(x)
    finally:
        hook.remove()
    return seen[0], states


@pytest.mark.parametrize("yaml, fixture", [("mert-v1-95m", "v1-95m-tiny"), ("music2vec-v1", "music2vec-tiny")])
def test_normalize_true_and_false_feed_the_model_different_input(yaml: str, fixture: str) -> None:
    # A quiet recording (peak about 0.02): normalised it reaches unit variance, which the first conv's norm layer
    # does not undo (its epsilon is no longer small next to the signal).
    x = 0.02 * torch.from_numpy(np.load(FIXTURES / fixture / "expected" / "input_values.npy"))[None]
    seen_on, on = _model_input(mert(yaml, fixture, normalize=True), x)
    seen_off, off = _model_input(mert(yaml, fixture, normalize=False), x)
    torch.testing.assert_close(seen_off, x)
    x64 = x.double()
    processor = (x64 - x64.mean()) / torch.sqrt(x64.var(unbiased=False) + 1e-7)  # Wav2Vec2FeatureExtractor's
    torch.testing.assert_close(seen_on.double(), processor, atol=1e-5, rtol=0)
    assert float((on - off).abs().max()) > 0.1


@pytest.mark.parametrize("snapshot_setting", [False, True])
def test_normalize_null_is_the_snapshots_own_setting(snapshot_setting: bool, tmp_path: Path) -> None:
    folder = tmp_path / "snapshot"
    shutil.copytree(FIXTURES / "v1-95m-tiny", folder)
    pre = json.loads((folder / "preprocessor_config.json").read_text())
    (folder / "preprocessor_config.json").write_text(json.dumps({**pre, "do_normalize": snapshot_setting}))
    x = 0.02 * torch.from_numpy(np.load(FIXTURES / "v1-95m-tiny" / "expected" / "input_values.npy"))[None]
    own = mert("mert-v1-95m", folder)
    assert own.do_normalize is snapshot_setting
    explicit = mert("mert-v1-95m", folder, normalize=snapshot_setting)
    other = mert("mert-v1-95m", folder, normalize=not snapshot_setting)
    assert torch.equal(own.hidden_states(x)[0], explicit.hidden_states(x)[0])
    assert not torch.equal(own.hidden_states(x)[0], other.hidden_states(x)[0])


def test_default_path_still_reproduces_the_reference_hidden_states() -> None:
    """normalize unset on the fixture (do_normalize false): the model sees the waveform as it is, as before."""
    x = torch.from_numpy(np.load(FIXTURES / "v1-95m-tiny" / "expected" / "input_values.npy"))[None]
    states, _ = mert("mert-v1-95m", "v1-95m-tiny").hidden_states(x)
    expected = np.load(FIXTURES / "v1-95m-tiny" / "expected" / "hidden_states.npy")
    assert float(np.abs(states[:, 0].numpy() - expected).max()) < 1e-5


# ----------------------------------------------------------------------------------- the committed preprocessors
ARCH_FIXTURES = {"mert-v1-95m": "v1-95m-tiny", "mert-v1-330m": "v1-330m-tiny", "mert-v0": "v0-tiny",
                 "music2vec-v1": "music2vec-tiny"}


@pytest.mark.parametrize("arch, fixture", sorted(ARCH_FIXTURES.items()))
def test_arch_preprocessor_copies_agree_with_the_snapshot_layout_fixtures(arch: str, fixture: str) -> None:
    """The random-init controls read benchmark/encoders/arch/<arch>.preprocessor_config.json; it says what the
    snapshot-layout fixture of the same model says, do_normalize off included (MARBLE's flag is model.normalize)."""
    copy = json.loads((REPO_ROOT / "benchmark" / "encoders" / "arch" / f"{arch}.preprocessor_config.json").read_text())
    snapshot = json.loads((FIXTURES / fixture / "preprocessor_config.json").read_text())
    assert copy == snapshot
    assert copy["do_normalize"] is False
