"""The rich console every command prints through: wide enough for the tables when output goes to a file or CI."""
from __future__ import annotations

import sys

from rich.console import Console


def make_console(quiet: bool = False) -> Console:
    """Terminal width on a terminal; 140 columns when piped, so tables are not truncated in logs."""
    return Console(width=None if sys.stdout.isatty() else 140, quiet=quiet)
