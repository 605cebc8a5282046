"""The tracks stage of a run: the task's tracks, checked against the data on disk, split, and what was lost.

Why a module of its own: the dataset-loss policy (``max_missing_fraction`` over absent, corrupt and undecodable
files together) is one rule applied before extraction and after it; keeping both halves together keeps it one.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

from rich.console import Console

from benchmark.extract import ExtractionStats
from benchmark.errors import UserError
from benchmark.feature_store import shard_positions, track_positions
from benchmark.protocol_checks import check_protocol
from benchmark.tasks.base import SPLITS, Task, Track, check_dataset

def split_tracks(task: Task, tracks: list[Track]) -> dict[str, list[Track]]:
    by_split = {s: [t for t in tracks if t.split == s] for s in SPLITS}
    empty = [s for s, tr in by_split.items() if not tr]
    if empty:
        raise DatasetIncompleteError(f"task {task.name}: split(s) {empty} have no tracks; check the dataset and its "
                                     f"manifest (python -m benchmark check task={task.name})")
    return by_split


class DatasetIncompleteError(UserError, RuntimeError):
    """More of a split is missing (or fails its checksum) than ``max_missing_fraction`` allows."""


def splits_over_limit(lost: dict[str, list[str]], totals: dict[str, int], limit: float) -> list[str]:
    """The splits that lose more than ``limit`` of their tracks (the ``max_missing_fraction`` rule)."""
    return [s for s in SPLITS if len(lost.get(s, [])) > limit * max(totals.get(s, 0), 1)]


def checked_tracks(task: Task, data_root: Path, config: dict[str, Any],
                   console: Console) -> tuple[dict[str, list[Track]], dict[str, list[str]], dict[str, list[int]]]:
    """Check the local dataset before any compute; drop absent or corrupt files within the allowed fraction.

    Then the protocol is checked (:func:`benchmark.protocol_checks.check_protocol`): the same audio in two splits,
    or labels the training split cannot teach, are refused before any extraction.

    Returns the usable tracks per split, the skipped track ids per split (for the run record) and the position of
    every usable track in the task's full split list (the extractor's shards are cut by it, see
    :func:`track_positions`).
    """
    tracks = task.tracks(data_root)
    report = check_dataset(task, tracks, data_root, verify_checksums=bool(config.get("verify_checksums", True)))
    limit = float(config.get("max_missing_fraction", 0.01))
    bad_paths = set(report.bad_checksums)
    skipped = {s: list(report.missing.get(s, [])) for s in SPLITS}
    for t in tracks:
        if str(t.path) in bad_paths:
            skipped[t.split].append(t.track_id)
    over = splits_over_limit(skipped, report.counts, limit)
    if over:
        raise DatasetIncompleteError(
            f"{report.summary()}\nsplit(s) {over} lose more than max_missing_fraction={limit:g} of their tracks; "
            f"fetch the data with `{task.fetch_command()}` or allow it with max_missing_fraction=...")
    if not report.complete:
        console.print(report.summary(), highlight=False)
        console.print(f"[yellow]skipping {sum(map(len, skipped.values()))} track(s) "
                      f"(within max_missing_fraction={limit:g})[/]")
    gone = {tid for ids in skipped.values() for tid in ids}
    by_split = split_tracks(task, [t for t in tracks if t.track_id not in gone])
    # The protocol (duplicate audio across splits, what train can teach) is judged on the usable tracks, here,
    # because this is the last point before the encoder decodes anything.
    check_protocol(task, by_split, allow_duplicate_audio=bool(config.get("allow_duplicate_audio", False)),
                   train_skipped=len(skipped["train"]), console=console)
    return by_split, skipped, shard_positions(by_split, track_positions(tracks))


def check_decoded(by_split: dict[str, list[Track]], skipped: dict[str, list[str]], extraction: ExtractionStats,
                  config: dict[str, Any], console: Console) -> dict[str, list[str]]:
    """Add the tracks whose audio could not be decoded to ``skipped``; stop when a split lost too many.

    Called after every split was extracted and cached: fixing or deleting the listed files and running the same
    command again reuses all the work done (only the shards holding replaced files are computed again).
    """
    limit = float(config.get("max_missing_fraction", 0.01))
    merged = {s: list(skipped.get(s, [])) for s in SPLITS}
    failures = extraction.failures
    for s in SPLITS:
        merged[s] += [tid for tid in failures.get(s, {}) if tid not in merged[s]]
    lines = [f"  {s}: {tid}: {reason}" for s in SPLITS for tid, reason in failures.get(s, {}).items()]
    total = {s: len(by_split.get(s, [])) + len(skipped.get(s, [])) for s in SPLITS}
    over = splits_over_limit(merged, total, limit)
    if over:
        raise DatasetIncompleteError(
            "audio that could not be decoded:\n" + "\n".join(lines) + f"\nsplit(s) {over} lose more than "
            f"max_missing_fraction={limit:g} of their tracks (absent, corrupt and undecodable files together). "
            "Everything else was extracted and cached: replace or delete these files and run the same command "
            "again, or allow it with max_missing_fraction=...")
    if lines:
        console.print(f"[yellow]skipped {len(lines)} track(s) whose audio could not be decoded "
                      f"(within max_missing_fraction={limit:g}):[/]\n" + "\n".join(lines), highlight=False)
    return merged
