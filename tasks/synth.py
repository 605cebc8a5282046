"""Synthetic tasks: deterministic, download-free datasets of every task type, rendered to real audio files.

Why: the suite must run end to end offline (CI, a fresh checkout, a machine without the real datasets) and every
task type needs a fixture. Each task here composes short pieces of music from a seed (chords, progressions,
melodies, drum grooves; see :mod:`tasks.synth_audio` for the sound), renders them with numpy and writes them
as ordinary dataset files, so the pipeline reads them exactly like a downloaded dataset::

    <data_root>/<task>/audio/<track_id>.wav    mono 16-bit PCM at ``sample_rate`` (22050 Hz by default, so
                                               the encoders' resampling is exercised)
    <data_root>/<task>/manifest.csv            track_id, path (relative to the task folder), split, labels, meta_*
    <data_root>/<task>/generator.json          generator version and every parameter (= dataset_identity())

Tasks:
    synth_chords  multiclass  root (12) x {maj, min, dim, 7}, labels ``C:maj`` .. ``B:7``
    synth_key     key         24 keys in mir_eval spelling (``C major`` .. ``Bb minor``, flats)
    synth_tags    multilabel  which of pad, pluck, organ, bell, bass, drums play
    synth_tempo   regression  tempo of a drum groove in BPM

A clip is a pure function of ``(seed, task, split, index)``, so renders are reproducible and independent.
"""
from __future__ import annotations

import abc
import csv
import json
import math
import os
import shutil
import socket
import subprocess
import sys
import warnings
import zlib
from pathlib import Path
from typing import Any, ClassVar, Mapping, Sequence

import numpy as np
import soundfile as sf

from tasks.base import SPLITS, Task, Track
from tasks.registry import register_task
from tasks.synth_audio import NoteEvent, master, render_events

# Bump when a change to this module or synth_audio changes the rendered audio or labels: it is part of
# generator.json and dataset_identity(), so caches and rendered folders are invalidated.
GENERATOR_VERSION = 1

# Keys every task config carries that are about windowing/registration, not about the generated data.
_PIPELINE_KEYS = frozenset({"name", "kind", "window_seconds", "hop_seconds"})
# Config keys that change how the render runs but not what it produces (so not part of the identity):
# render_workers = processes rendering in parallel (0 = one per available CPU core, at most 8).
_RUNTIME_DEFAULTS: dict[str, int] = {"render_workers": 0}
# Below this many clips extra worker processes cost more (interpreter start-up) than they save.
_MIN_CLIPS_FOR_WORKERS = 64

PITCH_CLASSES_SHARP: tuple[str, ...] = ("C", "C#", "D", "D#", "E", "F", "F#", "G", "G#", "A", "A#", "B")
PITCH_CLASSES_FLAT: tuple[str, ...] = ("C", "Db", "D", "Eb", "E", "F", "Gb", "G", "Ab", "A", "Bb", "B")
CHORD_QUALITIES: dict[str, tuple[int, ...]] = {
    "maj": (0, 4, 7),
    "min": (0, 3, 7),
    "dim": (0, 3, 6),
    "7": (0, 4, 7, 10),
}
MAJOR_SCALE: tuple[int, ...] = (0, 2, 4, 5, 7, 9, 11)
HARMONIC_MINOR_SCALE: tuple[int, ...] = (0, 2, 3, 5, 7, 8, 11)

# Roman numeral -> (semitones above the tonic, chord quality).
MAJOR_NUMERALS: dict[str, tuple[int, str]] = {
    "I": (0, "maj"), "ii": (2, "min"), "iii": (4, "min"), "IV": (5, "maj"), "V": (7, "maj"), "V7": (7, "7"),
    "vi": (9, "min"),
}
MINOR_NUMERALS: dict[str, tuple[int, str]] = {
    "i": (0, "min"), "iio": (2, "dim"), "III": (3, "maj"), "iv": (5, "min"), "V": (7, "maj"), "V7": (7, "7"),
    "VI": (8, "maj"), "VII": (10, "maj"),
}
# Every progression states the tonic and its dominant, so the key (not just the relative key) is implied;
# minor ones use the harmonic-minor V with its leading tone for the same reason.
MAJOR_PROGRESSIONS: tuple[tuple[str, ...], ...] = (
    ("I", "IV", "V", "I"),
    ("I", "vi", "IV", "V7", "I"),
    ("ii", "V7", "I"),
    ("I", "V", "vi", "IV", "V", "I"),
    ("vi", "ii", "V7", "I"),
    ("I", "IV", "I", "V7", "I"),
    ("I", "iii", "IV", "V7", "I"),
    ("IV", "V7", "I", "I"),
)
MINOR_PROGRESSIONS: tuple[tuple[str, ...], ...] = (
    ("i", "iv", "V", "i"),
    ("i", "VI", "iv", "V7", "i"),
    ("iio", "V7", "i"),
    ("i", "VII", "VI", "V", "i"),
    ("i", "iv", "VI", "V7", "i"),
    ("VI", "iv", "V7", "i"),
    ("i", "iio", "V7", "i"),
    ("i", "III", "iv", "V", "i"),
)

HARMONY_INSTRUMENTS: tuple[str, ...] = (
    "piano", "epiano", "pluck", "organ", "pad", "strings", "brass", "reed", "marimba",
)
MELODY_INSTRUMENTS: tuple[str, ...] = (
    "piano", "epiano", "pluck", "organ", "strings", "brass", "reed", "marimba", "bell",
)
TAG_INSTRUMENTS: tuple[str, ...] = ("pad", "pluck", "organ", "bell", "bass", "drums")
GROOVE_INSTRUMENTS: tuple[str, ...] = ("piano", "epiano", "pluck", "organ", "marimba")
PATTERN_STYLES: tuple[str, ...] = ("block", "strum", "restrike", "arpeggio")
# Per-clip level draws in the tag arrangement: the five pitched tags and each drum of the kit (one draw per
# drum type, so the kit balance varies too).
TAG_GAIN_KEYS: tuple[str, ...] = ("pad", "pluck", "organ", "bell", "bass", "kick", "snare", "hat", "open_hat")

# One bar of 16 steps per drum; "hat" lists are filled in per tempo (8ths, 16ths or quarters).
DRUM_PATTERNS: tuple[dict[str, tuple[int, ...]], ...] = (
    {"kick": (0, 8), "snare": (4, 12)},                  # backbeat
    {"kick": (0, 8, 10), "snare": (4, 12)},              # backbeat with a pushed kick
    {"kick": (0, 4, 8, 12), "snare": (4, 12)},           # four on the floor
    {"kick": (0, 6, 8), "snare": (4, 12)},               # syncopated kick
    {"kick": (0, 7, 8), "snare": (4, 12, 15)},           # with a pickup snare
)


# --------------------------------------------------------------------------------------------- music helpers
def _nearest_midi(pc: int, target: float) -> int:
    """MIDI pitch of pitch class ``pc`` closest to ``target``."""
    base = int(round(target))
    return base + ((pc - base + 6) % 12) - 6


def voice_chord(root_pc: int, intervals: Sequence[int], rng: np.random.Generator, center: float = 62.0,
                inversion: int | None = None, open_p: float = 0.3, double_p: float = 0.4) -> list[int]:
    """A close- or open-position voicing of a chord near ``center``.

    Picks an inversion (random unless given), stacks the chord tones upward from there, sometimes raises the
    second voice an octave (open position) and sometimes doubles the lowest voice an octave up.
    """
    pcs = [(root_pc + i) % 12 for i in intervals]
    inv = int(rng.integers(len(pcs))) if inversion is None else inversion % len(pcs)
    order = pcs[inv:] + pcs[:inv]
    notes = [_nearest_midi(order[0], center - 5.0)]
    for pc in order[1:]:
        notes.append(notes[-1] + ((pc - notes[-1]) % 12 or 12))
    if len(notes) >= 3 and rng.random() < open_p:
        notes[1] += 12
    if rng.random() < double_p:
        notes.append(notes[0] + 12)
    return sorted(notes)


def voice_lead(root_pc: int, intervals: Sequence[int], previous: Sequence[int] | None, rng: np.random.Generator,
               center: float = 62.0) -> list[int]:
    """Voicing of the next chord that moves the voices least from ``previous`` (smooth, like a player would)."""
    if not previous:
        return voice_chord(root_pc, intervals, rng, center=center, open_p=0.0, double_p=0.0)
    best: list[int] = []
    best_cost = math.inf
    for inv in range(len(intervals)):
        for shift in (-12, 0, 12):
            cand = [n + shift for n in voice_chord(root_pc, intervals, rng, center=center, inversion=inv,
                                                   open_p=0.0, double_p=0.0)]
            cost = sum(min(abs(c - p) for p in previous) for c in cand)
            cost += sum(min(abs(c - p) for c in cand) for p in previous)
            cost += 0.3 * abs(float(np.mean(cand)) - center) + rng.uniform(0.0, 0.5)
            if cost < best_cost:
                best, best_cost = cand, cost
    return best


def chord_pattern(pitches: Sequence[float], t0: float, t1: float, style: str, instrument: str,
                  rng: np.random.Generator, velocity: float, step: float | None = None) -> list[NoteEvent]:
    """Play a voiced chord over ``[t0, t1)``: held (``block``), ``strum``, ``restrike`` or ``arpeggio``.

    ``step`` is the re-strike/arpeggio pulse in seconds (random when not given).
    """
    span = t1 - t0
    notes = sorted(pitches)
    events: list[NoteEvent] = []

    def vel() -> float:
        return float(np.clip(velocity + rng.normal(0.0, 0.06), 0.1, 1.0))

    if style == "block":
        for p in notes:
            events.append(NoteEvent(instrument, p, t0 + rng.uniform(0.0, 0.008), span * 0.97, vel()))
    elif style == "strum":
        gap = rng.uniform(0.01, 0.035)
        order = notes if rng.random() < 0.7 else notes[::-1]
        for i, p in enumerate(order):
            events.append(NoteEvent(instrument, p, t0 + i * gap, max(span * 0.97 - i * gap, 0.05), vel()))
    elif style == "restrike":
        pulse = step if step is not None else span / int(rng.integers(2, 5))
        n_hits = max(1, int(round(span / pulse)))
        for h in range(n_hits):
            start = t0 + h * pulse
            accent = 1.0 if h == 0 else 0.85
            for p in notes:
                events.append(NoteEvent(instrument, p, start + rng.uniform(0.0, 0.01), pulse * 0.85,
                                        vel() * accent))
    elif style == "arpeggio":
        pulse = step if step is not None else rng.uniform(0.11, 0.3)
        shape = rng.choice(["up", "down", "updown", "random"])
        if shape == "up":
            cycle = list(notes)
        elif shape == "down":
            cycle = notes[::-1]
        elif shape == "updown":
            cycle = list(notes) + notes[-2:0:-1]
        else:
            cycle = list(rng.permutation(notes))
        n_steps = max(1, int(span / pulse))
        for s in range(n_steps):
            start = t0 + s * pulse
            ring = min(pulse * rng.uniform(1.5, 4.0), t1 - start)
            events.append(NoteEvent(instrument, float(cycle[s % len(cycle)]), start, max(ring, 0.05), vel()))
    else:
        raise ValueError(f"unknown chord pattern style {style!r}")
    return events


def melody(scale_pcs: Sequence[int], tonic_pc: int, chord_spans: Sequence[tuple[float, float, list[int]]],
           instrument: str, rng: np.random.Generator, low: int = 67, high: int = 86,
           pulse: float | None = None) -> list[NoteEvent]:
    """A stepwise melody in the scale that lands on chord tones at chord changes and ends on the tonic.

    ``chord_spans`` are ``(start, end, chord pitches)``; the melody covers them back to back.
    """
    high = max(high, low + 12)  # at least an octave, so every scale degree (the tonic too) is available
    pool = [m for m in range(low, high + 1) if m % 12 in scale_pcs]
    if not pool or not chord_spans:
        return []
    pulse = pulse if pulse is not None else rng.uniform(0.18, 0.4)
    start_t, end_t = chord_spans[0][0], chord_spans[-1][1]
    idx = int(rng.integers(len(pool) // 4, 3 * len(pool) // 4 + 1))
    events: list[NoteEvent] = []
    t = start_t
    span_i = 0
    while t < end_t - 0.05:
        while span_i + 1 < len(chord_spans) and t >= chord_spans[span_i + 1][0] - 1e-6:
            span_i += 1
            chord_pcs = {p % 12 for p in chord_spans[span_i][2]}
            if rng.random() < 0.75:  # land on a chord tone at the change
                cands = [i for i, m in enumerate(pool) if m % 12 in chord_pcs]
                idx = min(cands, key=lambda i: abs(i - idx) + rng.uniform(0.0, 0.5))
        length = pulse * float(rng.choice([1.0, 1.0, 2.0, 0.5, 1.5]))
        length = min(length, end_t - t)
        last = t + length >= end_t - 0.05
        if last:  # cadence: end on the tonic
            tonics = [i for i, m in enumerate(pool) if m % 12 == tonic_pc]
            idx = min(tonics, key=lambda i: abs(i - idx))
        if rng.random() > 0.1 or last:  # occasional rest
            events.append(NoteEvent(instrument, float(pool[idx]), t, length * 0.9,
                                    float(np.clip(rng.uniform(0.55, 0.9), 0.1, 1.0))))
        idx = int(np.clip(idx + rng.choice([-2, -1, -1, 0, 1, 1, 2]), 0, len(pool) - 1))
        t += length
    return events


def bass_line(chord_spans: Sequence[tuple[float, float, int]], instrument: str, rng: np.random.Generator,
              pulse: float | None = None, low: int = 33) -> list[NoteEvent]:
    """Root notes of each chord span in the bass register, held or repeated on a pulse."""
    events: list[NoteEvent] = []
    for t0, t1, pc in chord_spans:
        midi = low + (pc - low) % 12
        if pulse is None:
            events.append(NoteEvent(instrument, float(midi), t0, (t1 - t0) * 0.95, rng.uniform(0.7, 0.95)))
            continue
        t = t0
        while t < t1 - 1e-6:
            octave = 12 if rng.random() < 0.1 else 0
            events.append(NoteEvent(instrument, float(midi + octave), t, min(pulse, t1 - t) * 0.8,
                                    rng.uniform(0.65, 0.95)))
            t += pulse
    return events


def drum_groove(bpm: float, t0: float, t_end: float, rng: np.random.Generator,
                pattern: Mapping[str, Sequence[int]] | None = None) -> list[NoteEvent]:
    """A 4/4 kit groove (kick, snare, hats) from ``t0`` to ``t_end`` with accents and slight humanisation.

    Beats (every 4th sixteenth) get louder hats than off-beats so the beat, not the hat pulse, dominates.
    """
    pattern = dict(pattern if pattern is not None else DRUM_PATTERNS[int(rng.integers(len(DRUM_PATTERNS)))])
    if "hat" not in pattern:
        if bpm < 105 and rng.random() < 0.5:
            pattern["hat"] = tuple(range(16))
        elif rng.random() < 0.2:
            pattern["hat"] = (0, 4, 8, 12)
        else:
            pattern["hat"] = tuple(range(0, 16, 2))
    sixteenth = 60.0 / bpm / 4.0
    open_hat_step = 14 if rng.random() < 0.3 else None
    events: list[NoteEvent] = []
    step_t = t0
    step = 0
    while step_t < t_end:
        s = step % 16
        on_beat = s % 4 == 0
        for drum, steps in pattern.items():
            if s not in steps:
                continue
            kind = "open_hat" if drum == "hat" and s == open_hat_step else drum
            if drum == "kick":
                v = rng.uniform(0.85, 1.0)
            elif drum == "snare":
                v = rng.uniform(0.8, 0.95) if on_beat else rng.uniform(0.45, 0.6)
            else:
                v = rng.uniform(0.6, 0.75) if on_beat else rng.uniform(0.35, 0.5)
            events.append(NoteEvent(kind, 45.0, step_t + rng.normal(0.0, 0.004), 0.1, v))
        step += 1
        step_t = t0 + step * sixteenth
    return events


def progression_spans(numerals: Sequence[str], tonic_pc: int, mode: str, t0: float, t1: float,
                      rng: np.random.Generator) -> list[tuple[float, float, int, tuple[int, ...]]]:
    """Split ``[t0, t1)`` among the chords of a progression (the last chord a little longer).

    Returns ``(start, end, root pitch class, intervals)`` per chord.
    """
    table = MAJOR_NUMERALS if mode == "major" else MINOR_NUMERALS
    weights = np.ones(len(numerals))
    weights[-1] = rng.uniform(1.0, 1.6)
    bounds = t0 + (t1 - t0) * np.concatenate([[0.0], np.cumsum(weights) / weights.sum()])
    spans = []
    for i, numeral in enumerate(numerals):
        offset, quality = table[numeral]
        spans.append((float(bounds[i]), float(bounds[i + 1]), (tonic_pc + offset) % 12, CHORD_QUALITIES[quality]))
    return spans


# ------------------------------------------------------------------------------------------ task machinery
def _task_code(name: str) -> int:
    """A stable integer per task name so two tasks with the same seed still get different clips."""
    return zlib.crc32(name.encode("utf-8"))


class SynthTask(Task):
    """Shared machinery: parameters, deterministic per-clip seeds, atomic render to disk, manifest reading.

    Subclasses set ``name``, ``task_type``, ``labels``, ``size_defaults`` (n_train/n_valid/n_test),
    ``extra_defaults`` (task-specific parameters) and implement ``_assign_labels``, ``_render_clip``,
    ``_label_columns`` and ``_target_from_row``.
    """

    common_defaults: ClassVar[dict[str, Any]] = {"seed": 0, "clip_seconds": 3.0, "sample_rate": 22050}
    size_defaults: ClassVar[dict[str, int]] = {}
    extra_defaults: ClassVar[dict[str, Any]] = {}

    def __init__(self, cfg: Mapping[str, Any] | None = None) -> None:
        super().__init__(cfg)
        self.params: dict[str, Any] = self._resolve_params(self.cfg)

    # -- parameters ------------------------------------------------------------------------------------
    def _resolve_params(self, cfg: Mapping[str, Any]) -> dict[str, Any]:
        """Defaults overridden by the config, coerced to canonical types (so ``3`` and ``3.0`` are one dataset)."""
        defaults = {**self.common_defaults, **self.size_defaults, **self.extra_defaults}
        unknown = sorted(set(cfg) - set(defaults) - _PIPELINE_KEYS - set(_RUNTIME_DEFAULTS))
        if unknown:
            warnings.warn(f"task {self.name}: ignoring unknown config keys {unknown}; known: {sorted(defaults)}",
                          stacklevel=3)
        params: dict[str, Any] = {}
        for key, default in defaults.items():
            value = cfg.get(key, default)
            if value is None:
                value = default
            if isinstance(default, float):
                params[key] = float(value)
            else:
                if float(value) != int(float(value)):
                    raise ValueError(f"task {self.name}: {key} must be an integer, got {value!r}")
                params[key] = int(float(value))
        if params["seed"] < 0:
            raise ValueError(f"task {self.name}: seed must be >= 0, got {params['seed']}")
        if params["clip_seconds"] <= 0.5:
            raise ValueError(f"task {self.name}: clip_seconds must be > 0.5, got {params['clip_seconds']}")
        if params["sample_rate"] < 8000:
            raise ValueError(f"task {self.name}: sample_rate must be >= 8000, got {params['sample_rate']}")
        for split in SPLITS:
            if params[f"n_{split}"] < 0:
                raise ValueError(f"task {self.name}: n_{split} must be >= 0")
        self._check_params(params)
        workers = cfg.get("render_workers")
        self.render_workers = int(workers) if workers is not None else _RUNTIME_DEFAULTS["render_workers"]
        if self.render_workers < 0:
            raise ValueError(f"task {self.name}: render_workers must be >= 0")
        return params

    def _check_params(self, params: dict[str, Any]) -> None:
        """Task-specific parameter validation (override)."""

    def dataset_identity(self) -> dict[str, Any]:
        """Task name, generator version and every generator parameter: all that decides the rendered audio."""
        return {"task": self.name, "generator_version": GENERATOR_VERSION, "params": dict(self.params)}

    # -- layout ----------------------------------------------------------------------------------------
    def task_dir(self, data_root: Path | str) -> Path:
        """Folder of this task's rendered dataset."""
        return Path(data_root) / self.name

    def is_prepared(self, data_root: Path | str) -> bool:
        """Whether the folder holds a complete render made with exactly the current parameters."""
        folder = self.task_dir(data_root)
        try:
            stored = json.loads((folder / "generator.json").read_text())
        except (OSError, ValueError):
            return False
        if stored != self.dataset_identity():
            return False
        try:
            rows = self._read_manifest(folder)
        except (OSError, ValueError, KeyError):
            return False
        expected = sum(self.params[f"n_{s}"] for s in SPLITS)
        return len(rows) == expected and all((folder / r["path"]).is_file() for r in rows)

    # -- rendering -------------------------------------------------------------------------------------
    def _clip_rng(self, purpose: int, split: str, index: int) -> np.random.Generator:
        """Independent random stream per (seed, task, purpose, split, clip): clips do not depend on each other."""
        key = [self.params["seed"], _task_code(self.name), purpose, SPLITS.index(split), index]
        return np.random.default_rng(np.random.SeedSequence(key))

    @abc.abstractmethod
    def _assign_labels(self, split: str, n: int, rng: np.random.Generator) -> list[Any]:
        """The label (class index, tag set, tempo) of each clip of a split, decided before rendering."""

    @abc.abstractmethod
    def _render_clip(self, label: Any, rng: np.random.Generator) -> tuple[np.ndarray, dict[str, str]]:
        """Audio (float32, peak < 1) of one clip with the given label, plus ``meta_*`` manifest columns."""

    @abc.abstractmethod
    def _label_columns(self, label: Any) -> dict[str, str]:
        """Manifest label columns of a label."""

    @abc.abstractmethod
    def _target_from_row(self, row: Mapping[str, str]) -> Any:
        """``Track.target`` from a manifest row."""

    def clip_specs(self) -> list[tuple[str, str, int, Any]]:
        """``(track_id, split, index, label)`` of every clip, in manifest order (cheap: no audio)."""
        specs = []
        for split in SPLITS:
            n = self.params[f"n_{split}"]
            labels = self._assign_labels(split, n, self._clip_rng(0, split, 0)) if n else []
            for i, label in enumerate(labels):
                specs.append((f"{split}_{i:04d}", split, i, label))
        return specs

    def render_clip(self, split: str, index: int, label: Any) -> tuple[np.ndarray, dict[str, str]]:
        """Render one clip exactly as :meth:`prepare` does (useful for listening and tests)."""
        return self._render_clip(label, self._clip_rng(1, split, index))

    def prepare(self, data_root: Path | str) -> None:
        """Render the dataset unless an identical render is already there.

        Renders into a hidden temporary folder and swaps it in with renames at the end, so an interrupted
        render never leaves a half-written dataset under the task's name.
        """
        root = Path(data_root)
        if self.is_prepared(root):
            return
        root.mkdir(parents=True, exist_ok=True)
        self._remove_stale_temporaries(root)
        tag = f"{socket.gethostname()}-{os.getpid()}"
        tmp = root / f".{self.name}.rendering-{tag}"
        old = root / f".{self.name}.old-{tag}"
        final = self.task_dir(root)
        shutil.rmtree(tmp, ignore_errors=True)
        try:
            (tmp / "audio").mkdir(parents=True)
            specs = self.clip_specs()
            workers = self._worker_count(len(specs))
            if workers > 1:
                rows = self._render_in_workers(tmp, specs, workers)
            else:
                rows = [_render_to_file(self, tmp, spec) for spec in specs]
            self._write_manifest(tmp, rows)
            (tmp / "generator.json").write_text(json.dumps(self.dataset_identity(), indent=2, sort_keys=True) + "\n")
            if final.exists():
                final.rename(old)
            tmp.rename(final)
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
        shutil.rmtree(old, ignore_errors=True)

    def _render_in_workers(self, folder: Path, specs: list[tuple[str, str, int, Any]],
                           workers: int) -> list[dict[str, Any]]:
        """Render ``specs`` into ``folder`` with ``workers`` fresh interpreters, one shard each.

        Fresh ``python -c`` processes rather than multiprocessing: forking would copy whatever threads the
        caller holds (torch, CUDA) mid-state, and spawn re-imports the caller's ``__main__``, which breaks
        scripts without an ``if __name__ == "__main__"`` guard. Clips are independent (own seeds), so the
        result is byte-identical to a serial render.
        """
        env = dict(os.environ)
        package_root = str(Path(__file__).resolve().parent.parent)
        env["PYTHONPATH"] = os.pathsep.join(p for p in (package_root, env.get("PYTHONPATH", "")) if p)
        procs: list[tuple[subprocess.Popen[bytes], Path, Path]] = []
        try:
            for k in range(workers):
                job = folder / f".worker-{k}.json"
                job.write_text(json.dumps({"kind": self.name, "params": self.params, "folder": str(folder),
                                           "specs": specs[k::workers]}))
                log = folder / f".worker-{k}.log"
                with open(log, "wb") as log_fh:
                    proc = subprocess.Popen(
                        [sys.executable, "-c", "import sys; from tasks.synth import _worker_main; "
                                               "_worker_main(sys.argv[1])", str(job)],
                        env=env, stdout=subprocess.DEVNULL, stderr=log_fh)
                procs.append((proc, job, log))
            rows_by_id: dict[str, dict[str, Any]] = {}
            for proc, job, log in procs:
                if proc.wait() != 0:
                    tail = log.read_text(errors="replace")[-2000:]
                    raise RuntimeError(f"render worker for {self.name} failed (exit {proc.returncode}):\n{tail}")
                for row in json.loads(job.with_suffix(".rows").read_text()):
                    rows_by_id[row["track_id"]] = row
        finally:
            for proc, _, _ in procs:
                if proc.poll() is None:
                    proc.kill()
                    proc.wait()
        for leftover in folder.glob(".worker-*"):
            leftover.unlink()
        return [rows_by_id[track_id] for track_id, _, _, _ in specs]

    def _worker_count(self, n_clips: int) -> int:
        """Processes to render with: the configured number, or (0 = auto) one per usable core, at most 8."""
        if self.render_workers > 0:
            return self.render_workers
        if n_clips < _MIN_CLIPS_FOR_WORKERS:
            return 1
        try:
            cores = len(os.sched_getaffinity(0))
        except AttributeError:  # not on Linux
            cores = os.cpu_count() or 1
        return max(1, min(cores, 8))

    def _remove_stale_temporaries(self, root: Path) -> None:
        """Delete temporary folders left by renders of this task on this host whose process is gone."""
        host = socket.gethostname()
        for prefix in (f".{self.name}.rendering-{host}-", f".{self.name}.old-{host}-"):
            for path in root.glob(prefix + "*"):
                pid_text = path.name[len(prefix):]
                if pid_text.isdigit() and not _pid_alive(int(pid_text)):
                    shutil.rmtree(path, ignore_errors=True)

    @staticmethod
    def _write_manifest(folder: Path, rows: list[dict[str, Any]]) -> None:
        """Write manifest.csv with the union of columns, in first-seen order."""
        columns: list[str] = []
        for row in rows:
            columns.extend(c for c in row if c not in columns)
        if not columns:
            columns = ["track_id", "path", "split"]
        with open(folder / "manifest.csv", "w", newline="") as fh:
            writer = csv.DictWriter(fh, fieldnames=columns)
            writer.writeheader()
            writer.writerows(rows)

    @staticmethod
    def _read_manifest(folder: Path) -> list[dict[str, str]]:
        with open(folder / "manifest.csv", newline="") as fh:
            rows = list(csv.DictReader(fh))
        for row in rows:
            if not row["track_id"] or not row["path"] or row["split"] not in SPLITS:
                raise ValueError(f"malformed manifest row in {folder}: {row}")
        return rows

    # -- reading ---------------------------------------------------------------------------------------
    def tracks(self, data_root: Path) -> list[Track]:
        """All tracks from the manifest; renders first when the folder is missing or stale (synthetic data
        can always be regenerated, so there is nothing to download)."""
        self.prepare(data_root)
        folder = self.task_dir(data_root)
        return [
            Track(track_id=row["track_id"], path=folder / row["path"], split=row["split"],
                  target=self._target_from_row(row))
            for row in self._read_manifest(folder)
        ]

    def _master(self, dry: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        return master(dry, self.params["sample_rate"], rng)


def _render_to_file(task: SynthTask, folder: Path, spec: tuple[str, str, int, Any]) -> dict[str, Any]:
    """Render one clip into ``folder/audio`` and return its manifest row (module level: runs in workers)."""
    track_id, split, index, label = spec
    audio, meta = task.render_clip(split, index, label)
    rel = f"audio/{track_id}.wav"
    sf.write(folder / rel, audio, task.params["sample_rate"], subtype="PCM_16", format="WAV")
    return {"track_id": track_id, "path": rel, "split": split, **task._label_columns(label), **meta}


def _worker_main(job_path: str) -> None:
    """Entry point of a render worker: render the clips of a job file, write their manifest rows beside it."""
    from tasks.registry import build_task

    job = json.loads(Path(job_path).read_text())
    task = build_task({"kind": job["kind"], **job["params"], "render_workers": 1})
    if not isinstance(task, SynthTask) or task.params != job["params"]:
        raise RuntimeError(f"worker rebuilt {job['kind']} with different parameters")
    folder = Path(job["folder"])
    rows = []
    for track_id, split, index, label in job["specs"]:
        if isinstance(label, list):
            label = tuple(label)  # tag sets travel as JSON lists
        rows.append(_render_to_file(task, folder, (track_id, split, index, label)))
    Path(job_path).with_suffix(".rows").write_text(json.dumps(rows))


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _balanced(n: int, n_classes: int, rng: np.random.Generator) -> list[int]:
    """``n`` class indices with class counts differing by at most one, in random order."""
    return [int(x) for x in rng.permutation(np.arange(n) % n_classes)]


# ----------------------------------------------------------------------------------------------- the tasks
@register_task("synth_chords")
class SynthChords(SynthTask):
    """Chord recognition: one chord per clip, 12 roots x {maj, min, dim, 7}, balanced within each split.

    Instrument, voicing, inversion, register, playing style, tuning and room vary per clip; the root is
    usually in the bass so the label (root + quality) is well defined even for inverted upper voices.
    """

    name = "synth_chords"
    task_type = "multiclass"
    labels = [f"{root}:{q}" for root in PITCH_CLASSES_SHARP for q in CHORD_QUALITIES]
    size_defaults = {"n_train": 384, "n_valid": 96, "n_test": 96}

    def _assign_labels(self, split: str, n: int, rng: np.random.Generator) -> list[Any]:
        return _balanced(n, len(self.labels), rng)

    def _label_columns(self, label: Any) -> dict[str, str]:
        return {"label": self.labels[label]}

    def _target_from_row(self, row: Mapping[str, str]) -> Any:
        return self.labels.index(row["label"])

    def _render_clip(self, label: Any, rng: np.random.Generator) -> tuple[np.ndarray, dict[str, str]]:
        clip, sr = self.params["clip_seconds"], self.params["sample_rate"]
        root_pc, quality = divmod(int(label), len(CHORD_QUALITIES))
        intervals = list(CHORD_QUALITIES.values())[quality]
        inst = str(rng.choice(HARMONY_INSTRUMENTS))
        style = str(rng.choice(PATTERN_STYLES))
        tuning = rng.uniform(-0.15, 0.15)  # the whole band slightly off A440
        pitches = voice_chord(root_pc, intervals, rng, center=rng.uniform(56.0, 70.0))
        t0, t1 = rng.uniform(0.0, 0.15), clip - rng.uniform(0.0, 0.3)
        events = chord_pattern(pitches, t0, t1, style, inst, rng, velocity=rng.uniform(0.5, 0.95))
        bass_pc = -1
        if rng.random() < 0.85:
            bass_pc = root_pc if rng.random() < 0.8 else (root_pc + int(rng.choice(intervals[1:]))) % 12
            bass_inst = "bass" if rng.random() < 0.5 else inst
            pulse = None if rng.random() < 0.6 else (t1 - t0) / int(rng.integers(2, 5))
            events += bass_line([(t0, t1, bass_pc)], bass_inst, rng, pulse=pulse, low=int(rng.integers(33, 41)))
        events = [NoteEvent(e.instrument, e.midi + tuning, e.start, e.duration, e.velocity) for e in events]
        audio = self._master(render_events(events, clip, sr, rng), rng)
        meta = {"meta_instrument": inst, "meta_style": style,
                "meta_bass": PITCH_CLASSES_SHARP[bass_pc] if bass_pc >= 0 else "",
                "meta_voicing": " ".join(str(p) for p in pitches)}
        return audio, meta


@register_task("synth_key")
class SynthKey(SynthTask):
    """Key estimation: a short cadential progression (plus, often, a melody) in one of 24 keys.

    Labels are mir_eval key strings with flat spellings (``Db major``, ``Bb minor``) so predictions can be
    scored with ``mir_eval.key.weighted_score``; classes are balanced within each split.
    """

    name = "synth_key"
    task_type = "key"
    labels = [f"{pc} major" for pc in PITCH_CLASSES_FLAT] + [f"{pc} minor" for pc in PITCH_CLASSES_FLAT]
    size_defaults = {"n_train": 240, "n_valid": 72, "n_test": 72}
    extra_defaults = {"melody_probability": 0.6}

    def _check_params(self, params: dict[str, Any]) -> None:
        if not 0.0 <= params["melody_probability"] <= 1.0:
            raise ValueError("melody_probability must be in [0, 1]")

    def _assign_labels(self, split: str, n: int, rng: np.random.Generator) -> list[Any]:
        return _balanced(n, len(self.labels), rng)

    def _label_columns(self, label: Any) -> dict[str, str]:
        return {"label": self.labels[label]}

    def _target_from_row(self, row: Mapping[str, str]) -> Any:
        return self.labels.index(row["label"])

    def _render_clip(self, label: Any, rng: np.random.Generator) -> tuple[np.ndarray, dict[str, str]]:
        clip, sr = self.params["clip_seconds"], self.params["sample_rate"]
        tonic = int(label) % 12
        mode = "major" if int(label) < 12 else "minor"
        progs = MAJOR_PROGRESSIONS if mode == "major" else MINOR_PROGRESSIONS
        numerals = progs[int(rng.integers(len(progs)))]
        scale = [(tonic + s) % 12 for s in (MAJOR_SCALE if mode == "major" else HARMONIC_MINOR_SCALE)]
        inst = str(rng.choice(HARMONY_INSTRUMENTS))
        style = str(rng.choice(PATTERN_STYLES))
        tuning = rng.uniform(-0.15, 0.15)
        t0, t1 = rng.uniform(0.0, 0.1), clip - rng.uniform(0.0, 0.2)
        spans = progression_spans(numerals, tonic, mode, t0, t1, rng)
        center = rng.uniform(56.0, 68.0)
        pulse = rng.uniform(0.12, 0.3)
        velocity = rng.uniform(0.45, 0.85)
        events: list[NoteEvent] = []
        voiced: list[tuple[float, float, list[int]]] = []
        previous: list[int] | None = None
        for s0, s1, root, intervals in spans:
            pitches = voice_lead(root, intervals, previous, rng, center=center)
            previous = pitches
            voiced.append((s0, s1, pitches))
            events += chord_pattern(pitches, s0, s1, style, inst, rng, velocity=velocity, step=pulse)
        bass_inst = "bass" if rng.random() < 0.5 else inst
        events += bass_line([(s0, s1, root) for s0, s1, root, _ in spans], bass_inst, rng,
                            low=int(rng.integers(33, 41)))
        melody_inst = ""
        if rng.random() < self.params["melody_probability"]:
            melody_inst = str(rng.choice([m for m in MELODY_INSTRUMENTS if m != inst]))
            events += melody(scale, tonic, voiced, melody_inst, rng, low=int(rng.integers(64, 72)),
                             high=int(rng.integers(79, 88)))
        events = [NoteEvent(e.instrument, e.midi + tuning, e.start, e.duration, e.velocity) for e in events]
        audio = self._master(render_events(events, clip, sr, rng), rng)
        meta = {"meta_progression": "-".join(numerals), "meta_instrument": inst, "meta_style": style,
                "meta_melody": melody_inst}
        return audio, meta


@register_task("synth_tags")
class SynthTags(SynthTask):
    """Instrument tagging: which of six synthetic instruments play in a short arrangement.

    Each instrument plays with probability ``tag_probability`` (at least one always plays) and has a typical
    role (pad: held chords, pluck: arpeggios, organ: stabs, bell: melody, bass: roots, drums: a groove) over a
    shared random key, progression and tempo, so tags must be told apart by timbre and role, not by pitch.
    """

    name = "synth_tags"
    task_type = "multilabel"
    labels = list(TAG_INSTRUMENTS)
    size_defaults = {"n_train": 300, "n_valid": 100, "n_test": 100}
    extra_defaults = {"tag_probability": 0.4}

    def _check_params(self, params: dict[str, Any]) -> None:
        if not 0.0 < params["tag_probability"] <= 1.0:
            raise ValueError("tag_probability must be in (0, 1]")

    def _assign_labels(self, split: str, n: int, rng: np.random.Generator) -> list[Any]:
        out = []
        for _ in range(n):
            present = rng.random(len(self.labels)) < self.params["tag_probability"]
            if not present.any():
                present[rng.integers(len(self.labels))] = True
            out.append(tuple(int(i) for i in np.flatnonzero(present)))
        return out

    def _label_columns(self, label: Any) -> dict[str, str]:
        return {tag: str(int(i in label)) for i, tag in enumerate(self.labels)}

    def _target_from_row(self, row: Mapping[str, str]) -> Any:
        return tuple(i for i, tag in enumerate(self.labels) if row[tag] == "1")

    def _render_clip(self, label: Any, rng: np.random.Generator) -> tuple[np.ndarray, dict[str, str]]:
        clip, sr = self.params["clip_seconds"], self.params["sample_rate"]
        present = {self.labels[i] for i in label}
        tonic = int(rng.integers(12))
        mode = "major" if rng.random() < 0.5 else "minor"
        progs = MAJOR_PROGRESSIONS if mode == "major" else MINOR_PROGRESSIONS
        numerals = progs[int(rng.integers(len(progs)))]
        bpm = rng.uniform(80.0, 140.0)
        beat = 60.0 / bpm
        t0 = rng.uniform(0.0, 0.1)
        spans = progression_spans(numerals, tonic, mode, t0, clip, rng)
        scale = [(tonic + s) % 12 for s in (MAJOR_SCALE if mode == "major" else HARMONIC_MINOR_SCALE)]
        voiced: list[tuple[float, float, list[int]]] = []
        previous: list[int] | None = None
        for s0, s1, root, intervals in spans:
            previous = voice_lead(root, intervals, previous, rng, center=62.0)
            voiced.append((s0, s1, previous))

        events: list[NoteEvent] = []
        if "pad" in present:
            for s0, s1, pitches in voiced:
                events += chord_pattern(pitches, s0, s1, "block", "pad", rng, velocity=rng.uniform(0.6, 0.9))
        if "pluck" in present:
            for s0, s1, pitches in voiced:
                up = [p + 12 if rng.random() < 0.5 else p for p in pitches]
                events += chord_pattern(up, s0, s1, "arpeggio", "pluck", rng, velocity=0.75, step=beat / 2)
        if "organ" in present:
            style = "restrike" if rng.random() < 0.6 else "block"
            for s0, s1, pitches in voiced:
                events += chord_pattern([p - 5 for p in pitches], s0, s1, style, "organ", rng,
                                        velocity=rng.uniform(0.6, 0.85), step=beat)
        if "bell" in present:
            events += melody(scale, tonic, voiced, "bell", rng, low=72, high=89, pulse=beat)
        if "bass" in present:
            events += bass_line([(s0, s1, root) for s0, s1, root, _ in spans], "bass", rng,
                                pulse=beat if rng.random() < 0.6 else beat / 2)
        if "drums" in present:
            events += drum_groove(bpm, t0, clip, rng)
        gains = {name: float(10.0 ** (rng.uniform(-4.0, 4.0) / 20.0)) for name in TAG_GAIN_KEYS}
        audio = self._master(render_events(events, clip, sr, rng, gains=gains), rng)
        return audio, {"meta_bpm": f"{bpm:.2f}", "meta_key": f"{PITCH_CLASSES_FLAT[tonic]} {mode}"}



@register_task("synth_tempo")
class SynthTempo(SynthTask):
    """Tempo estimation: a drum groove (with accompaniment most of the time) at a tempo in BPM.

    Tempi are stratified over ``[tempo_min, tempo_max]`` within each split (even coverage, random order); the
    groove starts at a random phase of the bar so the first beat is not always at t = 0.
    """

    name = "synth_tempo"
    task_type = "regression"
    labels = ["tempo"]
    size_defaults = {"n_train": 240, "n_valid": 80, "n_test": 80}
    extra_defaults = {"tempo_min": 70.0, "tempo_max": 180.0}

    def _check_params(self, params: dict[str, Any]) -> None:
        if not 20.0 <= params["tempo_min"] < params["tempo_max"] <= 400.0:
            raise ValueError("need 20 <= tempo_min < tempo_max <= 400")

    def _assign_labels(self, split: str, n: int, rng: np.random.Generator) -> list[Any]:
        lo, hi = self.params["tempo_min"], self.params["tempo_max"]
        strata = (np.arange(n) + rng.uniform(0.0, 1.0, n)) / n
        return [round(float(lo + (hi - lo) * u), 2) for u in rng.permutation(strata)]

    def _label_columns(self, label: Any) -> dict[str, str]:
        return {"tempo": repr(float(label))}

    def _target_from_row(self, row: Mapping[str, str]) -> Any:
        return (float(row["tempo"]),)

    def _render_clip(self, label: Any, rng: np.random.Generator) -> tuple[np.ndarray, dict[str, str]]:
        clip, sr = self.params["clip_seconds"], self.params["sample_rate"]
        bpm = float(label)
        beat = 60.0 / bpm
        bar = 4 * beat
        start = -rng.uniform(0.0, bar)  # random phase: the groove was already playing when the clip began
        pattern_i = int(rng.integers(len(DRUM_PATTERNS)))
        events = drum_groove(bpm, start, clip, rng, pattern=DRUM_PATTERNS[pattern_i])
        accompaniment = ""
        if rng.random() < 0.8:
            accompaniment = str(rng.choice(GROOVE_INSTRUMENTS))
            tonic = int(rng.integers(12))
            mode = "major" if rng.random() < 0.5 else "minor"
            progs = MAJOR_PROGRESSIONS if mode == "major" else MINOR_PROGRESSIONS
            numerals = progs[int(rng.integers(len(progs)))]
            table = MAJOR_NUMERALS if mode == "major" else MINOR_NUMERALS
            previous: list[int] | None = None
            stab_beats = (0,) if rng.random() < 0.5 else (0, 2)
            bass_pulse = beat if rng.random() < 0.5 else 2 * beat
            for b in range(int(math.ceil((clip - start) / bar))):
                b0 = start + b * bar
                offset, quality = table[numerals[b % len(numerals)]]
                root = (tonic + offset) % 12
                previous = voice_lead(root, CHORD_QUALITIES[quality], previous, rng, center=62.0)
                for sb in stab_beats:
                    events += chord_pattern(previous, b0 + sb * beat, b0 + sb * beat + 0.9 * beat, "block",
                                            accompaniment, rng, velocity=rng.uniform(0.45, 0.65))
                events += bass_line([(b0, b0 + bar, root)], "bass", rng, pulse=bass_pulse)
        audio = self._master(render_events(events, clip, sr, rng), rng)
        return audio, {"meta_pattern": str(pattern_i), "meta_accompaniment": accompaniment,
                       "meta_first_beat": f"{start % beat:.4f}"}
