"""synth_tempo: tempo estimation on synthetic drum grooves (regression, BPM)."""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Mapping

import numpy as np

from benchmark.schema import SynthTaskSpec
from benchmark.tasks.registry import register_task
from benchmark.tasks.synth_base import SynthTask
from benchmark.tasks.synth_music import (
    DRUM_PATTERNS, bass_line, chord_pattern, drum_groove, numeral_chord, random_key, random_progression, voice_lead,
)

# Instruments that can stab chords over the groove.
GROOVE_INSTRUMENTS: tuple[str, ...] = ("piano", "epiano", "pluck", "organ", "marimba")


@dataclass
class SynthTempoSpec(SynthTaskSpec):
    """The generator parameters of ``synth_tempo`` and their defaults (configs/task/synth_tempo.yaml restates them)."""

    n_train: int = 240
    n_valid: int = 80
    n_test: int = 80
    tempo_min: float = 70.0
    tempo_max: float = 180.0


@register_task("synth_tempo", schema=SynthTempoSpec)
class SynthTempo(SynthTask):
    """Tempo estimation: a drum groove (with accompaniment most of the time) at a tempo in BPM.

    Tempi are stratified over ``[tempo_min, tempo_max]`` within each split (even coverage, random order); the
    groove starts at a random phase of the bar so the first beat is not always at t = 0.
    """

    name = "synth_tempo"
    task_type = "regression"
    labels = ["tempo"]

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
        clip = self.params["clip_seconds"]
        bpm = float(label)
        beat = 60.0 / bpm
        bar = 4 * beat
        start = -rng.uniform(0.0, bar)  # random phase: the groove was already playing when the clip began
        pattern_i = int(rng.integers(len(DRUM_PATTERNS)))
        events = drum_groove(bpm, start, clip, rng, pattern=DRUM_PATTERNS[pattern_i])
        accompaniment = ""
        if rng.random() < 0.8:
            accompaniment = str(rng.choice(GROOVE_INSTRUMENTS))
            tonic, mode = random_key(rng)
            numerals = random_progression(mode, rng)
            previous: list[int] | None = None
            stab_beats = (0,) if rng.random() < 0.5 else (0, 2)
            bass_pulse = beat if rng.random() < 0.5 else 2 * beat
            for b in range(int(math.ceil((clip - start) / bar))):
                b0 = start + b * bar
                root, intervals = numeral_chord(numerals[b % len(numerals)], tonic, mode)
                previous = voice_lead(root, intervals, previous, rng, center=62.0)
                for sb in stab_beats:
                    events += chord_pattern(previous, b0 + sb * beat, b0 + sb * beat + 0.9 * beat, "block",
                                            accompaniment, rng, velocity=rng.uniform(0.45, 0.65))
                events += bass_line([(b0, b0 + bar, root)], "bass", rng, pulse=bass_pulse)
        audio = self._mix(events, rng)
        return audio, {"meta_pattern": str(pattern_i), "meta_accompaniment": accompaniment,
                       "meta_first_beat": f"{start % beat:.4f}"}
