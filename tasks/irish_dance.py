"""irish_dance: the tune type (reel, jig, hornpipe, slip jig, strathspey) of rendered 19th-century dance tunes.

The tunes are O'Neill's *Music of Ireland* (1850) and *Ryan's Mammoth Collection* (1883) as the music21 wheel
ships them, with the collectors' own tune-type field as the label (``datasets/irish_dance/tunes.csv``, made by
``scripts/make_irish_dance_manifest.py``; split by normalised title, so one tune under two spellings cannot sit in
two splits). Each tune is played by one melody instrument drawn per clip (fiddle, flute, whistle, pipes, accordion,
harp, piano, guitar) from its first note, round after round, for ``clip_seconds``.

Tempo must not give the class away: the played eighth note runs at a rate drawn per clip from one range for every
class (``eighths_min``..``eighths_max`` per second; :func:`benchmark.tasks.irish_corpus.tune_midi`), so a jig in 6/8
and a reel in 4/4 move at the same speed, and what is left to hear is the rhythm (``tests/test_irish_corpus.py``
shows that tempo and note rate alone stay near chance).

Classes are unequal (reels are the largest), so the task's kind is ``multiclass_balanced``: class-balanced accuracy
is primary, accuracy is reported beside it.
"""
from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property
from typing import Any

import numpy as np

from benchmark.schema import require
from benchmark.tasks.base import SPLITS
from benchmark.tasks.irish_corpus import CLASSES, TuneRow, load_tunes, tune_midi
from benchmark.tasks.registry import register_task
from benchmark.tasks.score_render import GM_PROGRAMS, render_midi, resolve_soundfont
from benchmark.tasks.score_task import ScoreTask, ScoreTaskSpec

# Melody instruments of the tradition, and two accompaniment instruments that also carry tunes.
DANCE_FAMILIES: tuple[str, ...] = ("violin", "flute", "whistle", "pipes", "accordion", "harp", "piano", "guitar")


@dataclass
class IrishDanceSpec(ScoreTaskSpec):
    """The render parameters of ``irish_dance`` and their defaults (configs/task/irish_dance.yaml restates them)."""

    clip_seconds: float = 20.0
    eighths_min: float = 5.0  # played eighth notes per second, drawn per clip, one range for every class
    eighths_max: float = 8.0

    def __post_init__(self) -> None:
        super().__post_init__()
        require(1.0 <= self.eighths_min <= self.eighths_max <= 20.0, "task.eighths_min/eighths_max",
                (self.eighths_min, self.eighths_max), "must satisfy 1 <= eighths_min <= eighths_max <= 20")


@register_task("irish_dance", schema=IrishDanceSpec)
class IrishDance(ScoreTask):
    """Five tune types, one clip per tune, classes as the collections have them (unequal)."""

    name = "irish_dance"
    task_type = "multiclass_balanced"
    labels = list(CLASSES)
    pieces_file = "tunes.csv"

    @cached_property
    def tunes(self) -> list[TuneRow]:
        """The piece list as typed rows, in the same order as :attr:`pieces`."""
        return load_tunes(self.pieces_path)

    def clip_specs(self) -> list[tuple[str, str, int, Any]]:
        specs: list[tuple[str, str, int, Any]] = []
        for split in SPLITS:
            for clip, (index, row) in enumerate(self.pieces_of(split)):
                specs.append((row["tune_id"], split, clip, (CLASSES.index(row["tune_type"]), index)))
        return specs

    def _label_columns(self, label: Any) -> dict[str, str]:
        row = self.pieces[int(label[1])]
        return {"label": self.labels[int(label[0])], "title": row["title"], "title_key": row["title_key"],
                "meter": row["meter"], "collection": row["collection"]}

    def _render_clip(self, label: Any, rng: np.random.Generator) -> tuple[np.ndarray, dict[str, str]]:
        tune = self.tunes[int(label[1])]
        family = str(rng.choice(DANCE_FAMILIES))
        program = int(rng.choice(GM_PROGRAMS[family]))
        rate = float(rng.uniform(self.params["eighths_min"], self.params["eighths_max"]))
        seconds = self.params["clip_seconds"]
        midi = tune_midi(tune, rate, repeats_to_seconds=seconds + 1.0)
        audio = render_midi(midi, program=program, soundfont=resolve_soundfont(self.params["soundfont"]),
                            sample_rate=self.params["sample_rate"], seconds=seconds)
        return audio, {"meta_family": family, "meta_program": str(program), "meta_eighths_per_second": f"{rate:.3f}"}
