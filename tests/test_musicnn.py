"""The torch musicnn port equals the original TensorFlow package, and its checkpoint reader refuses bad bytes.

Why: the suite claims to probe musicnn's own layers; a port that differs from the package in one padding or one
transposed kernel would still produce plausible features. ``tests/fixtures/musicnn/reference_outputs.npz`` holds what
the ORIGINAL package (``musicnn.extractor.extractor`` under TensorFlow 2.15, ``scripts/reference/musicnn_reference.py``)
returns for 12 s of real music; every tensor the port exposes is compared with it.

Tolerance: ``max |port - original| <= 1e-4 * max(1, max |original|)`` per tensor, i.e. absolute 1e-4 for tensors of
scale <= 1 (tags, penultimate features) and 1e-4 relative to the tensor's largest value above that. Why relative:
TensorFlow and torch sum a convolution's 7 x 561 products in different orders, and float32 rounding then grows with
the activations (the mid-end maps reach 95, where the two differ by up to 4e-4 absolutely, 6e-6 of the scale).

The wheel is fetched through ``fetch_wheel`` (the suite's cache, else PyPI at its pinned sha256).
"""
from __future__ import annotations

import hashlib
import struct
from pathlib import Path

import numpy as np
import pytest
import torch

from benchmark.encoders.musicnn import (
    LAYER_NAMES, MUSICNN_WHEEL, PATCH_FRAMES, MusicnnEncoder, MusicnnSpec, describe, patch_count,
)
from benchmark.encoders.registry import build_encoder
from benchmark.encoders.tf_checkpoint import CheckpointError, crc32c, read_checkpoint
from benchmark.errors import ConfigError
from benchmark.resources import config_dir, config_file_values
from benchmark.wheel_assets import WheelAssetError, fetch_wheel, read_member

FIXTURES = Path(__file__).parent / "fixtures"
AUDIO = FIXTURES / "real_audio" / "bwv66.6_organ_22050.flac"
REFERENCE = FIXTURES / "musicnn" / "reference_outputs.npz"
MODELS = {"musicnn-mtt": "MTT_musicnn", "musicnn-msd": "MSD_musicnn"}
MAPS = ("timbral", "temporal", "cnn1", "cnn2", "cnn3")


def assert_matches(name: str, ours: np.ndarray | torch.Tensor, reference: np.ndarray) -> None:
    ours = ours.detach().cpu().numpy() if isinstance(ours, torch.Tensor) else np.asarray(ours)
    assert ours.shape == reference.shape, (name, ours.shape, reference.shape)
    diff = float(np.abs(ours.astype(np.float64) - reference).max())
    scale = max(1.0, float(np.abs(reference).max()))
    assert diff <= 1e-4 * scale, f"{name}: max |port - original| = {diff:.3g} at scale {scale:.3g}"


@pytest.fixture(scope="module")
def reference() -> dict[str, np.ndarray]:
    with np.load(REFERENCE) as npz:
        return {key: npz[key] for key in npz.files}


@pytest.fixture(scope="module")
def encoders() -> dict[str, MusicnnEncoder]:
    return {name: build_encoder(config_file_values(config_dir() / "model" / f"{name}.yaml")) for name in MODELS}


@pytest.fixture(scope="module")
def audio_16k() -> np.ndarray:
    """The fixture decoded and resampled as the package's extractor does it (``librosa.load(path, sr=16000)``)."""
    import librosa

    audio, _ = librosa.load(str(AUDIO), sr=16000)
    return audio


@pytest.fixture(scope="module")
def checkpoint_files() -> tuple[bytes, bytes]:
    wheel = fetch_wheel(MUSICNN_WHEEL)
    return (read_member(wheel, "musicnn/MTT_musicnn/.index"),
            read_member(wheel, "musicnn/MTT_musicnn/.data-00000-of-00001"))


# ----------------------------------------------------------------------------------------------------------------
# Equivalence with the original package


@pytest.mark.parametrize("name", MODELS)
def test_network_matches_the_original_on_its_own_input_patches(name, encoders, reference) -> None:
    """Fed the log-mel patches the package fed TensorFlow, every tensor the package returns is reproduced."""
    model = MODELS[name]
    with torch.no_grad():
        out = encoders[name].net(torch.from_numpy(reference["input_patches"]))
    frames = reference["frames"]
    for key in MAPS:
        assert_matches(f"{model}/{key} (frames {frames.tolist()})", out[key][:, frames], reference[f"{model}/{key}"])
        assert_matches(f"{model}/{key} time mean", out[key].mean(dim=1), reference[f"{model}/{key}_mean"])
    for key in ("mean_pool", "max_pool", "penultimate", "taggram"):
        assert_matches(f"{model}/{key}", out[key], reference[f"{model}/{key}"])


@pytest.mark.parametrize("name", MODELS)
def test_hidden_states_match_the_original_from_audio(name, encoders, reference, audio_16k) -> None:
    """End to end: the encoder's own preprocessing of the 16 kHz audio gives the package's patches, and every
    hidden state equals the matching output of the package (states 0-4 are its maps' means over time)."""
    model, encoder = MODELS[name], encoders[name]
    waveform = torch.from_numpy(audio_16k)[None]
    patches, counts = encoder.patches(waveform, torch.tensor([waveform.shape[1]]))
    # Exact here (same librosa and float16 rounding); a different numpy FFT could move a rare bin by one float16 step.
    same_audio = hashlib.sha256(audio_16k.tobytes()).hexdigest() == str(reference["audio_16k_sha256"])
    assert float(np.abs(patches.numpy() - reference["input_patches"]).max()) <= 1e-3, (
        f"log-mel patches differ from the package's (16 kHz audio identical to the reference run's: {same_audio})")

    states, frame_lengths = encoder.hidden_states(waveform)
    assert states.shape == (8, 1, 4, 1506) and frame_lengths.tolist() == [4]
    expected = [reference[f"{model}/{key}_mean"] for key in MAPS]
    expected += [np.concatenate([reference[f"{model}/mean_pool"], reference[f"{model}/max_pool"]], axis=1),
                 reference[f"{model}/penultimate"], reference[f"{model}/taggram"]]
    for layer, (label, ref) in enumerate(zip(LAYER_NAMES, expected)):
        assert_matches(f"{model} state {layer} ({label})", states[layer, 0, :, : ref.shape[1]], ref)
        assert not states[layer, 0, :, ref.shape[1]:].any(), f"state {layer} is not zero-padded"


# ----------------------------------------------------------------------------------------------------------------
# The encoder interface


def test_hidden_states_of_a_padded_batch(encoders) -> None:
    """10 s and 4 s (right-padded) items: 3 and 1 patches of 2.992 s; an item's states do not depend on its
    batch; frames past an item's last whole patch are zeros."""
    encoder = encoders["musicnn-mtt"]
    assert (encoder.num_layers, encoder.dim, encoder.frame_level) == (7, 1506, False)
    assert encoder.frame_rate == pytest.approx(16000 / (256 * 187)) and encoder.context_seconds == 3.0
    facts = describe(config_file_values(config_dir() / "model" / "musicnn-mtt.yaml"))  # without the wheel
    assert facts == {"sample_rate": encoder.sample_rate, "num_layers": encoder.num_layers, "dim": encoder.dim,
                     "frame_rate": encoder.frame_rate, "context_seconds": encoder.context_seconds}
    rng = np.random.default_rng(0)
    audio = torch.from_numpy(rng.standard_normal((2, 160000)).astype(np.float32) * 0.1)
    lengths = torch.tensor([160000, 64000])
    audio[1, 64000:] = 0
    states, frame_lengths = encoder.hidden_states(audio, lengths)
    assert states.shape == (8, 2, 3, 1506) and states.dtype == torch.float32
    assert frame_lengths.tolist() == [3, 1]
    assert not states[:, 1, 1:].any()
    alone, alone_lengths = encoder.hidden_states(audio[1:, :64000])
    assert alone.shape == (8, 1, 1, 1506) and alone_lengths.tolist() == [1]
    torch.testing.assert_close(states[:, 1, :1], alone[:, 0], rtol=1e-5, atol=1e-5)
    assert torch.isfinite(states).all()


def test_patch_counts_and_receptive_field(encoders) -> None:
    encoder = encoders["musicnn-mtt"]
    assert encoder.min_samples == (PATCH_FRAMES - 1) * 256 == 47616
    assert patch_count(encoder.min_samples, 187) == 1 and patch_count(encoder.min_samples - 1, 187) == 0
    assert patch_count(48000, 187) == 1  # a 3 s suite window is one patch
    short = torch.zeros(1, encoder.min_samples - 1)
    states, frame_lengths = encoder.hidden_states(short)
    assert states.shape == (8, 1, 0, 1506) and frame_lengths.tolist() == [0]


def test_identity_names_the_wheel_and_checkpoint(encoders) -> None:
    mtt, msd = encoders["musicnn-mtt"].identity(), encoders["musicnn-msd"].identity()
    published = "f38a4890c648c1ddbb141c5d96d2b0a8cfcd36746002d896989f7b88beb65cfa"
    assert mtt["wheel_sha256"] == msd["wheel_sha256"] == MUSICNN_WHEEL.sha256 == published
    assert mtt["kind"] == "musicnn" and isinstance(mtt["implementation"], int)
    assert (mtt["checkpoint"], msd["checkpoint"]) == ("MTT_musicnn", "MSD_musicnn") and mtt != msd
    assert mtt["parameters"]["layer_dims"] == [408, 153, 64, 64, 64, 1506, 200, 50]


def test_a_local_wheel_with_the_wrong_sha256_is_refused(tmp_path) -> None:
    fake = tmp_path / MUSICNN_WHEEL.filename
    fake.write_bytes(b"not the published wheel")
    cfg = {"name": "musicnn-mtt", "kind": "musicnn", "checkpoint": "MTT_musicnn", "batch_size": 1, "wheel": str(fake)}
    with pytest.raises(WheelAssetError, match="sha256"):
        build_encoder(cfg)
    with pytest.raises(WheelAssetError, match="not a file"):
        build_encoder({**cfg, "wheel": str(tmp_path / "missing.whl")})


def test_the_schema_refuses_an_unknown_checkpoint() -> None:
    with pytest.raises(ConfigError, match="model.checkpoint"):
        MusicnnSpec(name="x", kind="musicnn", checkpoint="MSD_musicnn_big", batch_size=1)
    with pytest.raises(ConfigError, match="model.normalize"):
        MusicnnSpec(name="x", kind="musicnn", checkpoint="MTT_musicnn", batch_size=1, normalize=True)


# ----------------------------------------------------------------------------------------------------------------
# The checkpoint reader


def test_crc32c_known_value_and_vectorised_path() -> None:
    assert crc32c(b"123456789") == 0xE3069283  # the CRC-32C check value
    assert crc32c(b"") == 0
    data = np.random.default_rng(1).integers(0, 256, 50_001, dtype=np.uint8).tobytes()  # > 4 chunks: lanes
    state = 0xFFFFFFFF
    for byte in data:  # bitwise reference, independent of the module's tables
        state ^= byte
        for _ in range(8):
            state = (state >> 1) ^ (0x82F63B78 if state & 1 else 0)
    assert crc32c(data) == state ^ 0xFFFFFFFF


def test_reader_returns_the_variables_with_their_shapes(checkpoint_files) -> None:
    variables = read_checkpoint(*checkpoint_files)
    assert variables["conv2d/kernel"].shape == (7, 38, 1, 204)
    assert variables["conv2d_5/kernel"].shape == (7, 561, 1, 64)
    assert variables["dense/kernel"].shape == (1506, 200) and variables["dense_1/bias"].shape == (50,)
    assert all(v.dtype == np.float32 for v in variables.values())


def _first_data_block(index: bytes) -> tuple[int, int]:
    """(offset, size) of the table's first data block: the index block's first handle (two varints)."""
    footer = index[-48:]

    def varint(buf: bytes, pos: int) -> tuple[int, int]:
        value = shift = 0
        while True:
            value |= (buf[pos] & 0x7F) << shift
            shift += 7
            pos += 1
            if not buf[pos - 1] & 0x80:
                return value, pos

    _, pos = varint(footer, 0)
    _, pos = varint(footer, pos)
    index_offset, pos = varint(footer, pos)
    block = index[index_offset:]
    pos = 0
    _, pos = varint(block, pos)  # shared
    unshared, pos = varint(block, pos)
    _, pos = varint(block, pos + 0)  # value length
    pos += unshared
    offset, pos = varint(block, pos)
    size, _ = varint(block, pos)
    return offset, size


def _reseal(index: bytearray, offset: int, size: int) -> None:
    """Recompute a block's masked CRC (so that only the edit under test is wrong)."""
    crc = crc32c(bytes(index[offset: offset + size + 1]))
    masked = (((crc >> 15) | (crc << 17)) + 0xA282EAD8) & 0xFFFFFFFF
    index[offset + size + 1: offset + size + 5] = struct.pack("<I", masked)


def test_reader_rejects_a_corrupted_index(checkpoint_files) -> None:
    index, data = checkpoint_files
    offset, size = _first_data_block(index)
    corrupt = bytearray(index)
    corrupt[offset + size // 2] ^= 0x10
    with pytest.raises(CheckpointError, match="CRC"):
        read_checkpoint(bytes(corrupt), data)
    with pytest.raises(CheckpointError, match="magic"):
        read_checkpoint(index[:-1], data)
    with pytest.raises(CheckpointError, match="CRC"):
        read_checkpoint(index, data[:1000] + bytes([data[1000] ^ 1]) + data[1001:])
    with pytest.raises(CheckpointError, match="ends at byte"):
        read_checkpoint(index, data[: len(data) // 2])


def test_reader_refuses_compressed_blocks_and_unsupported_dtypes(checkpoint_files) -> None:
    index, data = checkpoint_files
    offset, size = _first_data_block(index)
    compressed = bytearray(index)
    compressed[offset + size] = 1  # the block trailer's compression type: snappy
    _reseal(compressed, offset, size)
    with pytest.raises(CheckpointError, match="snappy-compressed"):
        read_checkpoint(bytes(compressed), data)
    string = bytearray(index)
    at = bytes(string).index(b"\x08\x01\x12", offset)  # the first entry's dtype field: DT_FLOAT
    string[at + 1] = 7  # DT_STRING
    _reseal(string, offset, size)
    with pytest.raises(CheckpointError, match="DT_STRING"):
        read_checkpoint(bytes(string), data)
