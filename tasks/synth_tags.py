"""synth_tags: instrument tagging on synthetic arrangements (multilabel, six instruments)."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Mapping

import numpy as np

from benchmark.schema import SynthTaskSpec
from benchmark.tasks.registry import register_task
from benchmark.tasks.synth_audio import NoteEvent
from benchmark.tasks.synth_base import SynthTask
from benchmark.tasks.synth_music import (
    PITCH_CLASSES_FLAT, bass_line, chord_pattern, drum_groove, melody, progression_spans, random_key,
    random_progression, scale_pitch_classes, voice_lead,
)

TAG_INSTRUMENTS: tuple[str, ...] = ("pad", "pluck", "organ", "bell", "bass", "drums")
# Per-clip level draws in the tag arrangement: the five pitched tags and each drum of the kit (one draw per
# drum type, so the kit balance varies too).
TAG_GAIN_KEYS: tuple[str, ...] = ("pad", "pluck", "organ", "bell", "bass", "kick", "snare", "hat", "open_hat")


@dataclass
class SynthTagsSpec(SynthTaskSpec):
    """The generator parameters of ``synth_tags`` and their defaults (configs/task/synth_tags.yaml restates them)."""

    n_train: int = 300
    n_valid: int = 100
    n_test: int = 100
    tag_probability: float = 0.4


@register_task("synth_tags", schema=SynthTagsSpec)
class SynthTags(SynthTask):
    """Instrument tagging: which of six synthetic instruments play in a short arrangement.

    Each instrument plays with probability ``tag_probability`` (at least one always plays) and has a typical
    role (pad: held chords, pluck: arpeggios, organ: stabs, bell: melody, bass: roots, drums: a groove) over a
    shared random key, progression and tempo, so tags must be told apart by timbre and role, not by pitch.
    """

    name = "synth_tags"
    task_type = "multilabel"
    labels = list(TAG_INSTRUMENTS)

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
        clip = self.params["clip_seconds"]
        present = {self.labels[i] for i in label}
        tonic, mode = random_key(rng)
        numerals = random_progression(mode, rng)
        bpm = rng.uniform(80.0, 140.0)
        beat = 60.0 / bpm
        t0 = rng.uniform(0.0, 0.1)
        spans = progression_spans(numerals, tonic, mode, t0, clip, rng)
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
            events += melody(scale_pitch_classes(tonic, mode), tonic, voiced, "bell", rng, low=72, high=89,
                             pulse=beat)
        if "bass" in present:
            events += bass_line([(s0, s1, root) for s0, s1, root, _ in spans], "bass", rng,
                                pulse=beat if rng.random() < 0.6 else beat / 2)
        if "drums" in present:
            events += drum_groove(bpm, t0, clip, rng)
        gains = {name: float(10.0 ** (rng.uniform(-4.0, 4.0) / 20.0)) for name in TAG_GAIN_KEYS}
        audio = self._mix(events, rng, gains=gains)
        return audio, {"meta_bpm": f"{bpm:.2f}", "meta_key": f"{PITCH_CLASSES_FLAT[tonic]} {mode}"}
