"""Real compositions rendered to audio with a sampled-instrument (General MIDI) soundfont, from pip alone.

Why: the suite needs real music that runs offline, in CI and on a fresh ``pip install``, with labels that are
facts of the score (a chorale's key, a dance tune's type). Scores come from the ``music21`` corpus, which ships in
its wheel; the sound comes from a SoundFont, played by TinySoundFont (the ``tinysoundfont`` wheel, MIT). The
default soundfont is TimGM6mb.sf2, which ships inside the ``pretty_midi`` wheel. A user with a larger soundfont
(Debian's FluidR3_GM.sf2 or MuseScore_General.sf3) asks for it with ``task.soundfont=NAME_OR_PATH``; its sha256 is
then part of the dataset identity, so features of two soundfonts never share a cache entry.

``tinysoundfont``'s metadata requires PyAudio, for live playback only; PyAudio has no Linux wheel and needs the
PortAudio headers to build, so it is not a dependency of the suite: the installed ``tinysoundfont`` is used when
there is one (``pip install --no-deps tinysoundfont``), else the pinned wheel for this platform is fetched from PyPI
at its published sha256 and imported from the wheel cache. ``symusic``'s own synthesizer was measured and refused:
with TimGM6mb it plays many programs at the wrong pitch (piano 13-23 semitones sharp, choir 12-28 flat), which a
key task must never hear; TinySoundFont renders every program used here within 0.2 semitone (``pyin``), and
``tests/test_score_render.py`` checks it.

Rendering is a pure function of its arguments (the synthesizer has no random state), so a clip is reproducible
from the task's seed.
"""
from __future__ import annotations

import os
import sys
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from types import ModuleType

import numpy as np

from benchmark.checksums import file_sha256
from benchmark.errors import ConfigError, UserError
from benchmark.tasks.tinysoundfont_wheels import FILES_HOST, TINYSOUNDFONT_VERSION, TINYSOUNDFONT_WHEELS

# Names a user can give instead of a path: the soundfonts the suite knows how to find.
BUNDLED_SOUNDFONT = "TimGM6mb"
_KNOWN_SOUNDFONTS = {
    "FluidR3_GM": "/usr/share/sounds/sf2/FluidR3_GM.sf2",  # Debian fluid-soundfont-gm (MIT)
    "MuseScore_General": "/usr/share/sounds/sf3/MuseScore_General.sf3",  # Debian musescore-general-soundfont (MIT)
}
# The rendered audio is scaled to this peak, so clips differ by timbre and content, not by level.
PEAK = 0.5
# Seconds rendered after the last note-off, for the release of the last notes.
RELEASE_SECONDS = 1.5
# A render quieter than this peak (before scaling) means the notes produced no sound: refuse it, never save silence.
SILENT_PEAK = 1e-4

# General MIDI programs (0-based) by family, for drawing one instrument per clip.
GM_PROGRAMS: dict[str, tuple[int, ...]] = {
    "piano": (0, 1),  # acoustic grand, bright acoustic
    "organ": (16, 19, 20),  # drawbar, church, reed
    "accordion": (21, 23),  # accordion, tango accordion
    "guitar": (24, 25),  # nylon, steel
    "harp": (46,),  # orchestral harp
    "violin": (40,),
    "strings": (48, 49),  # string ensembles 1 and 2
    "choir": (52, 53),  # choir aahs, voice oohs
    "brass": (61,),  # brass section
    "reed": (68, 70, 71),  # oboe, bassoon, clarinet
    "flute": (73, 72),  # flute, piccolo
    "whistle": (74, 75),  # recorder, pan flute (78, whistle, is 8.65 semitones flat in TimGM6mb)
    "pipes": (109,),  # bagpipe
}


@dataclass(frozen=True)
class SoundFont:
    """A resolved soundfont: what the user asked for, the file, and its content hash (the identity)."""

    name: str
    path: Path
    sha256: str


def soundfont_error(name: str, reason: str) -> ConfigError:
    return ConfigError(
        f"task.soundfont={name!r}: {reason}. Use {BUNDLED_SOUNDFONT} (the default, shipped in the pretty_midi wheel), "
        f"a known name ({', '.join(sorted(_KNOWN_SOUNDFONTS))}: install Debian's fluid-soundfont-gm or "
        "musescore-general-soundfont first), or the path of a .sf2/.sf3 file.")


def resolve_soundfont(name: str) -> SoundFont:
    """The soundfont named by ``task.soundfont``: ``TimGM6mb``, a known Debian soundfont name, or a file path.

    Resolved on every call (its digest is remembered per size and mtime by :mod:`benchmark.checksums`), so a file
    edited in place is seen as the new soundfont it is.
    """
    if name == BUNDLED_SOUNDFONT:
        try:
            import pretty_midi
        except ImportError:
            raise soundfont_error(name, "the pretty_midi package that ships it is not installed "
                                        "(pip install pretty_midi)") from None
        path = Path(pretty_midi.__file__).parent / "TimGM6mb.sf2"
    else:
        path = Path(os.path.expanduser(_KNOWN_SOUNDFONTS.get(name, name)))
    if not path.is_file():
        raise soundfont_error(name, f"{path} is not a file")
    if path.suffix.lower() not in (".sf2", ".sf3"):
        raise soundfont_error(name, f"{path} is not a .sf2 or .sf3 soundfont")
    font = SoundFont(name=name, path=path, sha256=file_sha256(path))
    problem = _unreadable(str(path), font.sha256)
    if problem:
        raise soundfont_error(name, f"{path} cannot be read as a soundfont ({problem})")
    return font


@lru_cache(maxsize=8)
def _unreadable(path: str, sha256: str) -> str:  # noqa: ARG001 - the digest keys the cache: an edited file is reread
    """Why TinySoundFont cannot load the file, or "" when it can (tried once per content)."""
    try:
        tinysoundfont_module().Synth().sfload(path)
    except (RuntimeError, OSError, ValueError) as exc:
        return str(exc)
    return ""


def renderer_identity(soundfont: SoundFont) -> dict[str, str]:
    """What decides the sound besides the score: renderer, its version, and the soundfont's content."""
    return {"renderer": "tinysoundfont", "tinysoundfont_version": tinysoundfont_version(),
            "soundfont": soundfont.name, "soundfont_sha256": soundfont.sha256}


def tinysoundfont_version() -> str:
    module = tinysoundfont_module()
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("tinysoundfont")
    except PackageNotFoundError:  # imported from the fetched wheel, which is pinned
        return getattr(module, "__version__", TINYSOUNDFONT_VERSION)


@lru_cache(maxsize=1)
def tinysoundfont_module() -> ModuleType:
    """``tinysoundfont``: the installed package, else the pinned wheel for this platform fetched from PyPI.

    The wheel is checked against its published sha256, unpacked once into the wheel cache and imported from there
    (nothing is installed into the environment).
    """
    try:
        import tinysoundfont

        return tinysoundfont
    except ImportError:
        pass
    from packaging.tags import sys_tags
    from packaging.utils import parse_wheel_filename

    from benchmark.wheel_assets import PinnedWheel, fetch_wheel, wheel_cache_dir

    supported = {str(tag): rank for rank, tag in enumerate(sys_tags())}
    ranked = []
    for filename, (folder, sha256) in TINYSOUNDFONT_WHEELS.items():
        ranks = [supported[str(tag)] for tag in parse_wheel_filename(filename)[3] if str(tag) in supported]
        if ranks:
            ranked.append((min(ranks), filename, folder, sha256))
    if not ranked:
        raise RendererMissingError(
            f"no tinysoundfont {TINYSOUNDFONT_VERSION} wheel is published for this Python and platform. Install it "
            f"from source without its playback dependency: pip install --no-deps tinysoundfont=={TINYSOUNDFONT_VERSION}")
    _, filename, folder, sha256 = min(ranked)
    wheel = fetch_wheel(PinnedWheel(filename, f"{FILES_HOST}{folder}/{filename}", sha256), offline_fix=(
        f"With no connection, install it from a copy fetched elsewhere, without its playback dependency: "
        f"pip install --no-deps {filename}"))
    unpacked = wheel_cache_dir() / filename[: -len(".whl")]
    if not (unpacked / "tinysoundfont" / "__init__.py").is_file():
        from benchmark.tasks.download import extract

        partial = unpacked.with_name(unpacked.name + f".part-{os.getpid()}")
        extract(wheel, partial)
        try:
            partial.rename(unpacked)
        except OSError:  # another process unpacked it first
            pass
    sys.path.insert(0, str(unpacked))
    try:
        import tinysoundfont
    finally:
        sys.path.remove(str(unpacked))
    return tinysoundfont


class RendererMissingError(UserError, ImportError):
    """The soundfont renderer cannot be imported or fetched for this platform."""


def render_midi(midi: bytes, *, program: int, soundfont: SoundFont, sample_rate: int, seconds: float,
                qpm: float | None = None, transpose: int = 0) -> np.ndarray:
    """Mono float32 audio of exactly ``seconds``: the MIDI with every part played by GM ``program``.

    ``qpm`` replaces the file's tempo (quarter notes per minute, one tempo throughout); ``transpose`` shifts every
    note by that many semitones. A piece shorter than ``seconds`` is played again from the start (as a hymn's next
    verse or a dance tune's next round), so every clip is full. Raises ``ValueError`` for a score that sounds nothing.

    The MIDI is read by ``symusic`` (tempo map and transposition); the sound is TinySoundFont's, driven note by note:
    each part gets its own MIDI channel, so a unison of two voices does not end when the first voice releases.
    """
    from symusic import Score, Tempo

    score = Score.from_midi(midi)
    if transpose:
        score = score.shift_pitch(int(transpose))
    if qpm is not None:
        score.tempos.clear()
        score.tempos.append(Tempo(0, float(qpm)))
    events: list[tuple[float, int, int, int, int]] = []  # (seconds, off before on, channel, pitch, velocity)
    tracks = [t for t in score.to("second").tracks if not t.is_drum and len(t.notes)]
    if len(tracks) > 15:
        raise ValueError(f"{len(tracks)} parts: at most 15 can each have a channel (channel 10 is for drums)")
    for k, track in enumerate(tracks):
        channel = k if k < 9 else k + 1
        for note in track.notes:
            events.append((float(note.time), 1, channel, int(note.pitch), int(note.velocity)))
            events.append((float(note.time + note.duration), 0, channel, int(note.pitch), 0))
    if not events:
        raise ValueError("the score has no notes")
    events.sort()
    tsf = tinysoundfont_module()
    synth = tsf.Synth(samplerate=int(sample_rate))
    sfid = synth.sfload(str(soundfont.path))
    for k in range(len(tracks)):
        synth.program_select(k if k < 9 else k + 1, sfid, 0, int(program))
    chunks, position = [], 0
    for when, is_on, channel, pitch, velocity in events:
        sample = int(round(when * sample_rate))
        if sample > position:
            chunks.append(np.frombuffer(synth.generate(sample - position), dtype=np.float32))
            position = sample
        if is_on:
            synth.noteon(channel, pitch, velocity)
        else:
            synth.noteoff(channel, pitch)
    chunks.append(np.frombuffer(synth.generate(int(RELEASE_SECONDS * sample_rate)), dtype=np.float32))
    audio = np.concatenate(chunks).reshape(-1, 2).mean(axis=1)
    peak = float(np.abs(audio).max()) if audio.size else 0.0
    if not np.isfinite(peak) or peak < SILENT_PEAK:
        raise ValueError(f"the score rendered to silence (peak {peak:.2e}) with program {program}")
    # trim the release's trailing silence before looping, so a repeat follows the last note's decay
    audible = np.flatnonzero(np.abs(audio) > peak * 1e-3)
    audio = audio[: int(audible[-1]) + 1]
    n = int(round(seconds * sample_rate))
    if audio.size < n:
        audio = np.tile(audio, -(-n // audio.size))
    audio = audio[:n]
    return (audio * (PEAK / float(np.abs(audio).max()))).astype(np.float32)
