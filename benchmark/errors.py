"""Errors the suite raises for settings a user can fix, kept apart so every module can raise them.

The command line prints a :class:`UserError` as its message alone (no traceback) and exits non-zero: the message
is the whole story, and a traceback would only bury the fix. Everything else is a bug of the suite and keeps its
traceback. ``HYDRA_FULL_ERROR=1`` shows the traceback of user errors too.
"""
from __future__ import annotations

import errno


class UserError(Exception):
    """A failure the user causes or fixes: a bad setting, missing or unreadable data, an unreachable hub.

    Subclasses also derive from the builtin error a caller would expect (``ValueError``, ``FileNotFoundError``,
    ``RuntimeError``), so library code may catch them as such. The message names what is wrong and the fix.
    """


class ConfigError(UserError, ValueError):
    """A run config that cannot work, found before any data is read or any feature is computed.

    The message names the offending key, what was given, what is allowed and the override that fixes it.
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


def storage_error_message(exc: OSError) -> str | None:
    """A one-paragraph message for a full disk or a folder the user may not write, or None for other errors.

    Names the file or folder from the error and the settings that move the suite's files elsewhere.
    """
    reason = _STORAGE_ERRNOS.get(exc.errno or -1)
    if reason is None:
        return None
    where = exc.filename or "a file the suite writes"
    return (f"{where}: {reason}. Free space there or make it writable, or point the suite elsewhere: data_root=, "
            f"cache_dir= and results_dir= (run, extract), out= (embed, leaderboard, plot); a rerun of the same "
            f"command resumes from what was already saved.")
