"""Checks of a run's protocol: the splits and labels it will train and score on, refused before any extraction.

Why: some protocols run to a normal-looking record whose numbers mean nothing. The same recording in train and
test under two track ids scores perfectly (the probe remembers it); a class seen only in valid/test is scored wrong
by construction; a train split of one class, a tag without a positive training example, or a constant regression
target give the probe nothing to learn. None of this fails later: it only produces a plausible score. So it is
refused here, right after the tracks stage knows the usable tracks of every split, and before the encoder decodes
a single file (:func:`benchmark.run_tracks.checked_tracks` calls :func:`check_protocol`).

What is checked:

* Duplicate audio (every kind): two tracks are the same audio when their files resolve to one path
  (``os.path.realpath``: symlinks, ``..``) or hold the same bytes (size plus a sha256 of the first 64 KiB, confirmed
  by a hash of the whole file only when two files of the same size share their first block), and they select the
  same part of it (``offset``/``duration``). Across splits this is refused unless ``allow_duplicate_audio=true``;
  within one split it is a warning.
* Labels, asked of the task's kind (:mod:`benchmark.kinds`): class kinds (``multiclass``, ``key``) need at least two
  classes in train and every valid/test class in train; ``multilabel`` needs a positive training example of every
  tag; ``regression`` needs every target to vary over train; frame-level kinds need training tracks (``beat``: with
  a beat, ``chord_frames``: with two chord classes). A kind this module does not know gets the generic check only.

On a partial local copy (the tracks stage skipped absent or corrupt training files within
``max_missing_fraction``), a label finding is printed as a warning instead: the missing files may be where the
absent classes are, and the user accepted that loss with ``max_missing_fraction``. The published splits of the
built-in datasets are complete; a user's own manifest with all its files present is checked strictly.
"""
from __future__ import annotations

import hashlib
import itertools
import os
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Callable, Iterable, Sequence

import numpy as np
from rich.console import Console
from rich.markup import escape

from benchmark.checksums import hash_file
from benchmark.errors import ProtocolError
from benchmark.tasks.base import SPLITS, Task, Track

if TYPE_CHECKING:
    from benchmark.kinds.base import TaskKind

# Bytes of each file hashed to find copies: cheap for 25k-file datasets; a match is confirmed on the whole file.
FIRST_BLOCK = 64 * 1024
# Items (pairs, classes, tags) named in a message; the rest are counted.
MAX_LISTED = 10
OVERRIDE = "allow_duplicate_audio"
# Files hashed in parallel (reading is I/O-bound; hashlib releases the GIL on large buffers).
HASH_WORKERS = 8
# A label check: the task and its usable tracks per split -> one paragraph per problem found.
LabelCheck = Callable[[Task, dict[str, list[Track]]], list[str]]


def check_protocol(task: Task, by_split: dict[str, list[Track]], *, allow_duplicate_audio: bool = False,
                   train_skipped: int = 0, console: Console | None = None) -> None:
    """Refuse (:class:`ProtocolError`) a protocol whose scores cannot be right; warn about doubtful ones.

    ``by_split`` holds the usable tracks (absent and corrupt files already dropped by the tracks stage);
    ``train_skipped`` is how many training tracks that stage dropped (label findings are warnings then, see the
    module docstring). The label checks run first: they read no file.
    """
    console = console or Console(quiet=True)
    problems = label_problems(task, by_split)
    if problems and train_skipped:
        for problem in problems:
            console.print(f"[yellow]warning: {escape(problem)} (Not refused because this is a partial copy: "
                          f"{train_skipped} training track(s) are absent or corrupt on disk and may hold what is "
                          f"missing; fetch them with `{task.fetch_command()}` to check the full protocol.)[/]",
                          highlight=False)
    elif problems:
        raise ProtocolError(" ".join(problems))  # one paragraph; each problem is a sentence or two
    check_duplicate_audio(task, by_split, allow=allow_duplicate_audio, console=console)


# ------------------------------------------------------------------------------------------ duplicate audio
@dataclass(frozen=True)
class DuplicatePair:
    """Two tracks holding the same audio: ``how`` says whether they share a file or only its content."""

    first: Track
    second: Track
    how: str

    def describe(self) -> str:
        a, b = self.first, self.second
        return f"'{a.track_id}' ({a.split}) and '{b.track_id}' ({b.split}), {self.how}"


@dataclass
class Duplicates:
    """Pairs of tracks with the same audio: across two splits (leakage) and within one (double counting).

    Only the first :data:`MAX_LISTED` pairs of each are kept; the counts are exact.
    """

    across: list[DuplicatePair]
    across_count: int
    within: list[DuplicatePair]
    within_count: int


def check_duplicate_audio(task: Task, by_split: dict[str, list[Track]], *, allow: bool = False,
                          console: Console | None = None) -> Duplicates:
    """Refuse the same audio in two splits unless ``allow``; warn about the same audio twice in one split.

    Why refused: a test track whose audio is also a training track is scored on what the probe memorised, so a
    leak looks like a strong encoder (accuracy 1.0 on a fully leaked test split) and nothing else notices.
    """
    console = console or Console(quiet=True)
    found = find_duplicates([t for s in SPLITS for t in by_split.get(s, [])])
    if found.across_count and not allow:
        raise ProtocolError(
            f"task {task.name}: the same audio is in more than one split, so valid/test scores would measure "
            f"what the probe memorised, not what the encoder knows: "
            f"{_pair_list(found.across, found.across_count)}. Fix the manifest / splits so that each recording is "
            f"in one split only, or accept these duplicates knowingly with {OVERRIDE}=true.")
    name = escape(task.name)
    if found.across_count:
        console.print(f"[yellow]warning: task {name}: {found.across_count} pair(s) of tracks in different splits "
                      f"hold the same audio, accepted with {OVERRIDE}=true[/]", highlight=False)
    if found.within_count:
        console.print(f"[yellow]warning: task {name}: the same audio is listed more than once within a split, so it "
                      f"counts twice in training or scoring: {escape(_pair_list(found.within, found.within_count))}"
                      f". Remove the copies from the manifest unless that is intended.[/]", highlight=False)
    return found


def find_duplicates(tracks: Sequence[Track]) -> Duplicates:
    """Pairs of ``tracks`` with the same audio (same resolved file, or byte-identical files, and the same part).

    Files that cannot be read are compared by resolved path only (the tracks stage handles absent files). Pairs
    are counted per group of copies without listing them all, so 25k copies of one file stay cheap.
    """
    real = [os.path.realpath(t.path) for t in tracks]
    identity = content_identities(real)
    groups: dict[tuple[str, float, float | None], list[tuple[Track, str]]] = {}
    for t, path in zip(tracks, real):
        groups.setdefault((identity.get(path, path), float(t.offset), t.duration), []).append((t, path))
    found = Duplicates([], 0, [], 0)
    for group in (g for g in groups.values() if len(g) > 1):
        by = [[entry for entry in group if entry[0].split == s] for s in SPLITS]
        sizes = [len(entries) for entries in by]
        found.within_count += sum(n * (n - 1) // 2 for n in sizes)
        found.across_count += (sum(sizes) ** 2 - sum(n * n for n in sizes)) // 2
        across = ((a, b) for i, first in enumerate(by) for second in by[i + 1:] for a in first for b in second)
        within = (pair for entries in by for pair in itertools.combinations(entries, 2))
        for kept, pairs in ((found.across, across), (found.within, within)):
            for (a, a_path), (b, b_path) in itertools.islice(pairs, MAX_LISTED - len(kept)):
                kept.append(DuplicatePair(a, b, _how(a_path, b_path)))
    return found


def content_identities(paths: Iterable[str]) -> dict[str, str]:
    """``{path: identity}``: two paths have the same identity exactly when their files hold the same bytes.

    Why two stages: every file is read once, for its first :data:`FIRST_BLOCK` bytes and its size (cheap on a
    25k-track dataset); only files sharing both with another file (rare: copies, or recordings that open with the
    same silence) are hashed in full, so two different recordings are never taken for copies. Unreadable files
    are left out (callers fall back to the path).
    """
    paths = sorted(set(paths))
    with ThreadPoolExecutor(max_workers=HASH_WORKERS) as pool:
        heads = dict(zip(paths, pool.map(_first_block, paths)))
    by_head: dict[str, list[str]] = {}
    for path, head in heads.items():
        if head is not None:
            by_head.setdefault(head, []).append(path)
    identity: dict[str, str] = {}
    for head, same in by_head.items():
        size = int(head.split(":", 1)[0])
        if len(same) == 1 or size <= FIRST_BLOCK:  # unique, or the first block is the whole file
            identity.update({p: head for p in same})
            continue
        for path in same:
            try:
                identity[path] = f"{size}:full:{hash_file(Path(path), 'sha256')}"
            except OSError:
                continue
    return identity


def _first_block(path: str) -> str | None:
    """``"<size>:<sha256 of the first block>"`` of a file, or None when it cannot be read."""
    try:
        with open(path, "rb") as fh:
            size = os.fstat(fh.fileno()).st_size
            return f"{size}:{hashlib.sha256(fh.read(FIRST_BLOCK)).hexdigest()}"
    except OSError:
        return None


def _how(a: str, b: str) -> str:
    return f"same file {a}" if a == b else f"identical content in {a} and {b}"


def _pair_list(pairs: list[DuplicatePair], count: int) -> str:
    """``N pair(s) of tracks: <pair>; <pair> ... (+M more)``: the first :data:`MAX_LISTED` pairs and the count."""
    more = f" ... (+{count - len(pairs)} more)" if count > len(pairs) else ""
    return f"{count} pair(s) of tracks: " + "; ".join(p.describe() for p in pairs) + more


# ------------------------------------------------------------------------------------------------- labels
def label_problems(task: Task, by_split: dict[str, list[Track]]) -> list[str]:
    """One paragraph per thing the training split cannot teach, for the task's kind (empty when all is well).

    The kind decides which checks apply (:func:`_kind_checks`); an empty training split is refused for every
    kind, since no probe can be fitted on it.
    """
    train = by_split.get("train", [])
    if not train:
        return [f"task {task.name}: the train split has no usable track, so no probe can be trained. Assign "
                f"tracks to train in the manifest / splits (and check that their audio files exist)."]
    check = _kind_checks(task.kind)
    return check(task, by_split) if check is not None else []


def _kind_checks(kind: "TaskKind") -> LabelCheck | None:
    """The label check of a kind, found by its class (so a task of a new kind built on these classes is covered)."""
    from benchmark.kinds.beat import BeatKind
    from benchmark.kinds.chords import ChordFramesKind
    from benchmark.kinds.clip import ClassKind, MultilabelKind, RegressionKind

    table: tuple[tuple[type, LabelCheck], ...] = (
        (ClassKind, class_problems), (MultilabelKind, tag_problems), (RegressionKind, constant_target_problems),
        (BeatKind, beat_problems), (ChordFramesKind, chord_problems))
    return next((check for cls, check in table if isinstance(kind, cls)), None)


def class_problems(task: Task, by_split: dict[str, list[Track]]) -> list[str]:
    """Class kinds: at least two classes in train, and no valid/test class without a training example.

    Why: a probe trained on one class predicts it everywhere; a class never seen in training is scored wrong by
    construction, so accuracy is capped by the protocol, not by the encoder.
    """
    y = {s: np.asarray(task.target_array(tracks)).astype(int) for s, tracks in by_split.items() if tracks}
    train = set(y["train"].tolist())
    problems = []
    if len(train) < 2:
        problems.append(
            f"task {task.name}: the train split holds only one class ({_names(task, sorted(train))}, "
            f"{len(y['train'])} track(s)), so the probe learns to predict it everywhere and its scores say nothing "
            f"about the encoder. Fix the manifest / splits so that train holds examples of at least two classes.")
    unseen: dict[int, dict[str, int]] = {}
    for split in ("valid", "test"):
        for c, n in zip(*np.unique(y.get(split, np.zeros(0, int)), return_counts=True)):
            if int(c) not in train:
                unseen.setdefault(int(c), {})[split] = int(n)
    if unseen:
        items = [f"{_name(task, c)} ({', '.join(f'{s} {n}' for s, n in where.items())})"
                 for c, where in sorted(unseen.items())]
        problems.append(
            f"task {task.name}: {len(unseen)} class(es) appear in valid or test but have no training example: "
            f"{_listed(items)}; a probe cannot predict a class it never saw, so those tracks are scored wrong by "
            f"construction. Fix the manifest / splits: move some of their tracks into train, or drop them.")
    return problems


def tag_problems(task: Task, by_split: dict[str, list[Track]]) -> list[str]:
    """Multilabel: every tag needs a positive training example, or the probe only learns to never predict it."""
    y = np.asarray(task.target_array(by_split["train"]))
    missing = [i for i in range(y.shape[1]) if not y[:, i].any()]
    if not missing:
        return []
    elsewhere = {i: sum(int(np.asarray(task.target_array(by_split[s]))[:, i].sum())
                        for s in ("valid", "test") if by_split.get(s)) for i in missing}
    items = [f"{_name(task, i)} ({elsewhere[i]} positive(s) in valid/test)" for i in missing]
    return [f"task {task.name}: {len(missing)} tag(s) have no positive example among the {len(y)} training "
            f"track(s): {_listed(items)}; the probe can only learn never to predict them, and their valid/test "
            f"scores mean nothing. Fix the manifest / splits: give each tag positive training tracks, or remove it."]


def constant_target_problems(task: Task, by_split: dict[str, list[Track]]) -> list[str]:
    """Regression: every target must vary over train (a constant has zero variance: nothing to learn, and R2 on
    targets z-scored by the train statistics is meaningless)."""
    y = np.asarray(task.target_array(by_split["train"]), dtype=np.float64)
    constant = [j for j in range(y.shape[1]) if np.all(y[:, j] == y[0, j])]
    if not constant:
        return []
    items = [f"{_name(task, j)} = {y[0, j]:g}" for j in constant]
    return [f"task {task.name}: {len(constant)} regression target(s) have the same value on all {len(y)} training "
            f"track(s): {_listed(items)}; a probe cannot learn a target without variance. Fix the manifest / "
            f"splits so that train covers a range of values, or drop the target (task.targets=[...])."]


def beat_problems(task: Task, by_split: dict[str, list[Track]]) -> list[str]:
    """Beat tracking: the training annotations must hold beats, or every frame is a negative."""
    beats = sum(len(target.beats) for target in task.target_array(by_split["train"]))
    if beats:
        return []
    return [f"task {task.name}: none of the {len(by_split['train'])} training track(s) has an annotated beat, so "
            f"the probe can only learn that no frame is a beat. Fix the annotations or the splits."]


def chord_problems(task: Task, by_split: dict[str, list[Track]]) -> list[str]:
    """Frame-level chords: the training annotations must hold at least two chord classes."""
    from benchmark.kinds.chords import chord_index

    classes = {chord_index(label) for target in task.target_array(by_split["train"]) for label in target.labels}
    if len(classes) >= 2:
        return []
    return [f"task {task.name}: the training annotations hold {len(classes)} chord class(es) "
            f"({_names(task, sorted(classes)) or 'none'}), so the probe learns to predict one chord everywhere. "
            f"Fix the annotations or the splits so that train holds at least two chord classes."]


def _name(task: Task, index: int) -> str:
    labels = list(task.labels)
    return repr(labels[index]) if 0 <= index < len(labels) else f"#{index}"


def _names(task: Task, indices: Iterable[int]) -> str:
    return ", ".join(_name(task, i) for i in indices)


def _listed(items: list[str]) -> str:
    """The first :data:`MAX_LISTED` items, and how many more there are."""
    shown = ", ".join(items[:MAX_LISTED])
    return shown + (f" ... (+{len(items) - MAX_LISTED} more)" if len(items) > MAX_LISTED else "")

