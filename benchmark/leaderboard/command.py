"""``python -m benchmark leaderboard``: a leaderboard config -> records -> board -> the requested format on disk.

Why separate: the command's concerns (which folder, which file is written, refusing to overwrite a good
``leaderboard.md`` with an empty table) are not the table's; the library functions stay usable without them.
"""
from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

from benchmark.leaderboard.build import build_leaderboard
from benchmark.leaderboard.escape import rich_text
from benchmark.leaderboard.records import scan_records
from benchmark.leaderboard.render import render_csv, render_latex, render_markdown, render_terminal
from benchmark.run_record import RunRecord

FORMATS = ("terminal", "markdown", "csv", "latex")


def as_list(value: Any) -> list[str] | None:
    """A ``tasks=`` / ``models=`` value as a list (``None``: all): a list, ``a,b`` or a single name."""
    if value in (None, "", "all"):
        return None
    if isinstance(value, (list, tuple)):
        return [str(v) for v in value]
    return [s.strip() for s in str(value).split(",") if s.strip()]


def records_source(config: dict[str, Any]) -> tuple[Path, Path]:
    """(results_dir, the folder records are read from); a missing folder is refused with the fix.

    By default the records are those the runner writes, under ``<results_dir>/runs/``: the rest of ``results/``
    holds other runs' files (studies with their own records, bench JSON, training logs) that must not enter the
    table. ``records=`` reads any folder instead (searched recursively)."""
    results_dir = Path(config.get("results_dir") or "results")
    source = Path(config.get("records") or results_dir / "runs")
    if not source.exists():
        raise FileNotFoundError(f"no results folder {source}: run `python -m benchmark run ...` first")
    return results_dir, source


def read_records(source: Path) -> list[RunRecord]:
    """The valid records under ``source``; every file skipped is named on stderr with the reason, one line each
    (``skipped results/runs/x/seed0-abc.json: selected.test.accuracy='0.99' is a string, not a number``), so
    that a bad file is seen but never stops the others from being shown. Shared by ``leaderboard`` and ``plot``.
    """
    scan = scan_records(source)
    for line in scan.messages():
        print(line, file=sys.stderr)
    return scan.records


def leaderboard_command(config: dict[str, Any], command: str, console=None) -> Path | None:
    """Build the leaderboard a ``leaderboard`` config asks for, print and/or write it; return the file written.

    Raises ``ValueError`` when no record matches (an empty table would overwrite a good leaderboard.md).

    ``format=terminal`` prints the rich table and regenerates ``<results_dir>/leaderboard.md``;
    ``format=markdown`` writes that file (or ``out=``); ``csv`` / ``latex`` write ``out=`` or print to stdout.
    """
    from benchmark.console import make_console

    console = console or make_console()
    fmt = str(config.get("format") or "terminal")
    if fmt not in FORMATS:
        raise ValueError(f"unknown format {fmt!r}; valid formats: {', '.join(FORMATS)}")
    results_dir, source = records_source(config)
    records = read_records(source)
    published = config.get("published") or None
    board = build_leaderboard(records, tasks=as_list(config.get("tasks")), models=as_list(config.get("models")),
                              by_layer=bool(config.get("by_layer", False)),
                              published=None if str(published).lower() in ("none", "false") else published,
                              percent=bool(config.get("percent", True)), ddof=int(config.get("ddof", 1)),
                              reference_dir=config.get("reference_dir"))
    if not board.rows:
        raise ValueError(f"no run records under {source} match (tasks={config.get('tasks')}, "
                         f"models={config.get('models')}); records are written by `python -m benchmark run`")
    decimals = config.get("decimals")
    decimals = None if decimals is None else int(decimals)
    out = config.get("out")
    written: Path | None = None
    if fmt in ("terminal", "markdown"):
        if fmt == "terminal":
            render_terminal(board, console, decimals)
        written = Path(out) if out else results_dir / "leaderboard.md"
        _write(written, render_markdown(board, command, decimals, source=_display(source)))
    else:
        text = render_csv(board) if fmt == "csv" else render_latex(board, command, decimals)
        if out:
            written = Path(out)
            _write(written, text)
        else:
            print(text, end="")
    if written is not None:
        console.print(rich_text(f"wrote {written}"))
    return written


def _display(path: Path) -> str:
    try:
        return str(path.resolve().relative_to(Path.cwd().resolve())) + "/"
    except ValueError:
        return str(path) + "/"


def _write(path: Path, text: str) -> None:
    from benchmark.cache import atomic_write_text

    atomic_write_text(path, text)
