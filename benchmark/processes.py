"""Process liveness, for files named after the process writing them (``*.tmp<pid>``, lock files).

A leaf module: the feature cache and the synthetic-data renderer both tidy up after dead writers with it.
"""
from __future__ import annotations

import os


def pid_alive(pid: int) -> bool:
    """Whether a process with this id runs on this machine (temporary names carry their writer's pid)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
