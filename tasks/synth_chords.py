"""synth_chords: chord recognition on synthetic clips (multiclass, 12 roots x {maj, min, dim, 7})."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from benchmark.schema import SynthTaskSpec
from benchmark.tasks.registry import register_task
from benchmark.tasks.synth_base import SynthClassTask
from benchmark.tasks.synth_music import (
    CHORD_QUALITIES, HARMONY_INSTRUMENTS, PATTERN_STYLES, PITCH_CLASSES_SHARP, bass_line, chord_pattern, retune,
    voice_chord,
)


@dataclass
class SynthChordsSpec(SynthTaskSpec):
    """The generator parameters of ``synth_chords`` and their defaults (configs/task/synth_chords.yaml restates them)."""

    n_train: int = 384
    n_valid: int = 96
    n_test: int = 96


@register_task("synth_chords", schema=SynthChordsSpec)
class SynthChords(SynthClassTask):
    """Chord recognition: one chord per clip, 12 roots x {maj, min, dim, 7}, balanced within each split.

    Instrument, voicing, inversion, register, playing style, tuning and room vary per clip; the root is
    usually in the bass so the label (root + quality) is well defined even for inverted upper voices.
    """

    name = "synth_chords"
    task_type = "multiclass"
    labels = [f"{root}:{q}" for root in PITCH_CLASSES_SHARP for q in CHORD_QUALITIES]

    def _render_clip(self, label: Any, rng: np.random.Generator) -> tuple[np.ndarray, dict[str, str]]:
        clip = self.params["clip_seconds"]
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
        audio = self._mix(retune(events, tuning), rng)
        meta = {"meta_instrument": inst, "meta_style": style,
                "meta_bass": PITCH_CLASSES_SHARP[bass_pc] if bass_pc >= 0 else "",
                "meta_voicing": " ".join(str(p) for p in pitches)}
        return audio, meta
