"""Tasks on real compositions rendered to audio: a committed list of scores, a seed, a soundfont.

Why: the split, the labels and the set of pieces are facts about the corpus and are committed
(``datasets/<task>/*.csv``, written by a script in ``scripts/``); everything about the sound (which instrument plays
a clip, its tempo, its transposition) is drawn from ``task.seed``. The audio is rendered once into
``<data_root>/<task>/`` by the synthetic tasks' machinery (atomic render, parallel worker processes,
``generator.json`` holding the dataset identity), so a clip is read exactly like a downloaded dataset's file.

The dataset identity holds the generator parameters, the renderer and the soundfont's sha256, the music21 version
and the sha256 of the committed piece list: change any of them and the render and its features are redone. Every
score's own sha256 is in the piece list and is checked before rendering, so a music21 whose corpus differs is
refused instead of silently rendering other music.
"""
from __future__ import annotations

import csv
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any, ClassVar, Mapping, Optional

from benchmark.checksums import file_sha256
from benchmark.errors import UserError
from benchmark.schema import TaskSpec, require
from benchmark.tasks.base import MANIFEST_ROOT, SPLITS
from benchmark.tasks.score_render import BUNDLED_SOUNDFONT, renderer_identity, resolve_soundfont
from benchmark.tasks.synth_base import SynthClassTask

# Bump when a change to the score tasks' code changes the rendered audio or labels (part of the identity).
SCORE_GENERATOR_VERSION = 1


class CorpusMismatchError(UserError, RuntimeError):
    """The installed music21 corpus is not the one the committed piece list was made from."""


@dataclass
class ScoreTaskSpec(TaskSpec):
    """A task rendered from committed scores: every key but ``render_workers`` decides the audio (its identity)."""

    seed: int = 0
    clip_seconds: float = 30.0
    sample_rate: int = 22050
    soundfont: str = BUNDLED_SOUNDFONT  # TimGM6mb (in the pretty_midi wheel), FluidR3_GM, MuseScore_General or a path
    max_pieces_per_split: int = 0  # 0 = every piece; N = the first N pieces of each split (smoke runs, tests)
    window_min_fraction: Optional[float] = None  # a trailing window shorter than this fraction is dropped (0.5)
    render_workers: Optional[int] = None

    def __post_init__(self) -> None:
        super().__post_init__()
        require(self.seed >= 0, "task.seed", self.seed, "must be a whole number >= 0 (the render's seed)")
        require(self.clip_seconds >= 1.0, "task.clip_seconds", self.clip_seconds, "must be >= 1 second")
        require(self.sample_rate >= 8000, "task.sample_rate", self.sample_rate, "must be >= 8000 Hz")
        require(self.window_min_fraction is None or 0.0 <= self.window_min_fraction <= 1.0,
                "task.window_min_fraction", self.window_min_fraction, "must be in [0, 1] (default 0.5)")
        require(self.max_pieces_per_split >= 0, "task.max_pieces_per_split", self.max_pieces_per_split,
                "must be >= 0 (0 = every piece)")
        require(bool(self.soundfont), "task.soundfont", self.soundfont, "must name a soundfont or a .sf2/.sf3 path")
        require(self.render_workers is None or self.render_workers >= 0, "task.render_workers",
                self.render_workers, "must be >= 0 (0 = one per core) or null")


class ScoreTask(SynthClassTask):
    """Shared machinery of the rendered-score tasks; a subclass names its piece list and draws its clips.

    Subclasses set ``pieces_file`` (under ``datasets/<name>/``) and implement :meth:`clip_specs` (which clips to
    render, with their labels, as ``(track_id, split, index, label)``; ``label`` is a tuple whose first item is the
    class index) and :meth:`_render_clip`.
    """

    pieces_file: ClassVar[str] = ""
    audio_format: ClassVar[str] = "FLAC"  # 30 s clips: half the disk of WAV

    def task_dir(self, data_root: Path | str) -> Path:
        """``<data_root>/<task>/rendered``: not the task folder itself, which in a checkout run from its root (the
        default ``data_root=datasets``) is the folder of the committed piece list; a render swaps its folder in
        whole, and must never take the committed files with it."""
        return Path(data_root) / self.name / "rendered"

    @cached_property
    def pieces(self) -> list[dict[str, str]]:
        """The committed piece list (one dict per row; ``split`` checked)."""
        path = self.pieces_path
        with open(path, newline="") as fh:
            rows = list(csv.DictReader(fh))
        for row in rows:
            if row.get("split") not in SPLITS or not row.get("sha256"):
                raise ValueError(f"{path}: malformed row {row}")
        return rows

    @property
    def pieces_path(self) -> Path:
        return MANIFEST_ROOT / self.name / self.pieces_file

    def pieces_of(self, split: str) -> list[tuple[int, dict[str, str]]]:
        """``(row index, row)`` of the pieces of ``split`` in list order, at most ``max_pieces_per_split``."""
        rows = [(i, row) for i, row in enumerate(self.pieces) if row["split"] == split]
        limit = self.params["max_pieces_per_split"]
        return rows[:limit] if limit else rows

    def expected_clip_count(self) -> int:
        return len(self.clip_specs())

    def dataset_identity(self) -> dict[str, Any]:
        from importlib.metadata import version

        return {
            "task": self.name,
            "generator_version": SCORE_GENERATOR_VERSION,
            "params": dict(self.params),
            "renderer": renderer_identity(resolve_soundfont(self.params["soundfont"])),
            "corpus": {"music21_version": version("music21"),
                       "pieces_sha256": file_sha256(self.pieces_path)},
        }

    def _render(self, root: Path) -> None:
        self.check_corpus()
        super()._render(root)

    def check_corpus(self) -> None:
        """Every committed score is in the installed music21 corpus with the committed sha256, else a clear error."""
        import music21
        from music21 import corpus

        corpus_root = Path(corpus.__file__).parent
        wrong = []
        for row in self.pieces:
            path = corpus_root / row["corpus_path"]
            if not path.is_file() or file_sha256(path) != row["sha256"]:
                wrong.append(row["corpus_path"])
        if wrong:
            raise CorpusMismatchError(
                f"task {self.name}: {len(wrong)} of the {len(self.pieces)} scores in {self.pieces_path} are missing "
                f"or different in the installed music21 {music21.__version__} corpus (first: {wrong[0]}). The piece "
                f"list was made from the corpus its README names: install that music21 version, or rerun "
                f"scripts/make_{self.name}_manifest.py to remake the list from this corpus (its split changes).")


def corpus_file(corpus_path: str) -> Path:
    """The absolute path of a file of the installed music21 corpus, from its corpus-relative path."""
    from music21 import corpus

    return Path(corpus.__file__).parent / corpus_path


def check_split_of(rows: list[Mapping[str, str]], group_key: str) -> None:
    """Raise ``ValueError`` when rows sharing ``group_key`` sit in more than one split (a leak)."""
    seen: dict[str, str] = {}
    for row in rows:
        if seen.setdefault(row[group_key], row["split"]) != row["split"]:
            raise ValueError(f"{group_key} {row[group_key]!r} is in two splits")
