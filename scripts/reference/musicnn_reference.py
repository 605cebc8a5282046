#!/usr/bin/env python
"""Reference outputs of the ORIGINAL musicnn 0.1.0 package (TensorFlow), for ``tests/test_musicnn.py``.

Why a separate virtualenv: musicnn's wheel pins TensorFlow 1.x-era packages and numpy < 1.17 that cannot be
installed beside the suite. This script builds (or reuses) a virtualenv with a TensorFlow that still has Keras 2's
``tf.compat.v1.layers`` (2.15.1, the last such release, on Python <= 3.11) and numpy 1.26, installs the musicnn
wheel there ``--no-deps``, and re-runs itself inside it. Nothing is stubbed or aliased: the package's own
``musicnn.extractor.extractor`` loads the audio (librosa), builds the graph (``musicnn/models.py``), restores the
checkpoint shipped in the wheel and runs it; ``musicnn.extractor.batch_data`` (the package's own preprocessing)
gives the log-mel patches the network was fed.

Why numpy 1.x matters: the package computes ``np.log10(10000 * audio_rep + 1)`` on a float16 array. Under the numpy
it was written for (value-based casting) ``10000 * float16`` is float32; under numpy 2 (NEP 50) it stays float16 and
overflows to inf above a mel power of 6.55, which the fixture audio reaches (its organ chords peak near 8.6), so the
package would then feed inf into the network. numpy 1.26 keeps the published behaviour.

What it saves (``tests/fixtures/musicnn/reference_outputs.npz``, float32, compressed), for the 12 s fixture
``tests/fixtures/real_audio/bwv66.6_organ_22050.flac`` (4 non-overlapping 187-frame patches):

* ``input_patches`` ``[4, 187, 96]``: the log-mel patches ``batch_data`` builds (what the network is fed);
* per model (``MTT_musicnn/``, ``MSD_musicnn/``): ``taggram`` ``[4, 50]``; ``mean_pool``, ``max_pool``
  ``[4, 753]``; ``penultimate`` ``[4, 200]``; the front- and mid-end maps ``timbral`` ``[4, 11, 408]``,
  ``temporal`` ``[4, 11, 153]``, ``cnn1``/``cnn2``/``cnn3`` ``[4, 11, 64]`` at the 11 frames ``frames`` of each patch
  (both edges, where the convolutions' padding acts, and 3 inside: the full maps would be 4.5 MB), and their means
  over all 187 frames (``<map>_mean``, ``[4, channels]``, computed here in float64 from the full maps);
* ``audio_16k_sha256``: sha256 of the float32 samples ``librosa.load(..., sr=16000)`` returned, so a test can tell
  whether its own decoding and resampling gave the same waveform.

How it calls the extractor: ``extractor(path, model, input_length=3, input_overlap=False, extract_features=True)``
with ``musicnn.configuration.BATCH_SIZE`` raised from 1 to 64, so the 4 patches run in one ``session.run``. Reason:
with batch size 1 the extractor's loop over the later batches appends ``cnn1_``, ``cnn2_``, ``cnn3_`` and
``penultimate_`` of the FIRST batch again (it unpacks the later ones into ``midend1_``... and ``backend_``), so
those four features of every patch after the first repeat patch 0. The script also runs the default call, checks
that its taggram and other features agree with the one-batch run (and its repeated four on patch 0), and records
whether the repetition is seen.

Usage (from the repository root, with the suite's Python 3.11 environment; downloads the wheel from PyPI at its
pinned sha256 via ``benchmark.wheel_assets`` unless ``--wheel`` is given)::

    python scripts/reference/musicnn_reference.py [--wheel musicnn-0.1.0-py3-none-any.whl] [--venv /tmp/tfvenv]

It writes the npz and ``tests/fixtures/musicnn/PROVENANCE.md``.
"""
from __future__ import annotations

import argparse
import datetime
import hashlib
import json
import os
import subprocess
import sys
import zipfile
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]
AUDIO = REPO_ROOT / "tests" / "fixtures" / "real_audio" / "bwv66.6_organ_22050.flac"
OUT_DIR = REPO_ROOT / "tests" / "fixtures" / "musicnn"
MODELS = ("MTT_musicnn", "MSD_musicnn")
MAPS = ("timbral", "temporal", "cnn1", "cnn2", "cnn3")
FRAMES = (0, 1, 2, 3, 46, 93, 139, 183, 184, 185, 186)  # of each 187-frame patch
# Pinned to the versions the committed fixture was made with (those that compute: TF, numpy, scipy, librosa and
# its resampler and decoder).
REQUIREMENTS = ("tensorflow-cpu==2.15.1", "numpy==1.26.4", "scipy==1.17.1", "librosa==0.11.0", "soxr==1.1.0",
                "soundfile==0.14.0")


def sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


# ----------------------------------------------------------------------------------------------------------------
# Outside: the suite's environment builds the virtualenv and re-runs this file there


def outer(args: argparse.Namespace) -> int:
    if sys.version_info[:2] > (3, 11):
        sys.exit("tensorflow-cpu 2.15.1 needs Python <= 3.11; run this script with a Python 3.11 interpreter")
    from benchmark.encoders.musicnn import MUSICNN_WHEEL
    from benchmark.wheel_assets import fetch_wheel

    wheel = fetch_wheel(MUSICNN_WHEEL, local=args.wheel)  # sha256-checked either way
    venv = Path(args.venv)
    python = venv / "bin" / "python"
    if not python.exists():
        subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    subprocess.run([str(python), "-m", "pip", "install", "-q", *REQUIREMENTS], check=True)
    subprocess.run([str(python), "-m", "pip", "install", "-q", "--no-deps", "--force-reinstall", str(wheel)],
                   check=True)
    command = [str(python), str(Path(__file__).resolve()), "--inner", "--wheel", str(wheel),
               "--wheel-sha256", MUSICNN_WHEEL.sha256, "--command", " ".join(["python", *sys.argv])]
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2", CUDA_VISIBLE_DEVICES="")
    return subprocess.run(command, env=env).returncode


# ----------------------------------------------------------------------------------------------------------------
# Inside the TensorFlow virtualenv


def check_installed_weights(wheel: Path) -> None:
    """The checkpoint files the installed package restores are byte for byte the wheel's."""
    import musicnn

    root = Path(musicnn.__file__).parent
    with zipfile.ZipFile(wheel) as archive:
        for model in MODELS:
            for member in (".index", ".data-00000-of-00001"):
                if (root / model / member).read_bytes() != archive.read(f"musicnn/{model}/{member}"):
                    sys.exit(f"{root / model / member} differs from the wheel's; reinstall the wheel --no-deps")


def run_extractor(model: str, batch_size: int) -> tuple:
    import musicnn.configuration as config
    from musicnn.extractor import extractor

    config.BATCH_SIZE = batch_size
    taggram, _, features = extractor(str(AUDIO), model=model, input_length=3, input_overlap=False,
                                     extract_features=True)
    return taggram, features


def inner(args: argparse.Namespace) -> int:
    import librosa
    import musicnn.configuration as config
    import numpy as np
    import tensorflow as tf
    from musicnn.extractor import batch_data

    check_installed_weights(Path(args.wheel))
    patches, _ = batch_data(str(AUDIO), 187, 187)  # the extractor's n_frames and overlap for 3 s, no overlap
    num_patches = patches.shape[0]
    audio, _ = librosa.load(str(AUDIO), sr=config.SR)
    out = {"input_patches": patches.astype(np.float32), "frames": np.array(FRAMES, dtype=np.int64),
           "audio_16k_sha256": np.array(hashlib.sha256(audio.astype(np.float32).tobytes()).hexdigest())}
    notes = {}
    for model in MODELS:
        taggram, feats = run_extractor(model, batch_size=64)
        if taggram.shape[0] != num_patches or feats["timbral"].shape[:2] != (num_patches, 187):
            sys.exit(f"{model}: unexpected output shapes {taggram.shape}, {feats['timbral'].shape}")
        out[f"{model}/taggram"] = taggram.astype(np.float32)
        for key in ("mean_pool", "max_pool", "penultimate"):
            out[f"{model}/{key}"] = feats[key].astype(np.float32)
        for key in MAPS:
            out[f"{model}/{key}"] = feats[key][:, list(FRAMES)].astype(np.float32)
            out[f"{model}/{key}_mean"] = feats[key].astype(np.float64).mean(axis=1).astype(np.float32)

        # The package's default call (batch size 1) must agree, except for its repeated cnn features.
        taggram1, feats1 = run_extractor(model, batch_size=1)
        agree = {"taggram": float(np.abs(taggram1 - taggram).max())}
        for key, value in feats1.items():
            value = value.reshape(feats[key].shape)
            if key in ("cnn1", "cnn2", "cnn3", "penultimate"):
                value = value[:1]  # only the first patch is really computed in the default call
                repeated = all(np.array_equal(feats1[key].reshape(feats[key].shape)[p], value[0])
                               for p in range(num_patches))
                notes[f"{model} default call repeats patch 0 in {key}"] = bool(repeated)
            agree[key] = float(np.abs(value - feats[key][: len(value)]).max())
        notes[f"{model} max |batch size 1 - batch size 64| (cnn1-3, penultimate: patch 0 only)"] = agree
        if max(agree.values()) > 1e-4:
            sys.exit(f"{model}: the default call disagrees with the one-batch call: {agree}")

    OUT_DIR.mkdir(parents=True, exist_ok=True)
    npz = OUT_DIR / "reference_outputs.npz"
    np.savez_compressed(npz, **out)
    versions = {"python": sys.version.split()[0], "tensorflow-cpu": tf.__version__, "numpy": np.__version__,
                "librosa": librosa.__version__}
    for package in ("scipy", "soxr", "soundfile"):
        versions[package] = __import__(package).__version__
    write_provenance(args, npz, versions, notes, {k: list(v.shape) for k, v in out.items()})
    print(f"wrote {npz} ({npz.stat().st_size} bytes)")
    print(json.dumps(notes, indent=1))
    return 0


def write_provenance(args: argparse.Namespace, npz: Path, versions: dict, notes: dict, shapes: dict) -> None:
    date = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d")
    lines = [
        "# tests/fixtures/musicnn",
        "",
        "`reference_outputs.npz`: outputs of the ORIGINAL musicnn 0.1.0 package (Pons & Serra, ISC licence) run under",
        "TensorFlow on `tests/fixtures/real_audio/bwv66.6_organ_22050.flac` (12 s, 4 patches of 187 frames), for",
        "`tests/test_musicnn.py`. Written by `scripts/reference/musicnn_reference.py` (its docstring says what each",
        "array is, which frames of the feature maps are kept, and why the extractor runs with BATCH_SIZE=64).",
        "",
        f"* command: `{args.command}` (from the repository root)",
        f"* date: {date}",
        f"* wheel: `musicnn-0.1.0-py3-none-any.whl`, sha256 `{args.wheel_sha256}`, installed `--no-deps`",
        f"* environment: {', '.join(f'{k} {v}' for k, v in versions.items())}",
        f"* npz sha256: `{sha256(npz)}`",
        "",
        "Checks made by the script:",
        "",
    ]
    for key, value in notes.items():
        lines.append(f"* {key}: {json.dumps(value)}")
    lines += ["", "Arrays (shape):", ""]
    lines += [f"* `{key}`: {shape}" for key, shape in shapes.items()]
    (OUT_DIR / "PROVENANCE.md").write_text("\n".join(lines) + "\n")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--wheel", help="a local musicnn-0.1.0-py3-none-any.whl (sha256-checked)")
    parser.add_argument("--venv", default="/tmp/tfvenv", help="the TensorFlow virtualenv (created if missing)")
    parser.add_argument("--inner", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--wheel-sha256", help=argparse.SUPPRESS)
    parser.add_argument("--command", help=argparse.SUPPRESS)
    args = parser.parse_args()
    return inner(args) if args.inner else outer(args)


if __name__ == "__main__":
    sys.exit(main())
