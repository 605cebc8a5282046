"""Writing a run's own files (its record and its sweep checkpoint): no temporary outlives its run, and a full or
read-only disk is explained.

Why a module of its own: both files are written next to each other (``<results_dir>/runs/<task>/<model>/``) by
two stages (the sweep and the record), and both need the same two guarantees. A temporary name
(``<file>.tmp<pid>``) is removed when its write fails, and one left by a killed process (``kill -9``, a power cut)
is removed by the next run of the same command. A write that fails because the disk is full, over quota,
read-only or not permitted raises :class:`StorageError`, whose message names the folder, its free space and the
space the write needed.
"""
from __future__ import annotations

import contextlib
import glob
import logging
import os
from pathlib import Path
from typing import Iterator

from benchmark.errors import UserError, storage_error_message
from benchmark.processes import dead_writers_temporary

log = logging.getLogger(__name__)

TMP_MARKER = ".tmp"


class StorageError(UserError, OSError):
    """A run's file could not be written because of where it goes (full, over quota, read-only, forbidden).

    A :class:`~benchmark.errors.UserError` (the command line prints the message alone: the fix is to free space
    or to point ``results_dir=`` elsewhere) that is still an ``OSError`` for callers that catch write failures.
    """


def temporary_name(path: Path, pid: int | None = None) -> Path:
    """The name ``path`` is written under before the rename that commits it (the writer's pid at the end)."""
    return path.with_name(f"{path.name}{TMP_MARKER}{os.getpid() if pid is None else pid}")


def remove_dead_temporaries(path: Path) -> list[Path]:
    """Delete the temporaries of ``path``'s run (``<stem>.*.tmp<pid>``) whose writer no longer runs; return them.

    Only names that start with this run's stem (``seed0-<checksum>``) are looked at: other seeds of the same model
    share the folder and may be writing right now from another machine, where their pid means nothing here.
    """
    removed = []
    for candidate in Path(path).parent.glob(glob.escape(Path(path).stem) + ".*" + TMP_MARKER + "*"):
        if dead_writers_temporary(candidate, (TMP_MARKER,)):
            candidate.unlink(missing_ok=True)
            removed.append(candidate)
    if removed:
        log.info("removed temporaries of interrupted runs: %s", ", ".join(p.name for p in removed))
    return removed


@contextlib.contextmanager
def committing(target: Path, temporary: Path, needed_bytes: int | None = None) -> Iterator[None]:
    """Around the write of ``temporary`` and its rename to ``target``: on failure the temporary is removed, and
    a storage failure (ENOSPC, EDQUOT, EROFS, EACCES, EPERM) becomes a :class:`StorageError` naming ``target``'s
    folder, its free space and ``needed_bytes``.

    Why the target's name: a failed ``write()`` carries no file name at all (a bare ``[Errno 28]``), and the
    temporary's name would point the user at a file that no longer exists.
    """
    try:
        yield
    except BaseException as exc:
        Path(temporary).unlink(missing_ok=True)
        if isinstance(exc, OSError) and not isinstance(exc, StorageError):
            message = storage_error_message(OSError(exc.errno, exc.strerror, str(target)), needed_bytes)
            if message is not None:
                raise StorageError(message) from exc
        raise
