"""custom: probe encoders on a researcher's own labelled audio collection, described by one CSV manifest.

``python -m benchmark run task=custom task.manifest=my.csv model=...`` with a CSV such as::

    path,split,label                 multiclass: one class name per file
    audio/a.wav,train,happy
    path,split,labels                multilabel: tags separated by ";" (an empty cell = no tag)
    audio/a.wav,train,piano;voice
    path,split,arousal,valence       regression: numeric columns, named with task.targets=[arousal,valence]
    audio/a.wav,train,0.3,-1.2

``path`` is relative to the CSV's folder (or absolute); ``split`` is train, valid or test; an optional
``track_id`` column names the tracks (default: the path as written). The task type is ``task.type`` when set,
otherwise it follows from the columns: ``task.targets`` given -> regression, a ``label`` column -> multiclass, a
``labels`` column -> multilabel, neither -> regression on every numeric column. Class and tag names are sorted,
so the output order does not depend on row order. Regression targets are used in their own units (the pipeline
z-scores every regression task's targets with train statistics before probing). ``data_root`` is not used: the
manifest says where the audio is.

Every problem with the manifest is reported before any compute, naming the row and the fix, because a typo in a
split name or a stray text value in a target column would otherwise silently shrink a split or crash hours later.
"""
from __future__ import annotations

import csv
import hashlib
import io
import logging
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping, Optional

import numpy as np
from omegaconf import MISSING

from benchmark.errors import UserError
from benchmark.schema import WindowedTaskSpec
from benchmark.tasks.base import SPLITS, DatasetMissingError, Task, Track
from benchmark.tasks.registry import register_task

log = logging.getLogger(__name__)

TYPES = ("multiclass", "multilabel", "regression")
RESERVED = ("path", "split", "track_id")
TAG_SEPARATOR = ";"
# What the task type shows before a manifest is read (``python -m benchmark list``): decided from the manifest.
AUTO = "auto"

EXAMPLE = """\
  path,split,label          (multiclass)       or  path,split,labels   (multilabel, tags joined by ';')
  audio/a.wav,train,happy                           audio/a.wav,train,piano;voice
  or path,split,<target columns> with task.targets=[col1,col2] (regression); paths relative to the CSV"""


class ManifestError(UserError, ValueError):
    """The manifest cannot be used as it is; the message names the file, the row and the fix."""


def _unset(value: Any) -> bool:
    return value is None or (isinstance(value, str) and value.strip() in ("", "???"))


@dataclass
class CustomTaskSpec(WindowedTaskSpec):
    """``task=custom``: your own CSV manifest (configs/task/custom.yaml documents each key)."""

    manifest: str = MISSING
    type: Optional[str] = None  # None = decided from the manifest's columns
    targets: Any = None  # regression target columns: a list, a comma-separated string, or None for every number


@register_task("custom", schema=CustomTaskSpec)
class CustomTask(Task):
    """A researcher's own dataset: audio files listed in a CSV with split and labels or targets."""

    name = "custom"
    # Every type a manifest can give (TYPES) is a clip-level kind; said here because the level is asked for before
    # the manifest is read (the pair check of the runner), while task_type is still "auto".
    level = "clip"

    def __init__(self, cfg: Mapping[str, Any] | None = None) -> None:
        super().__init__(cfg)
        declared = self.cfg.get("type")
        if not _unset(declared) and declared not in TYPES:
            raise ValueError(f"task custom: task.type={declared!r} is not one of {', '.join(TYPES)} "
                             "(or null to decide from the manifest's columns)")
        targets = self.cfg.get("targets")
        if isinstance(targets, str) and not _unset(targets):
            targets = [t.strip() for t in targets.split(",") if t.strip()]
        self.declared_type: str | None = None if _unset(declared) else str(declared)
        self.declared_targets: list[str] | None = None if _unset(targets) else [str(t) for t in targets]
        if self.declared_targets is not None and self.declared_type not in (None, "regression"):
            raise ValueError(f"task custom: task.targets is for regression, but task.type={self.declared_type}; "
                             "drop one of them")
        # Until tracks() has read the manifest, the type is what the config says (or "auto") and labels are empty.
        self.task_type = self.declared_type or ("regression" if self.declared_targets else AUTO)  # type: ignore
        self.labels = list(self.declared_targets or [])
        self._manifest_sha256: str | None = None

    # -- the manifest ------------------------------------------------------------------------------------
    def manifest_path(self) -> Path:
        """The manifest file: ``task.manifest`` as given, relative to the working directory when not absolute."""
        value = self.cfg.get("manifest")
        if _unset(value):
            raise DatasetMissingError(
                "task custom: no manifest given; pass task.manifest=PATH/TO/your.csv, a CSV like\n" + EXAMPLE)
        return Path(str(value)).expanduser().resolve()

    def _read_manifest(self, path: Path) -> list[dict[str, str]]:
        if not path.is_file():
            raise DatasetMissingError(f"task custom: manifest not found: {path}\n(task.manifest is read relative to "
                                      f"the working directory {Path.cwd()}); pass an existing CSV like\n{EXAMPLE}")
        raw = path.read_bytes()
        self._manifest_sha256 = hashlib.sha256(raw).hexdigest()
        try:
            text = raw.decode("utf-8-sig")
        except UnicodeDecodeError as exc:
            raise ManifestError(f"{path}: not UTF-8 ({exc}); save the CSV as UTF-8") from None
        reader = csv.DictReader(io.StringIO(text, newline=""))
        if reader.fieldnames is None:
            raise ManifestError(f"{path} is empty; it needs a header row, e.g.\n{EXAMPLE}")
        header = [h.strip() for h in reader.fieldnames]
        if len(set(header)) != len(header):
            raise ManifestError(f"{path}: duplicate column names in the header {header}; rename them")
        reader.fieldnames = header
        rows = []
        for row in reader:
            if None in row:
                raise ManifestError(f"{path} line {reader.line_num}: more values than header columns; quote values "
                                    "that contain commas")
            if all(not (v or "").strip() for v in row.values()):
                continue
            rows.append({k: (v or "").strip() for k, v in row.items()})
        for column in ("path", "split"):
            if column not in header:
                raise ManifestError(f"{path}: no '{column}' column (found {header}); the manifest needs "
                                    f"'path' (audio file, relative to the CSV) and 'split' (train/valid/test), e.g.\n"
                                    f"{EXAMPLE}")
        if not rows:
            raise ManifestError(f"{path} has a header but no rows; list one audio file per row")
        return rows

    def _decide_type(self, path: Path, header: list[str], rows: list[dict[str, str]]) -> tuple[str, list[str]]:
        """The task type and, for regression, the target columns: from the config, else from the columns."""
        kind = self.declared_type
        if kind is None:
            if self.declared_targets:
                kind = "regression"
            elif "label" in header and "labels" in header:
                raise ManifestError(f"{path} has both a 'label' and a 'labels' column; set task.type=multiclass "
                                    "or task.type=multilabel to say which one holds the targets")
            elif "label" in header:
                kind = "multiclass"
            elif "labels" in header:
                kind = "multilabel"
            else:
                kind = "regression"
        targets: list[str] = []
        if kind == "multiclass" and "label" not in header:
            raise ManifestError(f"{path}: task.type=multiclass needs a 'label' column (found {header})")
        if kind == "multilabel" and "labels" not in header:
            raise ManifestError(f"{path}: task.type=multilabel needs a 'labels' column with tags joined by "
                                f"'{TAG_SEPARATOR}' (found {header})")
        if kind == "regression":
            if self.declared_targets:
                targets = self.declared_targets
                absent = [t for t in targets if t not in header]
                if absent:
                    raise ManifestError(f"{path}: target column(s) {absent} named in task.targets are not in the "
                                        f"header {header}; fix task.targets=[...]")
                clash = [t for t in targets if t in RESERVED]
                if clash:
                    raise ManifestError(f"{path}: {clash} cannot be regression targets; fix task.targets=[...]")
            else:
                candidates = [c for c in header if c not in RESERVED and c not in ("label", "labels")]
                targets = [c for c in candidates if all(_is_number(r[c]) for r in rows)]
                if not targets:
                    raise ManifestError(
                        f"{path}: cannot tell what to predict: no 'label' column (multiclass), no 'labels' column "
                        f"(multilabel) and no all-numeric column (regression) among {candidates}; add one, or name "
                        "the target columns with task.targets=[col1,col2]")
                log.warning("task custom: regression on the numeric column(s) %s of %s (name them with "
                            "task.targets=[...] to choose)", targets, path)
        return kind, targets

    # -- Task interface ----------------------------------------------------------------------------------
    def tracks(self, data_root: Path) -> list[Track]:
        """Every row of the manifest as a Track (paths resolved against the CSV's folder; ``data_root`` unused).

        Sets ``task_type`` and ``labels`` from the manifest. Raises ``DatasetMissingError`` for a missing manifest
        and ``ManifestError`` (a ``ValueError``) for an unusable one.
        """
        path = self.manifest_path()
        rows = self._read_manifest(path)
        header = list(rows[0])
        kind, targets = self._decide_type(path, header, rows)

        bad_splits = sorted({r["split"] for r in rows if r["split"] not in SPLITS})
        if bad_splits:
            where = next(i for i, r in enumerate(rows, start=2) if r["split"] in bad_splits)
            raise ManifestError(f"{path}: unknown split value(s) {bad_splits} (first on line {where}); every "
                                f"row's split must be one of {', '.join(SPLITS)}: rename them in the CSV")
        empty = [s for s in SPLITS if not any(r["split"] == s for r in rows)]
        if empty:
            raise ManifestError(f"{path}: no rows in split(s) {empty}; a run trains on train, selects on valid and "
                                "reports test, so assign at least a few files to each (more for stable scores)")

        if kind == "multiclass":
            for line, r in enumerate(rows, start=2):
                if not r["label"]:
                    raise ManifestError(f"{path} line {line}: empty 'label'; give every file a class name")
            labels = sorted({r["label"] for r in rows})
            if len(labels) < 2:
                raise ManifestError(f"{path}: only one class ({labels}) in 'label'; a classifier needs at least two")
        elif kind == "multilabel":
            labels = sorted({t for r in rows for t in _tags(r["labels"])})
            if not labels:
                raise ManifestError(f"{path}: the 'labels' column holds no tag at all; join tags with "
                                    f"'{TAG_SEPARATOR}', e.g. piano;voice")
        else:
            labels = list(targets)

        if kind == "regression":
            for line, r in enumerate(rows, start=2):
                for column in targets:
                    if not _is_number(r[column]):
                        raise ManifestError(f"{path} line {line}: target column '{column}' holds {r[column]!r}, "
                                            "not a finite number; fix the value or drop the row")
            self._check_targets_vary(path, rows, targets)
        tracks: list[Track] = []
        seen: dict[str, int] = {}
        folder = path.parent
        for line, r in enumerate(rows, start=2):
            if not r["path"]:
                raise ManifestError(f"{path} line {line}: empty 'path'; every row needs an audio file")
            track_id = r.get("track_id") or r["path"]
            if track_id in seen:
                raise ManifestError(f"{path} lines {seen[track_id]} and {line}: track {track_id!r} is listed twice; "
                                    "each file must appear once (in one split)")
            seen[track_id] = line
            if kind == "multiclass":
                target: Any = labels.index(r["label"])
            elif kind == "multilabel":
                target = tuple(sorted(labels.index(t) for t in set(_tags(r["labels"]))))
            else:
                target = tuple(float(r[column]) for column in targets)
            audio = Path(r["path"]).expanduser()
            tracks.append(Track(track_id=track_id, path=audio if audio.is_absolute() else folder / audio,
                                split=r["split"], target=target))
        self.task_type = kind  # type: ignore[assignment]
        self.labels = labels
        return tracks

    @staticmethod
    def _check_targets_vary(path: Path, rows: list[dict[str, str]], targets: list[str]) -> None:
        """Refuse a (validated) target column that is constant over the train rows: nothing to learn."""
        for column in targets:
            values = np.asarray([float(r[column]) for r in rows if r["split"] == "train"])
            if values.size and float(values.std()) == 0.0:
                raise ManifestError(f"{path}: target column '{column}' has the same value in every train row; "
                                    "a probe cannot learn it: drop it from task.targets or vary the train set")

    def dataset_identity(self) -> dict[str, Any]:
        """The manifest's sha256 and path (what audio and labels a track id means), and the type and labels chosen.

        The path is included because two collections may share a manifest's bytes (``audio/0.wav,train,a``)
        while holding different audio.
        """
        path = self.manifest_path()
        if self._manifest_sha256 is None:
            self._manifest_sha256 = hashlib.sha256(path.read_bytes()).hexdigest()
        return {"task": self.name, "manifest": str(path), "manifest_sha256": self._manifest_sha256,
                "type": self.task_type, "labels": list(self.labels)}

    def content_fingerprint(self) -> str | None:
        """The sha256 of the manifest's bytes now, or None when there is no readable manifest.

        Why: the manifest is what defines this dataset (files, splits, labels) and users edit it in place, so a
        run's record is keyed by its content, not its path (``benchmark.record.dataset_fingerprint``). Computed
        before the run without parsing; a missing manifest is left to ``tracks()``, which explains the fix.
        """
        try:
            return hashlib.sha256(self.manifest_path().read_bytes()).hexdigest()
        except (DatasetMissingError, OSError):
            return None

    def fetch_command(self) -> str:
        """Nothing to fetch: the command that lists which files of the manifest are missing."""
        value = self.cfg.get("manifest")
        return f"python -m benchmark check task=custom task.manifest={'PATH' if _unset(value) else value}"


def _tags(cell: str) -> list[str]:
    return [t.strip() for t in cell.split(TAG_SEPARATOR) if t.strip()]


def _is_number(text: str) -> bool:
    try:
        return math.isfinite(float(text))
    except ValueError:
        return False
