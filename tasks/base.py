"""What every task provides: its tracks with splits and targets, its type, its label names, and a check of the
local copy of its dataset.

A task knows its data (where the audio is, how the split is defined, how labels are encoded); it knows nothing
about encoders or probes. Its ``task_type`` names its kind (:mod:`benchmark.kinds`), which decides everything the
type implies (target encoding, loss, output activation, evaluator, metrics and their direction, chance level,
clip or frame level): a new task of an existing kind is its module, its config and its ``datasets/`` folder.
"""
from __future__ import annotations

import abc
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, Iterable, Mapping

from benchmark.errors import UserError
from benchmark.resources import manifest_root
from benchmark.schema import TaskSpec

if TYPE_CHECKING:
    from benchmark.kinds.base import TaskKind

# The name of a registered task kind (benchmark.kinds): "multiclass", "multilabel", "regression", "key", "beat",
# "chord_frames", ...
TaskType = str
SPLITS: tuple[str, ...] = ("train", "valid", "test")
# The committed split manifests, label lists and checksums (``datasets/<task>/``), whatever ``data_root`` is.
MANIFEST_ROOT = manifest_root()


class DatasetMissingError(UserError, FileNotFoundError):
    """The dataset is not where the task looks; the message names the folder, the layout and the fix."""


def warn_unknown_config_keys(task: str, cfg: Mapping[str, Any], known: Iterable[str]) -> None:
    """Warn (once, naming the known keys) about task config keys the task does not read: a misspelt
    ``task.window_secnds=10`` must not pass silently as the default."""
    known = set(known)
    unknown = sorted(set(cfg) - known)
    if unknown:
        warnings.warn(f"task {task}: ignoring unknown config keys {unknown}; known: {sorted(known)}", stacklevel=3)


def missing_dataset_message(task: str, folder: Path, layout: str, fetch: str) -> str:
    """The one message a user sees for a missing dataset: where we looked, what should be there, how to get it."""
    return (f"task {task}: dataset not found in {folder}\n"
            f"expected layout:\n{layout.rstrip()}\n"
            f"to fetch it: {fetch}\n"
            f"(or point data_root=PATH at the folder that holds it)")


@dataclass(frozen=True)
class Track:
    """One labelled audio item.

    ``target`` is a class index (multiclass, key), a tuple of tag indices (multilabel), a tuple of floats
    (regression), a beat annotation (beat) or chord segments (chord_frames): what the task's kind encodes
    (``TaskKind.encode_targets``; the frame-level target types live in :mod:`benchmark.targets`).
    ``offset``/``duration`` (seconds) select a clip of a longer file; ``None`` means all of it.
    """

    track_id: str
    path: Path
    split: str
    target: Any
    offset: float = 0.0
    duration: float | None = None


class Task(abc.ABC):
    """Base class of a task; subclasses are built from ``configs/task/<name>.yaml``.

    Subclasses set (as class attributes or in ``__init__``):
        name: task name as used on the command line (``task=<name>``).
        task_type: the name of its kind (:mod:`benchmark.kinds`): ``multiclass``, ``multilabel``,
            ``regression``, ``key``, ``beat`` or ``chord_frames``. The kind brings the level (``clip`` or
            ``frame``), so a task does not set ``level`` itself.
        labels: class names, tag names or regression target names (their order is the output order).
    ``cfg`` is the task's config section (window, hop, task-specific settings).
    """

    name: str = ""
    task_type: TaskType = "multiclass"
    labels: list[str] = []
    # The split sizes the field reports (checked against what is found on disk); None = no fixed sizes.
    expected_counts: ClassVar[dict[str, int] | None] = None
    # the dataclass its config is checked against (benchmark.schema); set by register_task(kind, schema=...)
    config_schema: ClassVar[type[TaskSpec]] = TaskSpec

    def __init__(self, cfg: Mapping[str, Any] | None = None) -> None:
        self.cfg: dict[str, Any] = dict(cfg or {})

    @property
    def kind(self) -> "TaskKind":
        """The registered kind named by ``task_type`` (``ValueError`` naming the registered kinds otherwise)."""
        # Only the registry, and only here: the kinds themselves import metric and evaluation code a task never
        # needs (importing the registry registers the built-in kinds).
        from benchmark.kinds.base import get_kind

        return get_kind(self.task_type)

    @property
    def level(self) -> str:
        """``clip`` (one target per track, features pooled per window) or ``frame`` (targets per encoder frame,
        beats): the kind's level, so that a task cannot be routed to a data path its kind cannot score."""
        return self.kind.level

    @property
    def num_outputs(self) -> int:
        return len(self.labels)

    @abc.abstractmethod
    def tracks(self, data_root: Path) -> list[Track]:
        """All tracks of all splits, read from the dataset under ``data_root``.

        Raises a ``FileNotFoundError`` naming the folder looked in, the expected layout and the command that
        fetches the data when the dataset is missing.
        """

    def prepare(self, data_root: Path) -> None:
        """Fetch or generate the dataset under ``data_root`` (synthetic tasks render their audio here)."""

    def dataset_identity(self) -> dict[str, Any]:
        """Everything about the dataset that changes the audio read for a track id (used in the cache key)."""
        return {"task": self.name}

    def target_array(self, tracks: list[Track]) -> Any:
        """Targets of ``tracks`` as the kind encodes them: int ``[N]`` (multiclass, key), float ``[N, C]``
        multi-hot (multilabel), float ``[N, T]`` (regression) or the list of beat annotations (beat)."""
        return self.kind.encode_targets(self, tracks)

    def fetch_command(self) -> str:
        """The command that fetches (or prints how to fetch) this task's data."""
        return f"python -m benchmark prepare {self.name}"

    def checksums(self, data_root: Path) -> dict[Path, tuple[str, str]]:
        """Published checksums of the dataset's files: ``{path: (algorithm, hex digest)}`` (none by default)."""
        return {}

    def shared_audio(self, data_root: Path) -> "SharedAudio | None":
        """The audio collection this task reads together with other tasks, or ``None`` (the default: its own).

        Why: the four MTG-Jamendo subsets (and the two NSynth tasks) label the same recordings. A task that names
        a :class:`SharedAudio` has its features extracted once for every item of that collection and cached under
        the collection's identity instead of its own, and reads its tracks' rows from there, so every task of the
        collection reuses one extraction per encoder and window setting.
        """
        return None


@dataclass(frozen=True)
class SharedAudio:
    """An audio collection several tasks read: one feature cache per encoder serves all of them.

    ``identity`` replaces :meth:`Task.dataset_identity` in the cache key: everything that changes the audio read
    for an item (release, layout), and nothing about any one task's split or labels. ``tracks`` lists every item
    of the collection once, in a fixed order that does not depend on which files are present (the extractor's
    shards are cut by position in it, so a later download re-extracts only the shards that gained files); each
    task track must have the same ``track_id``, ``offset`` and ``duration`` as its item here. ``split`` and
    ``target`` of these items are not used.
    """

    identity: dict[str, Any]
    tracks: tuple[Track, ...]


@dataclass
class DatasetCheck:
    """What ``python -m benchmark check`` found for one task: counts per split against the expected sizes,
    files listed by the split but absent on disk, and files whose checksum differs from the published one."""

    task: str
    counts: dict[str, int]
    expected: dict[str, int] | None
    missing: dict[str, list[str]] = field(default_factory=dict)
    bad_checksums: list[str] = field(default_factory=list)

    def present(self, split: str) -> int:
        return self.counts[split] - len(self.missing.get(split, []))

    def missing_fraction(self, split: str) -> float:
        return len(self.missing.get(split, [])) / max(self.counts[split], 1)

    @property
    def complete(self) -> bool:
        sizes_ok = self.expected is None or all(self.counts.get(s) == n for s, n in self.expected.items())
        return sizes_ok and not any(self.missing.values()) and not self.bad_checksums

    def summary(self, max_listed: int = 10) -> str:
        lines = [f"task {self.task}:"]
        for split in SPLITS:
            want = f" (expected {self.expected[split]})" if self.expected and split in self.expected else ""
            lines.append(f"  {split:5s} {self.present(split)} of {self.counts[split]} tracks present{want}")
            gone = self.missing.get(split, [])
            if gone:
                shown = ", ".join(gone[:max_listed]) + (f" ... (+{len(gone) - max_listed} more)" if
                                                          len(gone) > max_listed else "")
                lines.append(f"        missing: {shown}")
        if self.bad_checksums:
            lines.append(f"  checksum mismatch: {', '.join(self.bad_checksums[:max_listed])}"
                         + (f" ... (+{len(self.bad_checksums) - max_listed} more)"
                            if len(self.bad_checksums) > max_listed else ""))
        lines.append("  OK" if self.complete else "  INCOMPLETE")
        return "\n".join(lines)


def check_dataset(task: Task, tracks: list[Track], data_root: Path, verify_checksums: bool = True) -> DatasetCheck:
    """Compare the tracks a task lists with what is on disk (and with published checksums)."""
    from benchmark.checksums import file_digests

    counts = {s: 0 for s in SPLITS}
    missing: dict[str, list[str]] = {s: [] for s in SPLITS}
    seen_paths: set[Path] = set()
    for t in tracks:
        counts[t.split] += 1
        if t.path in seen_paths:
            continue
        seen_paths.add(t.path)
        if not t.path.is_file():
            missing[t.split].append(t.track_id)
    bad: list[str] = []
    if verify_checksums:
        published = {p: v for p, v in task.checksums(data_root).items() if p in seen_paths and p.is_file()}
        for algorithm in sorted({a for a, _ in published.values()}):
            paths = [p for p, (a, _) in published.items() if a == algorithm]
            for path, digest in file_digests(paths, algorithm).items():
                if digest != published[path][1].lower():
                    bad.append(str(path))
    return DatasetCheck(task.name, counts, task.expected_counts, missing, sorted(bad))
