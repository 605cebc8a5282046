"""chorale_key: the key (24 classes) of J. S. Bach's chorales, rendered with sampled instruments.

The scores are the 272 four-part chorales of the music21 corpus whose written key agrees with the analysed key
(``datasets/chorale_key/chorales.csv``, made by ``scripts/make_chorale_key_manifest.py``; harmonisations of one hymn
tune share a split). Each chorale is rendered ``versions`` times, each transposed by a different interval chosen so
that the 12 tonics of each mode are as evenly represented as the split allows (the label moves with the
transposition), played by one General MIDI program drawn per clip (organ, strings, choir, piano, winds, brass) at
a tempo drawn per clip, and cut to its first ``clip_seconds`` (a short chorale is sung again from the start).

Metric: ``mir_eval.key`` weighted score and accuracy, as ``giantsteps_key`` (the ``key`` kind).
"""
from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from typing import Any

import numpy as np

from benchmark.schema import require
from benchmark.tasks.registry import register_task
from benchmark.tasks.score_render import GM_PROGRAMS, render_midi, resolve_soundfont
from benchmark.tasks.score_task import ScoreTask, ScoreTaskSpec, corpus_file
from benchmark.tasks.base import SPLITS
from benchmark.tasks.synth_music import PITCH_CLASSES_FLAT

# Instrument families a chorale is played by (one program of one family per clip, all four voices).
CHORALE_FAMILIES: tuple[str, ...] = ("organ", "strings", "choir", "piano", "reed", "brass")
# Transpositions are drawn from these 12 intervals (semitones): every tonic is reachable from every key, and no
# voice moves more than half an octave from where Bach wrote it.
SHIFTS: tuple[int, ...] = tuple(range(-5, 7))


@dataclass
class ChoraleKeySpec(ScoreTaskSpec):
    """The render parameters of ``chorale_key`` and their defaults (configs/task/chorale_key.yaml restates them)."""

    versions: int = 2  # transposed renders per chorale (each a different interval)
    qpm_min: float = 66.0  # tempo range, quarter notes per minute, drawn per clip
    qpm_max: float = 96.0

    def __post_init__(self) -> None:
        super().__post_init__()
        require(1 <= self.versions <= len(SHIFTS), "task.versions", self.versions,
                f"must be 1..{len(SHIFTS)} (distinct transpositions per chorale)")
        require(20.0 <= self.qpm_min <= self.qpm_max <= 240.0, "task.qpm_min/qpm_max", (self.qpm_min, self.qpm_max),
                "must satisfy 20 <= qpm_min <= qpm_max <= 240")


def key_label(tonic_pc: int, mode: str) -> int:
    """Class index of a key: 0-11 major tonics C..B, 12-23 minor."""
    return tonic_pc % 12 + (12 if mode == "minor" else 0)


def parse_key(text: str) -> tuple[int, str]:
    """``("Bb", "major")`` style key text of the manifest -> (pitch class, mode)."""
    tonic, mode = text.split()
    return PITCH_CLASSES_FLAT.index(tonic), mode


@lru_cache(maxsize=16)
def chorale_midi(corpus_path: str) -> bytes:
    """MIDI bytes of a chorale score (parsed once per process; every version of a chorale reuses them)."""
    from music21 import converter
    from music21.midi.translate import streamToMidiFile

    return streamToMidiFile(converter.parse(corpus_file(corpus_path))).writestr()


@register_task("chorale_key", schema=ChoraleKeySpec)
class ChoraleKey(ScoreTask):
    """24-way key of rendered Bach chorales (labels in mir_eval spelling with flats, as ``synth_key``)."""

    name = "chorale_key"
    task_type = "key"
    labels = [f"{pc} major" for pc in PITCH_CLASSES_FLAT] + [f"{pc} minor" for pc in PITCH_CLASSES_FLAT]
    pieces_file = "chorales.csv"

    def clip_specs(self) -> list[tuple[str, str, int, Any]]:
        """Each chorale's ``versions`` transpositions, chosen per split to even out the tonics of each mode.

        Chorales are visited in a seeded order; each version takes the unused interval whose resulting key has
        been drawn least so far in its split (ties broken by the seeded stream), so label counts per (split, mode)
        differ by at most about one.
        """
        specs: list[tuple[str, str, int, Any]] = []
        versions = self.params["versions"]
        for split in SPLITS:
            rng = self._clip_rng(0, split, 0)
            rows = self.pieces_of(split)
            counts = np.zeros(len(self.labels), dtype=int)
            chosen: dict[int, list[int]] = {}
            for k in rng.permutation(len(rows)):
                index, row = rows[int(k)]
                tonic, mode = parse_key(row["key"])
                shifts: list[int] = []
                for _ in range(versions):
                    free = [s for s in SHIFTS if s not in shifts]
                    load = np.array([counts[key_label(tonic + s, mode)] for s in free], dtype=float)
                    load += rng.random(len(free)) * 0.5  # tie-break only: below one whole count
                    shift = free[int(np.argmin(load))]
                    shifts.append(shift)
                    counts[key_label(tonic + shift, mode)] += 1
                chosen[index] = shifts
            clip = 0
            for index, row in rows:  # manifest order, so the render order does not depend on the seed
                tonic, mode = parse_key(row["key"])
                for shift in sorted(chosen[index]):
                    specs.append((f"{row['work']}_{shift:+d}", split, clip,
                                  (key_label(tonic + shift, mode), index, shift)))
                    clip += 1
        return specs

    def _label_columns(self, label: Any) -> dict[str, str]:
        _, index, shift = label
        row = self.pieces[int(index)]
        return {"label": self.labels[int(label[0])], "work": row["work"], "tune_group": row["tune_group"],
                "written_key": row["key"], "transpose": str(int(shift))}

    def _render_clip(self, label: Any, rng: np.random.Generator) -> tuple[np.ndarray, dict[str, str]]:
        _, index, shift = label
        row = self.pieces[int(index)]
        family = str(rng.choice(CHORALE_FAMILIES))
        program = int(rng.choice(GM_PROGRAMS[family]))
        qpm = float(rng.uniform(self.params["qpm_min"], self.params["qpm_max"]))
        audio = render_midi(chorale_midi(row["corpus_path"]), program=program,
                            soundfont=resolve_soundfont(self.params["soundfont"]),
                            sample_rate=self.params["sample_rate"], seconds=self.params["clip_seconds"],
                            qpm=qpm, transpose=int(shift))
        return audio, {"meta_family": family, "meta_program": str(program), "meta_qpm": f"{qpm:.2f}"}
