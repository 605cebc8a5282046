#!/usr/bin/env python
"""Reference outputs of Spotify's basic-pitch 0.4.0, computed by the ORIGINAL package, for the suite's equivalence test.

Why a separate script and virtualenv: basic-pitch's wheel pins TensorFlow (< 2.15.1) and friends that cannot be
installed beside the suite, but its own inference path needs none of them when it runs its ONNX model on
onnxruntime. This script builds a throw-away virtualenv under /tmp with the wheel installed ``--no-deps`` plus only
the packages ``basic_pitch.inference`` really imports (librosa, resampy, numpy, scipy, pretty_midi, mir_eval,
onnxruntime; soundfile for librosa's decoding) and ``onnx`` (to add graph outputs), then re-runs itself inside it.
Nothing that computes is stubbed: the audio is read by the package's ``librosa.load``, windowed by its
``get_audio_input``, run by its ``Model`` class and stitched by its ``unwrap_output``.

What it saves (``tests/fixtures/basic_pitch/reference_outputs.npz``, float32, compressed):

* ``note``, ``onset``, ``contour``: what ``basic_pitch.inference.run_inference`` returns for the fixture audio, at
  the frames ``output_frames`` (every 4th frame, plus the two frames either side of each seam between model windows
  and the last frame; the full arrays would be 1.8 MB).
* ``log_cqt``, ``contour_conv``, ``note_conv``, ``onset_conv``: intermediate tensors of the same graph, computed by
  the same original path (``get_audio_input`` windows -> an onnxruntime session of the unmodified ``nmp.onnx`` with
  these tensors added as graph outputs by ``onnx`` -> ``unwrap_output``), at the frames ``stage_frames`` (every 16th
  frame plus the seams and the last frame). ``log_cqt`` keeps all 309 bins (``[frames, 309]``); each conv stage keeps
  all channels and every 4th frequency bin (``[frames, channels, bins]``, the bins in ``<name>_bins``).
* ``num_samples``, ``num_frames``: the audio length and the frame count ``run_inference`` returned.

The script also checks that the note/onset/contour of the session with added outputs equal ``run_inference``'s
(adding outputs changes nothing), so the intermediate tensors are those of the very computation that produced them.

Usage (from the repository root; downloads the wheel from PyPI at its pinned sha256 unless ``--wheel`` is given)::

    python scripts/reference/basic_pitch_reference.py [--wheel basic_pitch-0.4.0-py2.py3-none-any.whl] [--unpinned]

It prints the versions, checksums and shapes that tests/fixtures/basic_pitch/PROVENANCE.md records.
"""
from __future__ import annotations

import argparse
import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]
AUDIO = REPO_ROOT / "tests" / "fixtures" / "real_audio" / "bwv66.6_organ_22050.flac"
OUTPUT = REPO_ROOT / "tests" / "fixtures" / "basic_pitch" / "reference_outputs.npz"
VENV = Path("/tmp/basic-pitch-reference-venv")
# The packages basic_pitch.inference imports on its ONNX path (its module imports: librosa, pretty_midi,
# basic_pitch.note_creation -> mir_eval, resampy, scipy), the runtime, soundfile (librosa's decoder) and onnx (this
# script adds graph outputs with it). Pinned to the versions the committed fixture was made with.
REQUIREMENTS = ("numpy==2.4.6", "scipy==1.17.1", "librosa==0.11.0", "resampy==0.4.2", "soundfile==0.14.0",
                "pretty_midi==0.2.11.post0", "mir_eval==0.8.2", "onnxruntime==1.32.0", "onnx==1.23.2")

# Graph tensors of nmp.onnx exposed as stages (names as tf2onnx wrote them), with their layout.
STAGE_TENSORS = {
    "log_cqt": ("model_1/batch_normalization/FusedBatchNormV3;model_1/batch_normalization/FusedBatchNormV33",
                "ntf1"),  # [n, 172, 309, 1]: log CQT, per-window min-max normalised, then batch norm
    "contour_conv": ("Relu__38:0", "nctf"),  # [n, 8, 172, 264]
    "note_conv": ("Relu__42:0", "nctf"),  # [n, 32, 172, 88]
    "onset_conv": ("Relu__35:0", "nctf"),  # [n, 32, 172, 88]
}
OUTPUT_TENSORS = {"note": "StatefulPartitionedCall:1", "onset": "StatefulPartitionedCall:2",
                  "contour": "StatefulPartitionedCall:0"}  # as basic_pitch.inference.Model.predict names them
OUTPUT_FRAME_STRIDE = 4
STAGE_FRAME_STRIDE = 16
STAGE_BIN_STRIDE = 4


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


# ------------------------------------------------------------------------------------------------------- driver
def drive(args: argparse.Namespace) -> None:
    """Fetch the pinned wheel, build the virtualenv, run :func:`inside` there."""
    sys.path.insert(0, str(REPO_ROOT))
    from benchmark.encoders.basic_pitch import BASIC_PITCH_WHEEL
    from benchmark.wheel_assets import fetch_wheel

    wheel = fetch_wheel(BASIC_PITCH_WHEEL, args.wheel)
    venv = Path(args.venv)
    python = venv / "bin" / "python"
    if not python.exists():
        subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    subprocess.run([str(python), "-m", "pip", "install", "--quiet", "--no-deps", "--force-reinstall", str(wheel)],
                   check=True)
    requirements = [r.split("==")[0] for r in REQUIREMENTS] if args.unpinned else list(REQUIREMENTS)
    subprocess.run([str(python), "-m", "pip", "install", "--quiet", *requirements], check=True)
    env = {**os.environ, "PYTHONNOUSERSITE": "1"}
    subprocess.run([str(python), str(Path(__file__).resolve()), "--inside", "--output", str(args.output),
                    "--wheel-sha256", _sha256(wheel)], check=True, env=env, cwd="/tmp")


# ------------------------------------------------------------------------------------------------------- inside
def inside(args: argparse.Namespace) -> None:
    """Run the original package (this process is the virtualenv's Python) and save the reference arrays."""
    import importlib.metadata as metadata

    import numpy as np
    import onnx
    import onnxruntime as ort

    from basic_pitch import FilenameSuffix, build_icassp_2022_model_path
    from basic_pitch.constants import AUDIO_N_SAMPLES, FFT_HOP
    from basic_pitch.inference import Model, get_audio_input, run_inference, unwrap_output

    model_path = build_icassp_2022_model_path(FilenameSuffix.onnx)
    model = Model(model_path)
    assert model.model_type is Model.MODEL_TYPES.ONNX, model.model_type

    # 1. The package's own inference.
    outputs = run_inference(AUDIO, model)
    num_frames = outputs["note"].shape[0]

    # 2. The same windows through the unmodified graph with the stage tensors added as outputs. The windowing
    # constants are run_inference's local ones (30 overlapping frames), repeated here because it does not expose them.
    n_overlapping_frames = 30
    overlap_len = n_overlapping_frames * FFT_HOP
    hop_size = AUDIO_N_SAMPLES - overlap_len
    graph = onnx.load(str(model_path))
    for name, _ in STAGE_TENSORS.values():
        graph.graph.output.append(onnx.helper.make_tensor_value_info(name, onnx.TensorProto.FLOAT, None))
    session = ort.InferenceSession(graph.SerializeToString(), providers=["CPUExecutionProvider"])
    fetch = [*OUTPUT_TENSORS.values(), *(name for name, _ in STAGE_TENSORS.values())]
    per_window: dict[str, list] = {key: [] for key in [*OUTPUT_TENSORS, *STAGE_TENSORS]}
    num_samples = None
    for window, _, num_samples in get_audio_input(AUDIO, overlap_len, hop_size):
        values = dict(zip([*OUTPUT_TENSORS, *STAGE_TENSORS], session.run(fetch, {"serving_default_input_2:0": window})))
        for key, (_, layout) in STAGE_TENSORS.items():
            v = values[key]
            values[key] = v[..., 0] if layout == "ntf1" else v.transpose(0, 2, 1, 3)  # -> [n, T, F] / [n, T, C, F]
        for key, v in values.items():
            per_window[key].append(v)
    unwrapped = {}
    for key, windows in per_window.items():
        stacked = np.concatenate(windows)  # [n_windows, 172, ...]
        flat = stacked.reshape(stacked.shape[0], stacked.shape[1], -1)  # unwrap_output takes [n, T, features]
        unwrapped[key] = unwrap_output(flat, num_samples, n_overlapping_frames).reshape(-1, *stacked.shape[2:])
    for key in OUTPUT_TENSORS:
        if not np.array_equal(unwrapped[key], outputs[key]):
            raise SystemExit(f"{key}: the session with added outputs differs from run_inference "
                             f"(max {np.abs(unwrapped[key] - outputs[key]).max():.3g})")

    # 3. Deterministic subsets (the full arrays would be ~35 MB).
    kept = n_overlapping_frames // 2
    seam_period = 172 - 2 * kept  # frames each window contributes
    seams = [f for k in range(1, num_frames // seam_period + 1) for f in (k * seam_period - 1, k * seam_period)]

    def frames(stride: int) -> np.ndarray:
        chosen = set(range(0, num_frames, stride)) | {f for f in seams if f < num_frames} | {num_frames - 1}
        return np.array(sorted(chosen), dtype=np.int64)

    output_frames, stage_frames = frames(OUTPUT_FRAME_STRIDE), frames(STAGE_FRAME_STRIDE)
    arrays: dict[str, np.ndarray] = {
        "num_samples": np.int64(num_samples), "num_frames": np.int64(num_frames),
        "output_frames": output_frames, "stage_frames": stage_frames,
    }
    for key in OUTPUT_TENSORS:
        arrays[key] = outputs[key][output_frames].astype(np.float32)
    for key, (_, layout) in STAGE_TENSORS.items():
        value = unwrapped[key][stage_frames]
        if layout == "nctf":
            bins = np.arange(0, value.shape[-1], STAGE_BIN_STRIDE)
            value = value[..., bins]
            arrays[f"{key}_bins"] = bins
        arrays[key] = value.astype(np.float32)
    output = Path(args.output)
    output.parent.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(output, **arrays)
    versions = {name: metadata.version(name) for name in
                ("basic-pitch", "onnxruntime", "onnx", "numpy", "scipy", "librosa", "resampy", "soundfile")}
    summary = {
        "wheel_sha256": args.wheel_sha256, "nmp_onnx_sha256": _sha256(Path(model_path)),
        "audio_sha256": _sha256(AUDIO), "python": sys.version.split()[0], "versions": versions,
        "num_samples": int(num_samples), "num_frames": int(num_frames),
        "shapes": {k: list(v.shape) for k, v in arrays.items() if v.ndim},
        "output_bytes": output.stat().st_size,
    }
    print(json.dumps(summary, indent=2))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--wheel", help="a local basic_pitch-0.4.0-py2.py3-none-any.whl (checked against its sha256)")
    parser.add_argument("--venv", default=str(VENV), help=f"virtualenv to build and use (default {VENV})")
    parser.add_argument("--output", default=str(OUTPUT), help="the .npz to write")
    parser.add_argument("--unpinned", action="store_true",
                        help="install the newest versions of the packages instead of the pinned ones")
    parser.add_argument("--inside", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--wheel-sha256", help=argparse.SUPPRESS)
    args = parser.parse_args()
    (inside if args.inside else drive)(args)


if __name__ == "__main__":
    main()
