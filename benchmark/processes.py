"""Process liveness, for files named after the process writing them (``*.tmp<pid>``, lock files).

A leaf module: the feature cache and the synthetic-data renderer both tidy up after dead writers with it.
"""
from __future__ import annotations

import os
from pathlib import Path


def pid_alive(pid: int) -> bool:
    """Whether a process with this id runs on this machine (temporary names carry their writer's pid)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def dead_writers_temporary(path: Path, markers: tuple[str, ...] = (".tmp",)) -> bool:
    """Whether ``path`` is a temporary file (``<name><marker><pid>``) whose writer no longer runs here.

    One rule for every folder the suite writes (the feature cache, run records, sweep checkpoints): a temporary
    is never read, and one of a live process (another run writing the same folder) is left alone.
    """
    for marker in markers:
        head, sep, pid = path.name.rpartition(marker)
        if sep and head and pid.isdigit():
            return not pid_alive(int(pid)) and path.is_file()
    return False
