"""synth_beats: beat and downbeat tracking on synthetic grooves (frame level; beat F-measure).

Every clip is a drum-kit groove (most of the time with chords and bass changing at the bar lines) in one of
three meters, at a constant tempo, starting at a random phase of the bar. The beat grid is decided before the
audio is rendered, so the annotations are exact: beat ``k`` at ``offset + k * 60 / bpm`` (the hits are
humanised by a few ms, far below the 70 ms tolerance), downbeats every ``beats_per_bar`` beats.

    meter  beats per bar  subdivision      tempo (beats per minute)
    4/4    4              4 sixteenths     tempo_min .. tempo_max
    3/4    3              4 sixteenths     tempo_min .. tempo_max
    6/8    2 (felt in 2)  3 eighths        tempo_min .. min(tempo_max, compound_max)  (dotted quarters)

About one clip in ten has no drums (chords and bass only), so the task is not only "find the kick". The times
are stored in the manifest (``beats`` and ``downbeats``: space-separated seconds, 4 decimals).
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Mapping

import numpy as np

from benchmark.schema import BeatDecoderSpec, SynthTaskSpec
from benchmark.targets import BeatTarget
from benchmark.tasks.registry import register_task
from benchmark.tasks.synth_audio import NoteEvent
from benchmark.tasks.synth_base import SynthTask
from benchmark.tasks.synth_music import (
    DRUM_PATTERNS, bass_line, chord_pattern, numeral_chord, random_key, random_progression, voice_lead,
)

# meter -> (beats per bar, steps per beat, drum patterns over the bar's steps)
METERS: dict[str, tuple[int, int, tuple[dict[str, tuple[int, ...]], ...]]] = {
    "4/4": (4, 4, DRUM_PATTERNS),
    "3/4": (3, 4, (
        {"kick": (0,), "snare": (4, 8)},          # waltz: boom-chick-chick
        {"kick": (0, 6), "snare": (4, 8)},
        {"kick": (0,), "snare": (8,)},
    )),
    "6/8": (2, 3, (
        {"kick": (0,), "snare": (3,)},            # compound duple: two dotted-quarter beats of three eighths
        {"kick": (0, 5), "snare": (3,)},
        {"kick": (0, 2), "snare": (3,)},
    )),
}
ACCOMPANIMENT: tuple[str, ...] = ("piano", "epiano", "pluck", "organ", "marimba", "strings")
BEATS_VERSION = 1  # bump when this module's rendering or annotation changes


def _format_times(times: np.ndarray) -> str:
    return " ".join(f"{t:.4f}" for t in times)


def _parse_times(text: str) -> tuple[float, ...]:
    return tuple(float(x) for x in text.split())


def beat_grid(bpm: float, meter: str, offset: float, seconds: float) -> tuple[np.ndarray, np.ndarray]:
    """(beat times, downbeat times) in ``[0, seconds)`` of a groove whose bar started at ``offset`` (<= 0)."""
    beats_per_bar = METERS[meter][0]
    period = 60.0 / bpm
    k = np.arange(int(math.ceil(-offset / period - 1e-9)), int(math.ceil((seconds - offset) / period)) + 1)
    times = offset + k * period
    keep = (times >= 0.0) & (times < seconds)
    return times[keep], times[keep & (k % beats_per_bar == 0)]


def groove(bpm: float, meter: str, offset: float, seconds: float, rng: np.random.Generator) -> list[NoteEvent]:
    """A kit groove in ``meter``: kick on the downbeat, backbeat snare, hats on the subdivision, accents on the
    beats (louder still on the downbeat), an open hat on some bar starts; hits humanised by ~4 ms."""
    beats_per_bar, steps_per_beat, patterns = METERS[meter]
    pattern = dict(patterns[int(rng.integers(len(patterns)))])
    bar_steps = beats_per_bar * steps_per_beat
    hat_every = 1 if (steps_per_beat == 3 or bpm < 110) and rng.random() < 0.6 else (
        steps_per_beat if rng.random() < 0.25 else 2 if steps_per_beat == 4 else 1)
    pattern["hat"] = tuple(range(0, bar_steps, hat_every))
    crash_every = int(rng.choice([0, 2, 4]))
    step_len = 60.0 / bpm / steps_per_beat
    events: list[NoteEvent] = []
    step = 0
    while offset + step * step_len < seconds:
        s, bar = step % bar_steps, step // bar_steps
        t = offset + step * step_len
        on_beat, downbeat = s % steps_per_beat == 0, s == 0
        for drum, steps in pattern.items():
            if s not in steps:
                continue
            if drum == "kick":
                v = rng.uniform(0.85, 1.0) if downbeat else rng.uniform(0.7, 0.85)
            elif drum == "snare":
                v = rng.uniform(0.75, 0.9) if on_beat else rng.uniform(0.45, 0.6)
            else:
                lo_v, hi_v = (0.65, 0.8) if downbeat else (0.55, 0.7) if on_beat else (0.3, 0.45)
                v = rng.uniform(lo_v, hi_v)
            kind = "open_hat" if drum == "hat" and downbeat and crash_every and bar % crash_every == 0 else drum
            events.append(NoteEvent(kind, 45.0, t + rng.normal(0.0, 0.004), 0.1, v))
        step += 1
    return events


@dataclass
class SynthBeatsSpec(SynthTaskSpec, BeatDecoderSpec):
    """The generator parameters of ``synth_beats`` and their defaults (configs/task/synth_beats.yaml restates them)."""

    clip_seconds: float = 6.0
    n_train: int = 80
    n_valid: int = 30
    n_test: int = 30
    tempo_min: float = 70.0
    tempo_max: float = 180.0
    compound_max: float = 120.0


@register_task("synth_beats", schema=SynthBeatsSpec)
class SynthBeats(SynthTask):
    """Beat and downbeat tracking on synthetic grooves in 4/4, 3/4 and 6/8 (frame level, beat F-measure)."""

    name = "synth_beats"
    task_type = "beat"
    labels = ["beat", "downbeat"]
    _RUNTIME_KEYS = frozenset({"decoder", "min_bpm", "max_bpm", "transition_lambda", "peak_threshold", "meters",
                               "eval_skip_seconds", "window_min_fraction"})

    def __init__(self, cfg: Mapping[str, Any] | None = None) -> None:
        # decoding / scoring keys belong to the evaluator, not to the generator
        cfg = dict(cfg or {})
        super().__init__({k: v for k, v in cfg.items() if k not in self._RUNTIME_KEYS})
        self.cfg = cfg

    def _check_params(self, params: dict[str, Any]) -> None:
        if not 20.0 <= params["tempo_min"] < params["tempo_max"] <= 400.0:
            raise ValueError("need 20 <= tempo_min < tempo_max <= 400")
        if params["compound_max"] <= params["tempo_min"]:
            raise ValueError("compound_max must exceed tempo_min")

    def dataset_identity(self) -> dict[str, Any]:
        return {**super().dataset_identity(), "beats_version": BEATS_VERSION}

    def _assign_labels(self, split: str, n: int, rng: np.random.Generator) -> list[Any]:
        """(bpm, meter, offset) per clip: meters balanced, tempi stratified, a random phase of the first bar."""
        lo, hi = self.params["tempo_min"], self.params["tempo_max"]
        meters = [list(METERS)[i] for i in rng.permutation(np.arange(n) % len(METERS))]
        strata = rng.permutation((np.arange(n) + rng.uniform(0.0, 1.0, n)) / n)
        labels = []
        for meter, u in zip(meters, strata):
            top = min(hi, self.params["compound_max"]) if meter == "6/8" else hi
            bpm = round(float(lo + (top - lo) * u), 2)
            bar = METERS[meter][0] * 60.0 / bpm
            labels.append((bpm, meter, round(-float(rng.uniform(0.0, bar)), 4)))
        return labels

    def _label_columns(self, label: Any) -> dict[str, str]:
        bpm, meter, offset = float(label[0]), str(label[1]), float(label[2])
        beats, downbeats = beat_grid(bpm, meter, offset, self.params["clip_seconds"])
        return {"tempo": repr(bpm), "meter": meter, "offset": repr(offset), "beats": _format_times(beats),
                "downbeats": _format_times(downbeats)}

    def _target_from_row(self, row: Mapping[str, str]) -> Any:
        return BeatTarget(beats=_parse_times(row["beats"]), downbeats=_parse_times(row["downbeats"]))

    def _render_clip(self, label: Any, rng: np.random.Generator) -> tuple[np.ndarray, dict[str, str]]:
        clip = self.params["clip_seconds"]
        bpm, meter, offset = float(label[0]), str(label[1]), float(label[2])
        beats_per_bar = METERS[meter][0]
        beat = 60.0 / bpm
        bar = beats_per_bar * beat
        drums = rng.random() >= 0.1
        events = groove(bpm, meter, offset, clip, rng) if drums else []
        accompaniment = ""
        if not drums or rng.random() < 0.8:
            accompaniment = str(rng.choice(ACCOMPANIMENT))
            tonic, mode = random_key(rng)
            numerals = random_progression(mode, rng)
            previous: list[int] | None = None
            # chords change at the bar line; stabs on the downbeat, on every beat, or (drumless) on every beat
            stabs = tuple(range(beats_per_bar)) if (not drums or rng.random() < 0.5) else (0,)
            for b in range(int(math.ceil((clip - offset) / bar))):
                b0 = offset + b * bar
                root, intervals = numeral_chord(numerals[b % len(numerals)], tonic, mode)
                previous = voice_lead(root, intervals, previous, rng, center=62.0)
                for k in stabs:
                    accent = 1.0 if k == 0 else 0.75
                    events += chord_pattern(previous, b0 + k * beat, b0 + (k + 0.8) * beat, "block", accompaniment,
                                            rng, velocity=rng.uniform(0.5, 0.65) * accent)
                events += bass_line([(b0, b0 + bar, root)], "bass", rng, pulse=bar if rng.random() < 0.5 else beat)
        audio = self._mix(events, rng)
        return audio, {"meta_drums": str(int(drums)), "meta_accompaniment": accompaniment}
