"""``python -m benchmark embed``: every hidden state of each audio file, saved for use outside the suite."""
from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch

from benchmark.audio import WindowSpec, load_audio, window_bounds, zero_mean_unit_var
from benchmark.encoders import build_encoder
from benchmark.encoders.base import Encoder, file_normalization_eps, window_forward
from benchmark.errors import InputFileError

AUDIO_SUFFIXES = {".wav", ".flac", ".mp3", ".ogg", ".oga", ".aiff", ".aif"}


def audio_files(source: Path) -> list[Path]:
    """``source`` itself if it is a file, else every audio file below it (sorted)."""
    if source.is_file():
        return [source]
    if not source.is_dir():
        raise InputFileError(f"input={source}: no such file or folder. Give an audio file or a folder of audio "
                             f"files, e.g. `python -m benchmark embed input=song.wav out=embeddings/`.")
    files = sorted(p for p in source.rglob("*") if p.suffix.lower() in AUDIO_SUFFIXES)
    if not files:
        raise InputFileError(f"input={source}: no audio files ({', '.join(sorted(AUDIO_SUFFIXES))}) found in this "
                             f"folder or below it. Point input= at an audio file or a folder that holds some.")
    return files


def embed_waveform(encoder: Encoder, audio: np.ndarray, window_seconds: float | None) -> np.ndarray:
    """All hidden states ``[layers+1, frames, dim]`` of one waveform at the encoder's rate.

    With ``model.normalize_scope=file`` the whole waveform is z-normalised once before it is cut into windows, as
    the extractor does, so these states equal the ones a run caches for the same file and windows.
    """
    eps = file_normalization_eps(encoder)
    if eps is not None:
        audio = zero_mean_unit_var(audio, eps)
    forward = window_forward(encoder)
    if len(audio) < encoder.min_samples:
        audio = np.pad(audio, (0, encoder.min_samples - len(audio)))
    spans = [(0, len(audio))] if window_seconds is None else window_bounds(
        len(audio), encoder.sample_rate, WindowSpec(window_seconds, window_seconds, min_fraction=0.0))
    parts = []
    for start, end in spans:
        chunk = audio[start:end]
        if len(chunk) < encoder.min_samples:
            continue
        with torch.inference_mode():
            states, _ = forward(torch.from_numpy(np.ascontiguousarray(chunk))[None])
        parts.append(states[:, 0].float().numpy())
    return np.concatenate(parts, axis=1)


def embed_files(config: dict[str, Any]) -> list[Path]:
    source, out = Path(config["input"]), Path(config["out"])
    window = config.get("window")
    window_seconds = None if window in (None, "none", "None") else float(window)
    files = audio_files(source)
    encoder = build_encoder(config["model"])
    written = []
    for path in files:
        states = embed_waveform(encoder, load_audio(path, encoder.sample_rate), window_seconds)
        rel = path.relative_to(source) if source.is_dir() else Path(path.name)
        target = (out / rel).with_suffix(".npy")
        target.parent.mkdir(parents=True, exist_ok=True)
        np.save(target, states.astype(np.float32))
        written.append(target)
    return written
