"""Offline baseline encoders: shapes, frame counts, batch/padding invariance and agreement with torchcrepe."""
from __future__ import annotations

import hashlib
import json
import math
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
import torchaudio.functional as AF
import yaml

from benchmark.encoders import baselines
from benchmark.encoders.base import Encoder
from benchmark.encoders.registry import _BUILDERS

CONFIG_DIR = Path(__file__).resolve().parents[1] / "configs" / "model"
MODELS = ["mfcc", "chroma", "logmel", "crepe-tiny", "crepe-full"]
EXPECTED = {  # name: (num_layers, dim, frame_rate)
    "mfcc": (0, 40, 100.0),
    "chroma": (0, 24, 100.0),
    "logmel": (0, 128, 100.0),
    "crepe-tiny": (6, 360, 50.0),
    "crepe-full": (6, 1024, 50.0),
}
SR = 16000


def _config(name: str) -> dict[str, Any]:
    return yaml.safe_load((CONFIG_DIR / f"{name}.yaml").read_text())


def _build(cfg: dict[str, Any]) -> Encoder:
    """Build through the registry's table (what ``build_encoder`` does, without importing the other encoders)."""
    return _BUILDERS[cfg["kind"]](cfg)


@pytest.fixture(scope="module")
def encoders() -> dict[str, Encoder]:
    return {name: _build(_config(name)) for name in MODELS}


def _tone(freqs: list[float], seconds: float, harmonics: int = 4, seed: int = 0) -> torch.Tensor:
    """Sum of harmonic tones (partial k at amplitude 1/k, random phases), peak 0.5."""
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * SR)) / SR
    x = np.zeros_like(t)
    for f in freqs:
        for k in range(1, harmonics + 1):
            if k * f < SR / 2:
                x += np.sin(2 * np.pi * k * f * t + rng.uniform(0, 2 * np.pi)) / k
    return torch.from_numpy(0.5 * x / np.abs(x).max()).float()


# ---------------------------------------------------------------------------------------------------- configs


@pytest.mark.parametrize("name", MODELS)
def test_config_fields(name: str) -> None:
    cfg = _config(name)
    assert cfg["name"] == name
    assert cfg["kind"] in _BUILDERS
    assert cfg["dtype"] == "fp32" and cfg["batch_size"] >= 1


@pytest.mark.parametrize("name", MODELS)
def test_attributes(encoders: dict[str, Encoder], name: str) -> None:
    enc = encoders[name]
    num_layers, dim, frame_rate = EXPECTED[name]
    assert (enc.name, enc.num_layers, enc.dim, enc.frame_rate) == (name, num_layers, dim, frame_rate)
    assert enc.sample_rate == SR and enc.context_seconds == 5.0
    assert enc.num_hidden_states == num_layers + 1
    assert enc.min_samples == {"mfcc": 1024, "logmel": 1024, "chroma": 4096}.get(name, 1024)


def test_crepe_layer_dims(encoders: dict[str, Encoder]) -> None:
    assert encoders["crepe-tiny"].layer_dims == [128, 16, 16, 16, 32, 64, 360]
    assert encoders["crepe-full"].layer_dims == [1024, 128, 128, 128, 256, 512, 360]


# ---------------------------------------------------------------------------------------------------- shapes


@pytest.mark.parametrize("name", MODELS)
def test_shapes_and_frame_counts(encoders: dict[str, Encoder], name: str) -> None:
    enc = encoders[name]
    hop = round(SR / enc.frame_rate)
    n = 6000 if name == "crepe-full" else 8000
    lengths = torch.tensor([n, 3201, 0])
    x = torch.randn(3, n) * 0.1
    x[1, 3201:] = 0
    x[2] = 0
    states, frame_lengths = enc.hidden_states(x, lengths)
    num_frames = math.ceil(n / hop)
    assert states.shape == (enc.num_layers + 1, 3, num_frames, enc.dim)
    assert states.dtype == torch.float32
    assert frame_lengths.tolist() == [math.ceil(n / hop), math.ceil(3201 / hop), 0]
    assert torch.isfinite(states).all()
    for b, valid in enumerate(frame_lengths.tolist()):
        assert torch.all(states[:, b, valid:] == 0), "frames past the valid ones must be zero"
    assert states[:, 0].abs().sum(dim=(1, 2)).min() > 0, "every layer carries signal"
    # no lengths == all samples valid
    _, fl = enc.hidden_states(x[:1])
    assert fl.tolist() == [num_frames]


def test_crepe_narrow_layers_are_zero_padded(encoders: dict[str, Encoder]) -> None:
    for name in ("crepe-tiny", "crepe-full"):
        enc = encoders[name]
        states, _ = enc.hidden_states(_tone([220.0], 0.2)[None])
        for layer, width in enumerate(enc.layer_dims):
            assert torch.all(states[layer, :, :, width:] == 0)
            assert states[layer, :, :, :width].abs().sum() > 0


# ---------------------------------------------------------------------------------------------------- batching


@pytest.mark.parametrize("name", MODELS)
def test_padded_batch_equals_items_alone(encoders: dict[str, Encoder], name: str) -> None:
    """Frame-local encoders: an item gives the same valid frames alone and zero-padded inside a batch."""
    enc = encoders[name]
    lens = [4800, 3333, 1234] if name == "crepe-full" else [9600, 6789, 2345]
    gen = torch.Generator().manual_seed(0)
    x = torch.zeros(len(lens), lens[0])
    for i, n in enumerate(lens):
        x[i, :n] = _tone([196.0 * (i + 1)], n / SR, seed=i) + 0.05 * torch.randn(n, generator=gen)
    states, frame_lengths = enc.hidden_states(x, torch.tensor(lens))
    for i, n in enumerate(lens):
        alone, fl = enc.hidden_states(x[i : i + 1, :n])
        valid = int(fl[0])
        assert valid == int(frame_lengths[i]) == alone.shape[2]
        torch.testing.assert_close(states[:, i, :valid], alone[:, 0], atol=1e-5, rtol=1e-5)


# ------------------------------------------------------------------------------------------ CREPE vs torchcrepe


@pytest.mark.parametrize("capacity", ["tiny", "full"])
def test_crepe_layers_equal_torchcrepe(encoders: dict[str, Encoder], capacity: str) -> None:
    """The classifier state is torchcrepe's own output and conv5 is torchcrepe's embedding, frame for frame."""
    import torchcrepe

    enc = encoders[f"crepe-{capacity}"]
    audio = _tone([440.0], 0.3)[None]
    states, fl = enc.hidden_states(audio)
    n = int(fl[0])
    frames = next(torchcrepe.preprocess(audio, SR, hop_length=enc.hop))  # same centring and normalisation
    with torch.no_grad():
        probs = torchcrepe.infer(frames, model=capacity)  # [1 + N // hop, 360]
        embedding = torchcrepe.infer(frames, model=capacity, embed=True)  # conv5 output [M, C, L, 1]
    torch.testing.assert_close(states[6, 0, :, :360], probs[:n], atol=1e-5, rtol=1e-4)
    conv5 = embedding.mean(dim=(2, 3))
    torch.testing.assert_close(states[4, 0, :, : conv5.shape[1]], conv5[:n], atol=1e-4, rtol=1e-4)


@pytest.mark.parametrize("capacity", ["tiny", "full"])
def test_crepe_classifier_peaks_at_440(encoders: dict[str, Encoder], capacity: str) -> None:
    import torchcrepe

    enc = encoders[f"crepe-{capacity}"]
    audio = _tone([440.0], 0.3, seed=3)[None]
    states, fl = enc.hidden_states(audio)
    bins = states[6, 0, : int(fl[0]), :360].argmax(dim=-1)
    expected_bin = int(torchcrepe.convert.frequency_to_bins(torch.tensor(440.0), torch.round))
    assert expected_bin == 228
    assert torch.all((bins - expected_bin).abs() <= 1), bins.tolist()
    # torchcrepe's own pitch (argmax decoding, dithered by up to one 20-cent bin) agrees with our bins
    pitch = torchcrepe.predict(
        audio, SR, hop_length=enc.hop, model=capacity, decoder=torchcrepe.decode.argmax, fmin=50.0, fmax=2000.0
    )[0, : bins.shape[0]]
    our_cents = torchcrepe.CENTS_PER_BIN * bins.double() + 1997.3794084376191
    their_cents = 1200 * torch.log2(pitch.double() / 10.0)
    assert torch.all((our_cents - their_cents).abs() <= torchcrepe.CENTS_PER_BIN + 1e-3)
    assert torch.all((1200 * torch.log2(pitch / 440.0)).abs() < 30)


def test_crepe_weights_loaded_with_weights_only(monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[tuple[Any, dict[str, Any]]] = []
    real_load = torch.load

    def spy(*args: Any, **kwargs: Any) -> Any:
        calls.append((args, kwargs))
        return real_load(*args, **kwargs)

    monkeypatch.setattr(baselines.torch, "load", spy)
    enc = baselines.build_crepe({"capacity": "tiny"})
    assert len(calls) == 1
    args, kwargs = calls[0]
    assert kwargs.get("weights_only") is True
    assert Path(args[0]).name == "tiny.pth" and Path(args[0]).parent.name == "assets"
    # the loaded parameters are the file's (not a random init)
    state = real_load(args[0], map_location="cpu", weights_only=True)
    torch.testing.assert_close(enc.net.conv1.weight, state["conv1.weight"], rtol=0, atol=0)


def test_crepe_stays_in_eval_mode(encoders: dict[str, Encoder]) -> None:
    """Batch norm must keep its running statistics even if a framework calls ``train()`` on the encoder."""
    enc = encoders["crepe-tiny"]
    x = _tone([330.0], 0.2)[None]
    before, _ = enc.hidden_states(x)
    enc.train()
    assert not enc.training and not enc.net.conv1_BN.training
    after, _ = enc.hidden_states(torch.cat([x, torch.randn_like(x)]))
    torch.testing.assert_close(after[:, :1], before, atol=1e-5, rtol=1e-5)


# ---------------------------------------------------------------------------------------------------- hand-crafted


def test_chroma_of_c_major_triad_peaks_on_c_e_g(encoders: dict[str, Encoder]) -> None:
    enc = encoders["chroma"]
    c4, e4, g4 = 261.63, 329.63, 392.00
    states, fl = enc.hidden_states(_tone([c4, e4, g4], 1.0)[None])
    profile = states[0, 0, : int(fl[0]), :12].mean(dim=0)
    top3 = set(profile.topk(3).indices.tolist())
    assert top3 == {0, 4, 7}, [baselines.PITCH_CLASSES[i] for i in top3]
    assert states[0, 0, : int(fl[0]), :12].max() <= 1.0 + 1e-6  # max-normalised per frame


def test_chroma_of_a_pure_tone(encoders: dict[str, Encoder]) -> None:
    t = torch.arange(SR) / SR
    states, _ = encoders["chroma"].hidden_states(torch.sin(2 * math.pi * 440.0 * t)[None])
    middle = states[0, 0, 20:-20, :12]
    assert torch.all(middle.argmax(dim=-1) == baselines.PITCH_CLASSES.index("A"))
    assert middle[:, 9].min() > 0.99 and middle[:, [0, 2, 4, 5, 7]].max() < 0.01
    # a steady tone has (near) zero chroma deltas away from the edges
    assert states[0, 0, 20:-20, 12:].abs().max() < 1e-3


def test_chroma_filterbank_rows_sum_to_one_in_range() -> None:
    fb = baselines.chroma_filterbank(SR, 4096)
    freqs = torch.arange(fb.shape[0]) * SR / 4096
    in_range = (freqs >= 65.0) & (freqs <= 5000.0)
    torch.testing.assert_close(fb[in_range].sum(dim=1), torch.ones(int(in_range.sum())))
    assert torch.all(fb[~in_range] == 0)


def test_mfcc_is_dct_of_logmel_and_has_deltas(encoders: dict[str, Encoder]) -> None:
    """MFCC and log-mel share their mel front end; the second half of MFCC are torchaudio deltas of the first."""
    x = _tone([110.0, 523.0], 0.5, harmonics=6)[None]
    logmel, _ = encoders["logmel"].hidden_states(x)
    mfcc, _ = encoders["mfcc"].hidden_states(x)
    dct = AF.create_dct(20, 128, norm="ortho")
    torch.testing.assert_close(mfcc[0, 0, :, :20], logmel[0, 0] @ dct, atol=1e-3, rtol=1e-4)
    deltas = AF.compute_deltas(mfcc[0, 0, :, :20].T).T
    torch.testing.assert_close(mfcc[0, 0, :, 20:], deltas, atol=1e-4, rtol=1e-4)


def test_logmel_of_a_tone_peaks_at_its_band(encoders: dict[str, Encoder]) -> None:
    t = torch.arange(SR // 2) / SR
    states, _ = encoders["logmel"].hidden_states(torch.sin(2 * math.pi * 1000.0 * t)[None])
    fb = AF.melscale_fbanks(513, 0.0, SR / 2, 128, SR, mel_scale="slaney")  # [freq, mel]
    band_of_1k = int(fb[round(1000 * 1024 / SR)].argmax())
    assert torch.all(states[0, 0, 10:-10].argmax(dim=-1) == band_of_1k)
    assert states[0, 0].min() >= math.log(1e-6) - 1e-4  # log(1e-6 + power) floor


# ---------------------------------------------------------------------------------------------------- identity, errors


def test_identity(encoders: dict[str, Encoder]) -> None:
    from importlib.metadata import version

    identities = {name: enc.identity() for name, enc in encoders.items()}
    for name, ident in identities.items():
        json.dumps(ident)
        assert ident["name"] == name
        assert ident["kind"] == _config(name)["kind"]
        assert "parameters" in ident
    assert len({json.dumps(i, sort_keys=True) for i in identities.values()}) == len(MODELS)
    for capacity in ("tiny", "full"):
        ident = identities[f"crepe-{capacity}"]
        path = baselines.crepe_weights_path(capacity)
        assert ident["weights_sha256"] == hashlib.sha256(path.read_bytes()).hexdigest()
        assert ident["torchcrepe_version"] == version("torchcrepe")
        assert ident["parameters"]["capacity"] == capacity


@pytest.mark.parametrize(
    "cfg, match",
    [
        ({"kind": "handcrafted", "feature": "spectral_flux"}, "feature"),
        ({"kind": "handcrafted", "feature": "mfcc", "hop_ms": 10.03}, "whole number"),
        ({"kind": "handcrafted", "feature": "mfcc", "dtype": "fp16"}, "fp32"),
        ({"kind": "crepe", "capacity": "large"}, "capacity"),
        ({"kind": "crepe", "capacity": "tiny", "sample_rate": 22050}, "16000"),
    ],
)
def test_bad_configs(cfg: dict[str, Any], match: str) -> None:
    with pytest.raises(ValueError, match=match):
        _build(cfg)


def test_bad_inputs(encoders: dict[str, Encoder]) -> None:
    enc = encoders["mfcc"]
    with pytest.raises(ValueError, match="shape"):
        enc.hidden_states(torch.zeros(2, 3, 1600))
    with pytest.raises(ValueError, match="lengths"):
        enc.hidden_states(torch.zeros(2, 1600), torch.tensor([1600, 1601]))
    with pytest.raises(ValueError, match="lengths"):
        enc.hidden_states(torch.zeros(2, 1600), torch.tensor([1600]))
