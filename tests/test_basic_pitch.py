"""The basic-pitch encoder equals Spotify's original package on real music, stage by stage, and has the original's
frame counts for inputs of any length.

The reference (tests/fixtures/basic_pitch/, see its PROVENANCE.md) was computed by basic-pitch 0.4.0's own
``run_inference`` and windowing in a separate virtualenv (scripts/reference/basic_pitch_reference.py); the encoder
reads the same ONNX graph from the same wheel (downloaded from PyPI into the wheel cache on first use).
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest
import soundfile as sf
import torch
import yaml

from benchmark.encoders import basic_pitch
from benchmark.encoders.basic_pitch import BASIC_PITCH_WHEEL, STAGES, BasicPitchEncoder
from benchmark.encoders.registry import _BUILDERS
from benchmark.wheel_assets import WheelAssetError
from tests.conftest import REPO_ROOT

REFERENCE = REPO_ROOT / "tests" / "fixtures" / "basic_pitch" / "reference_outputs.npz"
AUDIO = REPO_ROOT / "tests" / "fixtures" / "real_audio" / "bwv66.6_organ_22050.flac"
CONFIG = REPO_ROOT / "configs" / "model" / "basic-pitch.yaml"
TOLERANCE = 1e-4
OUTPUTS = ("note", "onset", "contour")


def _config() -> dict[str, Any]:
    return yaml.safe_load(CONFIG.read_text())


@pytest.fixture(scope="module")
def encoder() -> BasicPitchEncoder:
    return _BUILDERS["basic_pitch"](_config())


@pytest.fixture(scope="module")
def reference() -> dict[str, np.ndarray]:
    with np.load(REFERENCE) as data:
        return {key: data[key] for key in data.files}


@pytest.fixture(scope="module")
def audio() -> np.ndarray:
    samples, rate = sf.read(AUDIO, dtype="float32")
    assert rate == 22050 and samples.ndim == 1
    return samples


@pytest.fixture(scope="module")
def music_states(encoder: BasicPitchEncoder, audio: np.ndarray) -> tuple[torch.Tensor, torch.Tensor]:
    return encoder.hidden_states(torch.from_numpy(audio)[None])


# ------------------------------------------------------------------------------------------ equal to the original


def test_frame_count_is_the_originals(music_states, reference, audio) -> None:
    states, frame_lengths = music_states
    assert len(audio) == int(reference["num_samples"])
    assert frame_lengths.tolist() == [int(reference["num_frames"])] == [1032]
    assert states.shape == (7, 1, 1032, 2816)


@pytest.mark.parametrize("layer", range(len(STAGES)), ids=[stage.name for stage in STAGES])
def test_every_stage_equals_the_original(music_states, reference, layer: int) -> None:
    """Each hidden state at the reference's frames (and bins) is within 1e-4 of the original's tensor."""
    stage = STAGES[layer]
    states, _ = music_states
    got = states[layer, 0].numpy()
    assert not got[:, stage.width:].any()  # zero padding up to dim
    got = got[:, : stage.width]
    expected = reference[stage.name]
    if stage.name in OUTPUTS:
        got = got[reference["output_frames"]]
    elif stage.channels == 1:
        got = got[reference["stage_frames"]]
    else:  # flattened channel-major: feature c * bins + f
        got = got[reference["stage_frames"]].reshape(-1, stage.channels, stage.bins)
        got = got[..., reference[f"{stage.name}_bins"]]
    assert got.shape == expected.shape
    difference = float(np.abs(got - expected).max())
    assert difference <= TOLERANCE, f"{stage.name}: max |difference| {difference:.3g}"
    assert float(np.abs(expected).max()) > 0.1  # the comparison is not between two arrays of zeros


# --------------------------------------------------------------------------------------- shapes and frame counts


def test_attributes(encoder: BasicPitchEncoder) -> None:
    assert encoder.name == "basic-pitch" and encoder.sample_rate == 22050 and encoder.frame_level
    assert (encoder.num_layers, encoder.num_hidden_states, encoder.dim) == (6, 7, 2816)
    assert encoder.layer_dims == [309, 2112, 264, 2816, 88, 2816, 88]
    assert encoder.frame_rate == pytest.approx(22050 * 142 / 36164) and 86.5 < encoder.frame_rate < 86.6
    assert encoder.context_seconds == 2.0
    assert basic_pitch.output_frames(encoder.min_samples) == 1
    assert basic_pitch.output_frames(encoder.min_samples - 1) == 0


def test_time_axis_stays_within_one_seam_of_frame_rate(encoder: BasicPitchEncoder) -> None:
    """Frame j is centred within 188 samples (8.5 ms) after j / frame_rate, however long the input."""
    j = np.arange(100_000)
    lag = basic_pitch.frame_centre(j) - j * encoder.sample_rate / encoder.frame_rate
    assert lag.min() > -1e-6 and lag.max() < 188
    assert basic_pitch.frame_centre(141) == 141 * 256 and basic_pitch.frame_centre(142) == 36164


# lengths: none, one frame, shorter than a window, a window less one sample, not a multiple of the hop, 2 s, > 2 windows
LENGTHS = [0, 257, 10_000, 43_843, 50_001, 44_100, 80_000]
ALONE = (257, 50_001, 80_000)  # also encoded alone (one, two and three model windows): equal to their batch rows


def test_shapes_and_frame_counts_of_a_padded_batch(encoder: BasicPitchEncoder, audio: np.ndarray) -> None:
    # padded with a constant that is not silence: it must not reach the items' windows
    batch = np.full((len(LENGTHS), max(LENGTHS)), 0.3, dtype=np.float32)
    for i, n in enumerate(LENGTHS):
        batch[i, :n] = audio[5000 * i : 5000 * i + n]
    states, frame_lengths = encoder.hidden_states(torch.from_numpy(batch), torch.tensor(LENGTHS))
    expected = [n * 86 // 22050 for n in LENGTHS]
    assert frame_lengths.tolist() == expected == [0, 1, 39, 170, 195, 172, 312]
    assert states.shape == (7, len(LENGTHS), max(expected), 2816) and states.dtype == torch.float32
    states = states.numpy()  # numpy from here: torch's thread pool makes these small checks slow on a busy machine
    for i, n in enumerate(LENGTHS):
        assert not states[:, i, expected[i]:].any()  # frames past the item's own are zeros
        if n in ALONE:
            alone, alone_lengths = encoder.hidden_states(torch.from_numpy(batch[i : i + 1, :n]))
            assert alone_lengths.tolist() == [expected[i]] and alone.shape[2] == expected[i]
            alone = alone.numpy()[:, 0]
            assert np.abs(states[:, i, : expected[i]] - alone).max() <= TOLERANCE
            assert np.abs(alone[:, -1]).sum(axis=-1).min() > 0  # every stage has its last frame


def test_no_input_gives_no_frames(encoder: BasicPitchEncoder) -> None:
    states, frame_lengths = encoder.hidden_states(torch.zeros(2, 100))
    assert states.shape == (7, 2, 0, 2816) and frame_lengths.tolist() == [0, 0]


# ---------------------------------------------------------------------------------------------------- identity


def test_identity_names_the_wheel_and_runtime(encoder: BasicPitchEncoder) -> None:
    import onnxruntime

    identity = encoder.identity()
    assert identity["wheel_sha256"] == BASIC_PITCH_WHEEL.sha256 == (
        "738adb503aae7fdfc7d1e1511aa0ce35052315f260a19531ef4c356708425db0")
    assert BASIC_PITCH_WHEEL.sha256 in str(identity)
    assert identity["onnxruntime_version"] == onnxruntime.__version__
    assert identity["implementation"] == basic_pitch.IMPLEMENTATION_VERSION
    assert identity["kind"] == "basic_pitch" and identity["parameters"]["layer_dims"] == encoder.layer_dims


def test_building_downloads_nothing(monkeypatch, tmp_path: Path) -> None:
    """`benchmark list` builds every encoder for its facts: the wheel is fetched on the first forward pass only."""
    monkeypatch.setenv("BENCHMARK_WHEEL_CACHE", str(tmp_path / "empty"))
    built = _BUILDERS["basic_pitch"](_config())
    assert built.identity()["wheel_sha256"] == BASIC_PITCH_WHEEL.sha256 and built.dim == 2816
    assert not (tmp_path / "empty").exists()


def test_local_wheel_is_checked(encoder: BasicPitchEncoder, tmp_path: Path) -> None:
    local = _BUILDERS["basic_pitch"]({**_config(), "wheel": str(encoder.wheel_path)})
    assert local.identity() == encoder.identity()
    forged = tmp_path / BASIC_PITCH_WHEEL.filename
    forged.write_bytes(b"not the wheel")
    with pytest.raises(WheelAssetError, match="sha256"):
        _BUILDERS["basic_pitch"]({**_config(), "wheel": str(forged)})
    with pytest.raises(WheelAssetError, match="not a file"):
        _BUILDERS["basic_pitch"]({**_config(), "wheel": str(tmp_path / "missing.whl")})
