"""Errors the suite raises for settings a user can fix, kept apart so every module can raise them.

The command line prints a :class:`UserError` as its message alone (no traceback) and exits non-zero: the message
is the whole story, and a traceback would only bury the fix. Everything else is a bug of the suite and keeps its
traceback. ``HYDRA_FULL_ERROR=1`` shows the traceback of user errors too.
"""
from __future__ import annotations

import errno
import os
import shutil
from pathlib import Path


class UserError(Exception):
    """A failure the user causes or fixes: a bad setting, missing or unreadable data, an unreachable hub.

    Subclasses also derive from the builtin error a caller would expect (``ValueError``, ``FileNotFoundError``,
    ``RuntimeError``), so library code may catch them as such. The message names what is wrong and the fix.
    """


class ConfigError(UserError, ValueError):
    """A run config that cannot work, found before any data is read or any feature is computed.

    The message names the offending key, what was given, what is allowed and the override that fixes it.
    """


class ProtocolError(UserError, ValueError):
    """A protocol whose scores cannot be right (the same audio in two splits, a class only in valid/test, a train
    split with nothing to learn), refused before any audio is decoded (:mod:`benchmark.protocol_checks`).

    The message lists the offending tracks, classes or targets and names the fix: the manifest / splits, or
    ``allow_duplicate_audio=true`` for duplicates accepted knowingly.
    """


class InputFileError(UserError, FileNotFoundError):
    """An input the user named (an audio file or folder to embed, a manifest) is missing or holds no audio."""


# OSError numbers that mean "the place you asked me to write or read is not usable", not "the suite is broken".
_STORAGE_ERRNOS = {
    errno.ENOSPC: "the disk is full",
    errno.EDQUOT: "the disk quota is exhausted",
    errno.EACCES: "permission denied",
    errno.EPERM: "operation not permitted",
    errno.EROFS: "the file system is read-only",
}


def storage_error_message(exc: OSError, needed_bytes: int | None = None) -> str | None:
    """A one-paragraph message for a full disk or a folder the user may not write, or None for other errors.

    Names the file or folder from the error, the free space of that folder's file system and, when the caller can
    estimate it (``needed_bytes``: a record's text, a checkpoint's size), the space the write needs: "disk full"
    alone does not say whether deleting a few files or moving the folder is the fix. Ends with the settings that
    move the suite's files elsewhere.
    """
    reason = _STORAGE_ERRNOS.get(exc.errno or -1)
    if reason is None:
        return None
    where = exc.filename or "a file the suite writes"
    return (f"{where}: {reason}{_space_note(exc.filename, needed_bytes)}. Free space there or make it writable, "
            f"or point the suite elsewhere: data_root=, cache_dir=, results_dir= and log_dir= (run, extract), out= "
            f"(embed, leaderboard, plot); a rerun of the same command resumes from what was already saved.")


def _space_note(filename: "str | bytes | os.PathLike[str] | None", needed_bytes: int | None) -> str:
    """`` (folder F: 1.2 GB free, about 3.4 MB needed)``, or what of it can be known ("" without a file name).

    The free space is read from the nearest folder that exists (the target's folder may not have been created).
    """
    if not filename:
        return ""
    folder = Path(os.fsdecode(filename)).parent
    parts = []
    existing = next((p for p in (folder, *folder.parents) if os.path.isdir(p)), None)  # never raises
    if existing is not None:
        try:
            parts.append(f"{_size(shutil.disk_usage(existing).free)} free")
        except OSError:  # the free space only enriches the message
            pass
    if needed_bytes is not None:
        parts.append(f"about {_size(needed_bytes)} needed")
    return f" (folder {folder}{': ' + ', '.join(parts) if parts else ''})"


def _size(num_bytes: float) -> str:
    """Bytes as a short decimal size (``512 B``, ``3.4 MB``, ``1.2 GB``), as ``df -H`` would print them."""
    value, unit = float(num_bytes), "B"
    for unit in ("B", "kB", "MB", "GB", "TB"):
        if abs(value) < 1000 or unit == "TB":
            break
        value /= 1000
    return f"{value:.0f} B" if unit == "B" else f"{value:.1f} {unit}"
