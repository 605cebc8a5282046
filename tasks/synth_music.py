"""Music composition for the synthetic tasks: note tables, voicings, chord patterns, melodies, bass, drums.

Everything here writes a score (a list of :class:`~benchmark.tasks.synth_audio.NoteEvent`); :mod:`benchmark.tasks.synth_audio`
turns scores into sound. Every random choice draws from an explicit ``numpy.random.Generator``, so a score is a
pure function of its seed. Changing what any helper draws, or in which order, changes the rendered datasets:
bump ``benchmark.tasks.synth_base.GENERATOR_VERSION`` when that is intended.
"""
from __future__ import annotations

import math
from typing import Mapping, Sequence

import numpy as np

from benchmark.tasks.synth_audio import NoteEvent

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

# Instruments that can carry the harmony of a clip, and the ways they can play a chord (see chord_pattern).
HARMONY_INSTRUMENTS: tuple[str, ...] = (
    "piano", "epiano", "pluck", "organ", "pad", "strings", "brass", "reed", "marimba",
)
PATTERN_STYLES: tuple[str, ...] = ("block", "strum", "restrike", "arpeggio")

# One bar of 16 steps per drum; "hat" lists are filled in per tempo (8ths, 16ths or quarters).
DRUM_PATTERNS: tuple[dict[str, tuple[int, ...]], ...] = (
    {"kick": (0, 8), "snare": (4, 12)},                  # backbeat
    {"kick": (0, 8, 10), "snare": (4, 12)},              # backbeat with a pushed kick
    {"kick": (0, 4, 8, 12), "snare": (4, 12)},           # four on the floor
    {"kick": (0, 6, 8), "snare": (4, 12)},               # syncopated kick
    {"kick": (0, 7, 8), "snare": (4, 12, 15)},           # with a pickup snare
)


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
    weights = np.ones(len(numerals))
    weights[-1] = rng.uniform(1.0, 1.6)
    bounds = t0 + (t1 - t0) * np.concatenate([[0.0], np.cumsum(weights) / weights.sum()])
    return [(float(bounds[i]), float(bounds[i + 1]), *numeral_chord(numeral, tonic_pc, mode))
            for i, numeral in enumerate(numerals)]


def numeral_chord(numeral: str, tonic_pc: int, mode: str) -> tuple[int, tuple[int, ...]]:
    """Root pitch class and intervals of the chord a Roman numeral names in the key ``tonic_pc`` ``mode``."""
    offset, quality = (MAJOR_NUMERALS if mode == "major" else MINOR_NUMERALS)[numeral]
    return (tonic_pc + offset) % 12, CHORD_QUALITIES[quality]



def random_key(rng: np.random.Generator) -> tuple[int, str]:
    """A random tonic pitch class and mode (``major`` or ``minor``, equally likely)."""
    tonic = int(rng.integers(12))
    mode = "major" if rng.random() < 0.5 else "minor"
    return tonic, mode


def random_progression(mode: str, rng: np.random.Generator) -> tuple[str, ...]:
    """One of the cadential progressions of ``mode`` (Roman numerals), uniformly."""
    progs = MAJOR_PROGRESSIONS if mode == "major" else MINOR_PROGRESSIONS
    return progs[int(rng.integers(len(progs)))]


def scale_pitch_classes(tonic_pc: int, mode: str) -> list[int]:
    """Pitch classes of the major or (harmonic) minor scale on ``tonic_pc``."""
    return [(tonic_pc + s) % 12 for s in (MAJOR_SCALE if mode == "major" else HARMONIC_MINOR_SCALE)]


def retune(events: Sequence[NoteEvent], semitones: float) -> list[NoteEvent]:
    """The events shifted by ``semitones`` (fractional: the whole band slightly off A440)."""
    return [NoteEvent(e.instrument, e.midi + semitones, e.start, e.duration, e.velocity) for e in events]
