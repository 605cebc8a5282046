"""Reading audio files and cutting them into encoder windows.

Audio is read with ``soundfile`` (WAV, FLAC, OGG and MP3 with no system package) and resampled with torchaudio.
Everything an encoder sees passes through :func:`load_audio`, so the conversion policy (mono, resampled,
non-finite samples zeroed) lives in one place.
"""
from __future__ import annotations

import logging
import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import soundfile as sf
import torch
import torchaudio.functional as AF

log = logging.getLogger(__name__)


class AudioReadError(RuntimeError):
    """An audio file could not be decoded; the message names the file."""


def audio_duration(path: Path) -> float:
    """Duration in seconds read from the header only (cheap: used to plan windows before decoding)."""
    try:
        info = sf.info(str(path))
    except Exception as exc:  # soundfile raises several types for unreadable input
        raise AudioReadError(f"cannot read audio header of {path}: {exc}") from exc
    return info.frames / info.samplerate


def load_audio(path: Path, sample_rate: int, offset: float = 0.0, duration: float | None = None) -> np.ndarray:
    """Decode ``path`` to mono float32 at ``sample_rate``.

    Args:
        path: an audio file soundfile can read.
        sample_rate: the rate the encoder expects; the file is resampled to it.
        offset, duration: seconds selecting a clip of the file (``None`` = to the end).
    """
    try:
        with sf.SoundFile(str(path)) as f:
            native_rate = f.samplerate
            start = int(round(offset * native_rate))
            if start:
                f.seek(min(start, f.frames))
            frames = -1 if duration is None else int(round(duration * native_rate))
            data = f.read(frames=frames, dtype="float32", always_2d=True)
    except Exception as exc:
        raise AudioReadError(f"cannot decode audio file {path}: {exc}") from exc
    mono = data.mean(axis=1)
    if not np.all(np.isfinite(mono)):
        log.warning("%s contains NaN or inf samples; they were set to 0", path)
        mono = np.nan_to_num(mono, nan=0.0, posinf=0.0, neginf=0.0)
    if native_rate != sample_rate:
        mono = AF.resample(torch.from_numpy(mono), native_rate, sample_rate).numpy()
    return np.ascontiguousarray(mono, dtype=np.float32)


@dataclass(frozen=True)
class WindowSpec:
    """How a clip is cut into encoder windows (lengths in seconds).

    ``min_fraction``: a trailing window shorter than this fraction of ``window`` is dropped (the first window is
    always kept, so a clip shorter than one window yields one short window).
    """

    window: float
    hop: float
    min_fraction: float = 0.5

    def as_dict(self) -> dict[str, float]:
        return {"window": self.window, "hop": self.hop, "min_fraction": self.min_fraction}


def window_bounds(num_samples: int, sample_rate: int, spec: WindowSpec) -> list[tuple[int, int]]:
    """Sample ranges ``[(start, end), ...]`` of the windows of a clip of ``num_samples`` samples.

    Windows are not padded: a short final window is kept at its own length (when at least ``min_fraction`` of a
    window), so every window is encoded exactly as it would be alone, whatever it is batched with.
    """
    win = max(1, int(round(spec.window * sample_rate)))
    hop = max(1, int(round(spec.hop * sample_rate)))
    if num_samples <= win:
        return [(0, num_samples)]
    bounds = []
    count = 1 + math.ceil((num_samples - win) / hop)
    for i in range(count):
        start = i * hop
        end = min(start + win, num_samples)
        if end - start < spec.min_fraction * win and i > 0:
            break
        bounds.append((start, end))
    return bounds
