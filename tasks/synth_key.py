"""synth_key: key estimation on synthetic cadential progressions (24 keys, mir_eval spelling)."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from benchmark.schema import SynthTaskSpec
from benchmark.tasks.registry import register_task
from benchmark.tasks.synth_audio import NoteEvent
from benchmark.tasks.synth_base import SynthClassTask
from benchmark.tasks.synth_music import (
    HARMONY_INSTRUMENTS, PATTERN_STYLES, PITCH_CLASSES_FLAT, bass_line, chord_pattern, melody, progression_spans,
    random_progression, retune, scale_pitch_classes, voice_lead,
)

# Instruments that can play the melody over the chords (never the chords' own instrument).
MELODY_INSTRUMENTS: tuple[str, ...] = (
    "piano", "epiano", "pluck", "organ", "strings", "brass", "reed", "marimba", "bell",
)


@dataclass
class SynthKeySpec(SynthTaskSpec):
    """The generator parameters of ``synth_key`` and their defaults (configs/task/synth_key.yaml restates them)."""

    n_train: int = 240
    n_valid: int = 72
    n_test: int = 72
    melody_probability: float = 0.6


@register_task("synth_key", schema=SynthKeySpec)
class SynthKey(SynthClassTask):
    """Key estimation: a short cadential progression (plus, often, a melody) in one of 24 keys.

    Labels are mir_eval key strings with flat spellings (``Db major``, ``Bb minor``) so predictions can be
    scored with ``mir_eval.key.weighted_score``; classes are balanced within each split.
    """

    name = "synth_key"
    task_type = "key"
    labels = [f"{pc} major" for pc in PITCH_CLASSES_FLAT] + [f"{pc} minor" for pc in PITCH_CLASSES_FLAT]

    def _check_params(self, params: dict[str, Any]) -> None:
        if not 0.0 <= params["melody_probability"] <= 1.0:
            raise ValueError("melody_probability must be in [0, 1]")

    def _render_clip(self, label: Any, rng: np.random.Generator) -> tuple[np.ndarray, dict[str, str]]:
        clip = self.params["clip_seconds"]
        tonic = int(label) % 12
        mode = "major" if int(label) < 12 else "minor"
        numerals = random_progression(mode, rng)
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
            events += melody(scale_pitch_classes(tonic, mode), tonic, voiced, melody_inst, rng,
                             low=int(rng.integers(64, 72)), high=int(rng.integers(79, 88)))
        audio = self._mix(retune(events, tuning), rng)
        meta = {"meta_progression": "-".join(numerals), "meta_instrument": inst, "meta_style": style,
                "meta_melody": melody_inst}
        return audio, meta
