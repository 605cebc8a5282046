"""synth_chord_frames: frame-level chord recognition on synthetic chord sequences (kind ``chord_frames``).

Every clip is a sequence of major and minor triads at a constant tempo whose chords change at random beat
positions (every 1 to 4 beats), voice-led on one harmony instrument over a bass playing the roots, sometimes with
drums, sometimes opening with a beat or two of silence (``N``). The sequence and its change times are decided
before the audio is rendered, so the annotation is exact: segments ``start end label`` in seconds with mir_eval
labels (``C:maj``, ``A:min``, ``N``), stored in the manifest's ``chords`` column as ``start end label`` triples
separated by ``;``. Chords are drawn uniformly (never the same twice in a row), so the 24 chord classes are about
equally frequent and the best constant chord, the chance level, is low.

Why this task: it is the second frame-level kind's fixture, beside ``synth_beats``: targets per frame, decoded
segments, mir_eval.chord scores. Defaults are small (48 / 16 / 16 clips of 6 s) because every encoder frame is a
probe row; sizes and the clip length are overridable like the other synthetic tasks' (``task.n_train=...``).
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Mapping

import numpy as np

from benchmark.schema import SynthTaskSpec
from benchmark.targets import CHORD_ROOTS, CHORD_VOCABULARY, ChordSegments
from benchmark.tasks.registry import register_task
from benchmark.tasks.synth_base import SynthTask
from benchmark.tasks.synth_music import (
    CHORD_QUALITIES, HARMONY_INSTRUMENTS, PATTERN_STYLES, bass_line, chord_pattern, drum_groove, retune, voice_lead,
)

CHORD_FRAMES_VERSION = 1  # bump when this module's rendering or annotation changes
QUALITIES: tuple[str, ...] = ("maj", "min")
CHANGE_BEATS: tuple[int, ...] = (1, 2, 2, 3, 4, 4)  # beats between chord changes, drawn uniformly from this


def format_segments(segments: list[tuple[float, float, str]]) -> str:
    return ";".join(f"{s:.4f} {e:.4f} {label}" for s, e, label in segments)


def parse_segments(text: str) -> ChordSegments:
    parts = [p.split() for p in text.split(";") if p.strip()]
    return ChordSegments(starts=tuple(float(p[0]) for p in parts), ends=tuple(float(p[1]) for p in parts),
                         labels=tuple(p[2] for p in parts))


def chord_sequence(bpm: float, offset: float, seconds: float, rng: np.random.Generator,
                   lead_in_p: float = 0.25) -> list[tuple[float, float, str]]:
    """Segments ``(start, end, label)`` covering ``[0, seconds)``: chords changing on beats of the grid
    ``offset + k * 60 / bpm`` (``offset`` in ``(-period, 0]``), 1 to 4 beats apart, never repeating the previous
    chord; with probability ``lead_in_p`` the clip opens with ``N`` until the first or second beat."""
    period = 60.0 / bpm
    beats = offset + period * np.arange(1, int(math.ceil((seconds - offset) / period)) + 1)
    beats = [float(b) for b in beats if 0.0 < b < seconds - 1e-6]
    cuts = [0.0]
    k = int(rng.integers(1, 3)) if rng.random() < lead_in_p else 0
    lead_in = k > 0
    while k < len(beats):
        if k > 0:
            cuts.append(beats[k - 1])
        k += int(rng.choice(CHANGE_BEATS))
    if lead_in and len(cuts) == 1:
        lead_in = False  # too short a clip for a lead-in and a chord: no lead-in
    cuts.append(float(seconds))
    segments, previous = [], ""
    for i, (s, e) in enumerate(zip(cuts[:-1], cuts[1:])):
        if i == 0 and lead_in:
            label = "N"
        else:
            label = previous
            while label == previous:
                label = f"{CHORD_ROOTS[int(rng.integers(12))]}:{QUALITIES[int(rng.integers(2))]}"
        segments.append((round(s, 4), round(e, 4), label))
        previous = label
    return segments


@dataclass
class SynthChordFramesSpec(SynthTaskSpec):
    """The generator parameters of ``synth_chord_frames`` and their defaults (configs/task/synth_chord_frames.yaml restates them)."""

    clip_seconds: float = 6.0
    n_train: int = 48
    n_valid: int = 16
    n_test: int = 16
    tempo_min: float = 80.0
    tempo_max: float = 150.0
    drums_p: float = 0.3


@register_task("synth_chord_frames", schema=SynthChordFramesSpec)
class SynthChordFrames(SynthTask):
    """Frame-level chord recognition: maj/min triads changing at random beats, scored with mir_eval.chord."""

    name = "synth_chord_frames"
    task_type = "chord_frames"
    labels = list(CHORD_VOCABULARY)

    def _check_params(self, params: dict[str, Any]) -> None:
        if not 30.0 <= params["tempo_min"] < params["tempo_max"] <= 300.0:
            raise ValueError("need 30 <= tempo_min < tempo_max <= 300")
        if not 0.0 <= params["drums_p"] <= 1.0:
            raise ValueError("drums_p must be in [0, 1]")

    def dataset_identity(self) -> dict[str, Any]:
        return {**super().dataset_identity(), "chord_frames_version": CHORD_FRAMES_VERSION}

    def _assign_labels(self, split: str, n: int, rng: np.random.Generator) -> list[Any]:
        """(bpm, offset, segments text) per clip: tempi stratified within the split, a random beat phase."""
        lo, hi = self.params["tempo_min"], self.params["tempo_max"]
        strata = rng.permutation((np.arange(n) + rng.uniform(0.0, 1.0, n)) / n)
        labels = []
        for u in strata:
            bpm = round(float(lo + (hi - lo) * u), 2)
            offset = round(-float(rng.uniform(0.0, 60.0 / bpm)), 4)
            segments = chord_sequence(bpm, offset, self.params["clip_seconds"], rng)
            labels.append((bpm, offset, format_segments(segments)))
        return labels

    def _label_columns(self, label: Any) -> dict[str, str]:
        return {"tempo": repr(float(label[0])), "offset": repr(float(label[1])), "chords": str(label[2])}

    def _target_from_row(self, row: Mapping[str, str]) -> Any:
        return parse_segments(row["chords"])

    def _render_clip(self, label: Any, rng: np.random.Generator) -> tuple[np.ndarray, dict[str, str]]:
        bpm, offset, target = float(label[0]), float(label[1]), parse_segments(str(label[2]))
        beat = 60.0 / bpm
        inst = str(rng.choice(HARMONY_INSTRUMENTS))
        style = str(rng.choice(PATTERN_STYLES))
        center = rng.uniform(58.0, 68.0)
        events, previous = [], None
        for s, e, chord in zip(target.starts, target.ends, target.labels):
            if chord == "N":
                continue
            root_name, quality = chord.split(":")
            root = CHORD_ROOTS.index(root_name)
            previous = voice_lead(root, CHORD_QUALITIES[quality], previous, rng, center=center)
            events += chord_pattern(previous, s, e, style, inst, rng, velocity=rng.uniform(0.55, 0.85), step=beat)
            events += bass_line([(s, e, root)], "bass", rng, pulse=beat if rng.random() < 0.5 else None)
        drums = bool(rng.random() < self.params["drums_p"])
        if drums:
            start = next((s for s, label in zip(target.starts, target.labels) if label != "N"), 0.0)
            events += drum_groove(bpm, start if start > 0 else offset, self.params["clip_seconds"], rng)
        audio = self._mix(retune(events, rng.uniform(-0.1, 0.1)), rng)
        return audio, {"meta_instrument": inst, "meta_style": style, "meta_drums": str(int(drums))}
