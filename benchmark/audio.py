"""Reading audio files and cutting them into encoder windows.

Audio is read with ``soundfile`` (WAV, FLAC, OGG and MP3 with no system package) and resampled with torchaudio.
Everything an encoder sees passes through :func:`load_audio`, so the decoding policy lives in one place:

* readable audio is converted: channels averaged to mono, resampled with ``torchaudio.functional.resample``,
  returned as float32;
* the format is detected from the file's content, never from its extension (libsndfile does this), so a FLAC
  file named ``.wav`` or a WAV named ``.mp3`` decodes normally;
* unreadable audio (missing, empty, corrupt, not audio, a FLAC stream that loses sync, no samples at all, an
  offset past the end) raises :class:`AudioReadError` naming the file, the reason and what to do about it;
* an MP3 that ends before the length its header announces (a truncated download) is used as far as it decodes,
  with a warning naming the file; when not even its header decodes, it is an :class:`AudioReadError`;
* NaN or infinite samples (a float WAV can hold them) are set to 0 with a warning naming the file;
* silence is returned as zeros and a clip shorter than the encoder's receptive field is returned as is:
  the extractor calls :func:`pad_to_minimum`.

Why so explicit: a benchmark run decodes tens of thousands of files over hours, and one bad file must either be
handled the same way every time or stop the run with a message that says which file and how to fix it.
"""
from __future__ import annotations

import logging
import math
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import soundfile as sf
import torch
import torchaudio.functional as AF

from benchmark.errors import UserError

log = logging.getLogger(__name__)

# libsndfile 1.2.2 decodes low-rate mono MP3 (MPEG-2/2.5 layer III: 8, 16, 22.05 kHz, e.g. MagnaTagATune) wrongly
# after a read that ends, or a seek that lands, inside an MPEG frame: the samples that follow differ from a decode
# in one call by up to 0.2. Reads and seeks at multiples of 1152 samples (one MPEG-1 layer II/III frame, two
# MPEG-2 frames) reproduce the one-call decode exactly, so every read but the last and every MP3 seek is aligned.
MP3_ALIGN = 1152
# Frames decoded per read (a multiple of MP3_ALIGN): large enough that the per-call overhead is negligible, small
# enough that the block buffer (channels x BLOCK float32) is tiny next to the mono result.
BLOCK = 57 * MP3_ALIGN
# Two MPEG-1 layer III frames: an MP3 that decodes to fewer frames than its header announces minus this is
# reported as truncated (encoder delay and padding bookkeeping can differ by up to about a frame).
MP3_TRUNCATION_TOLERANCE = 2 * 1152

FIX_HINT = ("Replace the file (fetch or extract it again), or delete it: a missing file is skipped as long as a "
            "split loses at most max_missing_fraction of its tracks.")

# First bytes of the formats this suite reads, to say what a file that fails to decode looks like.
_MAGIC: tuple[tuple[bytes, str], ...] = (
    (b"RIFF", "WAV"), (b"RF64", "WAV (RF64)"), (b"fLaC", "FLAC"), (b"OggS", "Ogg"), (b"ID3", "MP3 (ID3 tag)"),
    (b"FORM", "AIFF"), (b"<", "text/HTML (an error page saved as audio?)"), (b"PK\x03\x04", "a zip archive"),
)


class AudioReadError(UserError, RuntimeError):
    """An audio file could not be decoded; the message names the file, the reason and the fix."""


def _sniff(path: Path) -> str:
    """What the first bytes of ``path`` look like, for error messages."""
    try:
        with open(path, "rb") as f:
            head = f.read(16)
    except OSError as exc:
        return f"unreadable ({exc.strerror})"
    for magic, name in _MAGIC:
        if head.startswith(magic):
            return name
    if len(head) >= 2 and head[0] == 0xFF and (head[1] & 0xE0) == 0xE0:
        return "MP3 (MPEG frame sync)"
    return f"no known audio format (first bytes {head[:8].hex(' ')})"


def _reason(path: Path, exc: BaseException) -> str:
    """A reason a user can act on: libsndfile says "does not exist" for any MP3-named file it cannot parse."""
    if not path.exists():
        return "the file does not exist"
    if not path.is_file():
        return "not a regular file"
    size = path.stat().st_size
    if size == 0:
        return "the file is empty (0 bytes): an interrupted download or copy"
    message = _libsndfile_message(exc)
    if "does not exist" in message or "not a regular file" in message:
        message = "libsndfile found no stream it can decode"
    return f"{message} ({size} bytes; content looks like {_sniff(path)})"


def _libsndfile_message(exc: BaseException) -> str:
    """libsndfile's text without its ``Error opening '<path>':`` prefix and trailing full stop."""
    return re.sub(r"^Error(?: opening '.*?')?\s*:\s*", "", str(exc)).strip().rstrip(".")


def _read_error(path: Path, what: str, reason: str) -> AudioReadError:
    return AudioReadError(f"{what} {path}: {reason}. {FIX_HINT}")


def audio_duration(path: Path) -> float:
    """Duration in seconds read from the header only (cheap: used to plan windows before decoding)."""
    path = Path(path)
    try:
        info = sf.info(str(path))
    except Exception as exc:  # soundfile raises several types for unreadable input
        raise _read_error(path, "cannot read the audio header of", _reason(path, exc)) from exc
    return info.frames / info.samplerate


def _decode_mono(path: Path, offset: float, duration: float | None) -> tuple[np.ndarray, int]:
    """Decode ``[offset, offset + duration)`` of ``path`` to mono float32 at its native rate.

    Reads in blocks into one preallocated mono buffer, so a long multichannel file never exists in memory as a
    ``[frames, channels]`` array: peak memory is the mono result plus one block.
    """
    if offset < 0 or (duration is not None and duration <= 0):
        raise ValueError(f"{path}: offset must be >= 0 and duration > 0, got offset={offset} duration={duration}")
    try:
        f = sf.SoundFile(str(path))
    except Exception as exc:
        raise _read_error(path, "cannot decode audio file", _reason(path, exc)) from exc
    with f:
        rate, channels, announced = f.samplerate, f.channels, f.frames
        is_mp3 = f.format == "MP3"
        start = int(round(offset * rate))
        if start and start >= announced:
            raise _read_error(path, "cannot decode audio file",
                              f"offset {offset:g} s is at or past the end of the file ({announced / rate:g} s)")
        want = None if duration is None else max(1, int(round(duration * rate)))
        expected = max(announced - start, 0) if want is None else min(want, max(announced - start, 0))
        skip = n = nonfinite = 0
        try:
            mono = np.empty(max(expected, 1), dtype=np.float32)
        except (MemoryError, ValueError) as exc:
            raise _read_error(path, "cannot decode audio file",
                              f"its header announces {announced} frames, which do not fit in memory") from exc
        block = np.empty((BLOCK, channels), dtype=np.float32)
        try:
            if start:
                seek_to = start - start % MP3_ALIGN if is_mp3 else start
                if seek_to:
                    f.seek(seek_to)
                skip = start - seek_to
            while want is None or n < want:
                k = BLOCK if want is None else min(BLOCK, want - n + skip)
                got = f.read(k, dtype="float32", always_2d=True, out=block[:k])
                m = len(got)
                if m == 0:
                    break
                if skip:
                    dropped = min(skip, m)
                    got, skip = got[dropped:], skip - dropped
                    if not len(got):
                        continue
                if not np.isfinite(got).all():
                    nonfinite += int(np.count_nonzero(~np.isfinite(got)))
                    np.nan_to_num(got, copy=False, nan=0.0, posinf=0.0, neginf=0.0)
                c = len(got)
                if n + c > len(mono):  # the header under-announced the length (VBR MP3 without a Xing header)
                    mono = np.resize(mono, max(2 * len(mono), n + c))
                if channels == 1:
                    mono[n:n + c] = got[:, 0]
                else:
                    np.mean(got, axis=1, out=mono[n:n + c])
                n += c
                if m < k:
                    break
        except Exception as exc:  # libsndfile errors mid-stream, e.g. "flac decoder lost sync"
            raise _read_error(path, "cannot decode audio file",
                              f"decoding failed in the block after {n / rate:.3f} s: {_libsndfile_message(exc)}"
                              ) from exc
    if n == 0:
        raise _read_error(path, "cannot decode audio file", "it contains no audio samples")
    if nonfinite:
        log.warning("%s: %d NaN or infinite sample value(s) were set to 0", path, nonfinite)
    if is_mp3 and n < expected - MP3_TRUNCATION_TOLERANCE:
        log.warning("%s: truncated MP3: decoded %.3f s of the %.3f s its header announces; using the decoded part "
                    "(fetch the file again to use all of it)", path, n / rate, expected / rate)
    return mono[:n] if n < len(mono) else mono, rate


def resample(audio: np.ndarray, orig_rate: int, new_rate: int) -> np.ndarray:
    """``torchaudio.functional.resample`` with its default (sinc, Hann window) filter; float32 in and out."""
    if orig_rate == new_rate:
        return audio
    return AF.resample(torch.from_numpy(audio), int(orig_rate), int(new_rate)).numpy()


def load_audio(path: Path, sample_rate: int, offset: float = 0.0, duration: float | None = None) -> np.ndarray:
    """Decode ``path`` to mono float32 at ``sample_rate`` (the policy is in the module docstring).

    Args:
        path: an audio file soundfile can read (the format is detected from its content).
        sample_rate: the rate the encoder expects; the file is resampled to it.
        offset, duration: seconds selecting a clip of the file (``None`` = to the end). The clip equals the same
            slice of a decode of the whole file (MP3 seeks are aligned, see ``MP3_ALIGN``).

    Raises:
        AudioReadError: the file cannot be decoded (the message names the file, the reason and the fix).
    """
    path = Path(path)
    mono, rate = _decode_mono(path, float(offset), None if duration is None else float(duration))
    return np.ascontiguousarray(resample(mono, rate, sample_rate), dtype=np.float32)


def pad_to_minimum(audio: np.ndarray, min_samples: int) -> tuple[np.ndarray, bool]:
    """Zero-pad ``audio`` at the end to at least ``min_samples`` (the encoder's receptive field).

    A clip shorter than the receptive field yields no frame at all; padding it with silence gives the encoder one
    frame to report. Returns ``(audio, was_padded)`` so the caller can count or log padded clips.
    """
    if len(audio) >= min_samples:
        return audio, False
    return np.pad(audio, (0, int(min_samples) - len(audio))), True


def zero_mean_unit_var(audio: np.ndarray, eps: float) -> np.ndarray:
    """``(x - mean) / sqrt(var + eps)`` over the whole of ``audio`` (population variance), as float32.

    The formula of transformers' ``Wav2Vec2FeatureExtractor(do_normalize=True)`` (``zero_mean_unit_var_norm``,
    eps 1e-7), which MARBLE v1 applies to each file's whole waveform before cutting it into windows
    (``model.normalize_scope=file``). Computed in float64 so the result does not depend on the summation order of
    a float32 mean. An empty clip is returned as it is (it has no statistics; padding gives it its frame).
    """
    if len(audio) == 0:
        return np.asarray(audio, dtype=np.float32)
    x = np.asarray(audio, dtype=np.float64)
    mean = x.mean()
    out = (x - mean) / np.sqrt(((x - mean) ** 2).mean() + float(eps))
    return out.astype(np.float32)


@dataclass(frozen=True)
class WindowSpec:
    """How a clip is cut into encoder windows (lengths in seconds).

    ``min_fraction``: a trailing window shorter than this fraction of ``window`` is dropped (the first window is
    always kept, so a clip shorter than one window yields one short window).
    ``crop``: only the first ``crop`` seconds of the clip are windowed (``task.crop_seconds``; ``None`` = all of
    it). MARBLE v1 cuts EMO's 45-s clips to their first 30 s this way before its 5-s windows.
    """

    window: float
    hop: float
    min_fraction: float = 0.5
    crop: float | None = None

    def as_dict(self) -> dict[str, float]:
        """The windowing as the feature-cache key and the run record hold it.

        ``crop`` appears only when set: a spec without it keeps the dict, and so the cache key and the record, of
        runs made before the option existed.
        """
        out = {"window": self.window, "hop": self.hop, "min_fraction": self.min_fraction}
        if self.crop is not None:
            out["crop"] = self.crop
        return out


def window_bounds(num_samples: int, sample_rate: int, spec: WindowSpec) -> list[tuple[int, int]]:
    """Sample ranges ``[(start, end), ...]`` of the windows of a clip of ``num_samples`` samples.

    Windows are not padded: a short final window is kept at its own length (when at least ``min_fraction`` of a
    window), so every window is encoded exactly as it would be alone, whatever it is batched with. With
    ``spec.crop`` the clip counts as its first ``crop`` seconds (:func:`cropped_length`): later samples are in no
    window.
    """
    num_samples = cropped_length(num_samples, sample_rate, spec)
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


def cropped_length(num_samples: int, sample_rate: int, spec: WindowSpec) -> int:
    """Samples of a clip of ``num_samples`` that are windowed: all of them, or the first ``spec.crop`` seconds.

    Applied at the encoder's rate, after resampling (MARBLE crops at the file's own rate, then resamples; the two
    differ only in the few samples before the cut that the resampling filter mixes with the ones after it).
    """
    if spec.crop is None:
        return num_samples
    return min(num_samples, max(1, int(round(spec.crop * sample_rate))))
