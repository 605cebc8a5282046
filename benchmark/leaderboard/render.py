"""A :class:`~benchmark.leaderboard.table.Leaderboard` as text: terminal (rich), markdown, csv and latex.

Why one iterator: the four formats show the same columns in the same order with the same numbers, ranks and
marks. :func:`value_columns` and :func:`row_values` walk a row's columns once and hand each format a
:class:`CellValue` holding both the numbers (csv) and the text at the table's decimals (the others); a format
only decides how a value looks (bold, ``$\\pm$``, escaping). The legend (:func:`notes`) is shared as well.

Every string that comes from a record (names, metric names, the legend's settings, checksums) is escaped for its
format by :mod:`benchmark.leaderboard.escape` (records are exchanged files, hence untrusted); only the numbers the
suite formats itself are written as they are.
"""
from __future__ import annotations

import csv
import io
import math
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any, Callable, Iterator

from benchmark.leaderboard.escape import (
    LATEX_DAGGER, csv_text, latex_comment, latex_escape, markdown_code, markdown_escape, rich_text,
)
from benchmark.leaderboard.table import Cell, Column, Leaderboard, Row, ranks


@dataclass(frozen=True)
class ValueColumn:
    """One value column of the table, after the lead columns (model, protocol, ...)."""

    kind: str  # "metric", "delta" (ours minus published), "layer" (chosen on validation) or "average"
    label: str  # "synth_chords accuracy", "synth_chords accuracy Δ", "synth_chords layer", "average"
    column: Column | None = None  # metric and delta
    task: str | None = None  # all but average


@dataclass(frozen=True)
class CellValue:
    """One value cell of a row: the numbers, the text at the table's decimals and the cell's rank."""

    kind: str  # as its ValueColumn
    text: str  # "74.8 ± 1.0 (3)", "+1.2", "7×2, ws×1", "81.9"; "" when empty
    cell: Cell | None = None  # metric: mean, std, seed count
    parts: tuple[str, str, str] = ("", "", "")  # metric: (mean, spread, count) texts
    value: float | None = None  # delta (None: none) and average (NaN: none)
    rank: int | None = None  # 1 best, 2 second in its column; metric and average only
    partial: bool = False  # average: over fewer tasks than the table
    tasks: int = 0  # average: the number of tasks it is over

    def marked(self, dagger: str = "†") -> str:
        """The text, with the mark of an average over fewer tasks than the table."""
        return self.text + (dagger if self.partial else "")


def value_columns(board: Leaderboard) -> list[ValueColumn]:
    """The table's value columns in order: per task its metrics (each with its delta) and layer; the average."""
    out: list[ValueColumn] = []
    for task in board.tasks:
        for c in (c for c in board.columns if c.task == task):
            out.append(ValueColumn("metric", c.label, c, task))
            if c in board.delta_columns:
                out.append(ValueColumn("delta", f"{c.label} Δ", c, task))
        if not board.by_layer and any(task in r.chosen_layers for r in board.rows):
            out.append(ValueColumn("layer", f"{task} layer", None, task))
    out.append(ValueColumn("average", "average"))
    return out


def row_values(board: Leaderboard, decimals: int | None = None) -> Iterator[tuple[Row, list[CellValue]]]:
    """Every row with its cells, one per :func:`value_columns` entry: the one loop every format renders from."""
    d = default_decimals(board) if decimals is None else decimals
    rank = ranks(board)
    columns = value_columns(board)
    for i, row in enumerate(board.rows):
        values = []
        for vc in columns:
            if vc.kind == "metric":
                cell = row.cells.get(vc.column)
                values.append(CellValue("metric", cell_text(cell, d), cell=cell, parts=cell_parts(cell, d),
                                        rank=rank.get((i, vc.label))))
            elif vc.kind == "delta":
                delta = row.deltas.get(vc.column)
                values.append(CellValue("delta", delta_text(delta, d), value=delta))
            elif vc.kind == "layer":
                values.append(CellValue("layer", row.chosen_layers.get(vc.task, "")))
            else:
                partial = not math.isnan(row.average) and not board.full_coverage(row)
                values.append(CellValue("average", fmt_number(row.average, d), value=row.average,
                                        rank=rank.get((i, "average")), partial=partial, tasks=row.average_tasks))
        yield row, values


# ----------------------------------------------------------------------------------------------------------------
# Shared text


def default_decimals(board: Leaderboard) -> int:
    return 1 if board.percent else 3


def fmt_number(value: float | None, decimals: int) -> str:
    return "" if value is None or math.isnan(value) else f"{value:.{decimals}f}"


def cell_parts(cell: Cell | None, decimals: int) -> tuple[str, str, str]:
    """(mean, spread, count) strings of a cell; published cells have neither spread nor count."""
    if cell is None:
        return "", "", ""
    spread = fmt_number(cell.std, decimals) if cell.n > 1 else ""
    return fmt_number(cell.mean, decimals), spread, str(cell.n) if cell.n else ""


def cell_text(cell: Cell | None, decimals: int, pm: str = "±") -> str:
    """``74.8 ± 1.0 (3)`` (``pm`` between mean and spread), ``74.8`` for a published cell, ``""`` for none."""
    mean, spread, n = cell_parts(cell, decimals)
    if not mean:
        return ""
    text = mean + (f" {pm} {spread}" if spread else "")
    return text + (f" ({n})" if n else "")


def delta_text(value: float | None, decimals: int) -> str:
    return "" if value is None or math.isnan(value) else f"{value:+.{decimals}f}"


def notes(board: Leaderboard) -> list[str]:
    """The legend printed under every format: scale, spread, layer, average and protocol rules."""
    unit = "percent" if board.percent else "the metric's own scale"
    what = "of each layer" if board.by_layer else "of the layer selected on validation"
    spread = "sample std (n-1)" if board.ddof == 1 else f"std (ddof={board.ddof})"
    lines = [f"Test scores {what}, in {unit}: mean ± {spread} over seeds (seed count in parentheses)."]
    if not board.by_layer:
        lines.append("Layer: the layer chosen on validation (ws = learned weighted sum of all layers); "
                     "where seeds disagree, every choice with its count.")
    lines.append("Average: mean over a task's metrics first, then over tasks; † = over fewer tasks than the table.")
    lines.append("Seeds are averaged only within one protocol checksum (the run config minus seed and file "
                 "locations); rows of different protocols are never merged.")
    for p in board.protocols.values():
        lines.append(f"{p.id} ({p.records} record(s)): {p.describe()}")
    if board.published:
        lines.append(f"{board.published}: see results/reference/README.md for citation and protocol; "
                     "Δ = ours minus published, same model, task and protocol.")
        lines.extend(board.delta_refusals)
    return lines


def lead_headers(board: Leaderboard) -> list[str]:
    """The lead columns of the human-readable formats (csv has its own, machine-readable ones)."""
    return ["model", "protocol"] + (["source"] if board.published else [])


def row_fields(board: Leaderboard, row: Row, escape: Callable[[object], str] = str) -> list[str]:
    """The lead cells of a row (label, protocol, source), each record-given part passed through ``escape``."""
    fields = [row_label(row, escape), escape(row.key.protocol if not row.published else "-")]
    return fields + ([escape(row.source)] if board.published else [])


def row_label(row: Row, escape: Callable[[object], str] = str) -> str:
    """:attr:`Row.label` (``model [variant] @ layer``) with the model, variant and layer escaped one by one, so
    that the brackets the suite adds are never escaped (``mfcc [task.window_seconds=2.0]`` renders as before)."""
    key = row.key
    name = escape(key.model) + (f" [{escape(key.variant)}]" if key.variant else "")
    return f"{name} @ {escape(row.layer)}" if row.layer is not None else name


def _now() -> str:
    return datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")


# ----------------------------------------------------------------------------------------------------------------
# Markdown


def render_markdown(board: Leaderboard, command: str, decimals: int | None = None,
                    source: str = "results/") -> str:
    """A Markdown page: a generated-by line, the table (best per column in bold) and the legend."""
    columns = value_columns(board)
    headers = [markdown_escape(h) for h in lead_headers(board) + [vc.label for vc in columns]]
    lines = [f"_Generated by {markdown_code(command)} on {_now()} from {board.n_records} run record(s) under "
             f"{markdown_code(source)}; do not edit by hand._", "", _md_line(headers),
             "|" + "|".join(["---"] * len(lead_headers(board)) + ["---:"] * len(columns)) + "|"]
    for row, values in row_values(board, decimals):
        lines.append(_md_line(row_fields(board, row, markdown_escape) + [_md_value(v) for v in values]))
    lines += [""] + [f"- {markdown_escape(n)}" for n in notes(board)]
    return "\n".join(lines) + "\n"


def _md_value(value: CellValue) -> str:
    """A value cell: the suite's own number text, or the (escaped) layer choice; the best bold."""
    text = markdown_escape(value.marked()) if value.kind == "layer" else value.marked()
    return f"**{text}**" if text and value.rank == 1 else text


def _md_line(cells: list[str]) -> str:
    """A table line from cells that are already escaped (every ``|`` inside them is ``\\|``)."""
    return "| " + " | ".join(cells) + " |"


# ----------------------------------------------------------------------------------------------------------------
# CSV


def render_csv(board: Leaderboard) -> str:
    """Machine-readable numbers: per metric column its mean, std, n (and delta); per task the chosen layer."""
    headers = ["model", "variant", "layer", "protocol", "source", "checksums"]
    for vc in value_columns(board):
        headers += [csv_text(h) for h in _csv_headers(vc)]
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(headers)
    for row, values in row_values(board):
        text = [row.key.model, row.key.variant, row.layer or "", row.key.protocol, row.source,
                ";".join(sorted(row.checksums))]
        fields: list[Any] = [csv_text(t) for t in text]
        for value in values:
            fields += _csv_value(value)
        writer.writerow(fields)
    return out.getvalue()


def _csv_headers(vc: ValueColumn) -> list[str]:
    if vc.kind == "metric":
        name = f"{vc.column.task}/{vc.column.metric}"
        return [name, f"{name}/std", f"{name}/n"]
    if vc.kind == "delta":
        return [f"{vc.column.task}/{vc.column.metric}/delta"]
    if vc.kind == "layer":
        return [f"{vc.task}/layer"]
    return ["average", "average_tasks"]


def _csv_value(value: CellValue) -> list[Any]:
    """Full-precision numbers (``repr``, the suite's own: a negative delta stays a number), empty where there
    is none; the layer choice is text and goes through :func:`csv_text`."""
    if value.kind == "metric":
        cell = value.cell
        return ["", "", ""] if cell is None else [
            _csv_number(cell.mean), _csv_number(cell.std), cell.n or ""]
    if value.kind == "delta":
        return ["" if value.value is None else _csv_number(value.value)]
    if value.kind == "layer":
        return [csv_text(value.text)]
    return [_csv_number(value.value), value.tasks]


def _csv_number(value: float) -> str:
    """``repr`` of a finite number; empty for NaN and infinity, which are no measurement (records with
    non-finite scores are refused on read, so this is the last guard, not the rule)."""
    return repr(value) if math.isfinite(value) else ""


# ----------------------------------------------------------------------------------------------------------------
# LaTeX


def render_latex(board: Leaderboard, command: str, decimals: int | None = None) -> str:
    """A booktabs ``tabular``: tasks as column groups, best per column bold, second underlined, names escaped."""
    columns = value_columns(board)
    lead = lead_headers(board)
    spec = "l" * len(lead) + "".join("c" if vc.kind == "layer" else "r" for vc in columns)
    # one comment line, the user's own command (sanitised); the legend, which quotes record values, is table text
    # below, escaped like every cell, so nothing a record holds can end a comment and become live LaTeX
    lines = [latex_comment(f"Generated by `{command}` on {_now()}; do not edit by hand. Needs "
                           "\\usepackage{booktabs}."),
             f"\\begin{{tabular}}{{{spec}}}", r"\toprule"]
    group_cells, rules = [""] * len(lead), []
    start = len(lead) + 1
    for task in board.tasks:
        width = sum(1 for vc in columns if vc.task == task)
        if not width:
            continue
        group_cells.append(f"\\multicolumn{{{width}}}{{c}}{{{latex_escape(task)}}}")
        rules.append(f"\\cmidrule(lr){{{start}-{start + width - 1}}}")
        start += width
    group_cells.append("")
    sub = [latex_escape(h.capitalize()) for h in lead] + [_latex_header(vc) for vc in columns]
    lines += [" & ".join(group_cells) + r" \\", " ".join(rules), " & ".join(sub) + r" \\", r"\midrule"]
    previous_published = False
    for i, (row, values) in enumerate(row_values(board, decimals)):
        if row.published and not previous_published and i > 0:
            lines.append(r"\midrule")
        previous_published = row.published
        cells = row_fields(board, row, latex_escape) + [_latex_value(v) for v in values]
        lines.append(" & ".join(cells) + r" \\")
    lines.append(r"\bottomrule")
    width = len(lead) + len(columns)
    if any(not math.isnan(r.average) and not board.full_coverage(r) for r in board.rows):
        lines.append(f"\\multicolumn{{{width}}}{{l}}{{\\footnotesize {LATEX_DAGGER} average "
                     r"over fewer tasks than the table has.} \\")
    lines += [f"\\multicolumn{{{width}}}{{l}}{{\\footnotesize {latex_escape(n)}}} \\\\" for n in notes(board)]
    lines.append(r"\end{tabular}")
    return "\n".join(lines) + "\n"


def _latex_header(vc: ValueColumn) -> str:
    if vc.kind == "metric":
        return latex_escape(vc.column.metric)
    return {"delta": r"$\Delta$", "layer": "layer", "average": "Avg."}[vc.kind]


def _latex_value(value: CellValue) -> str:
    """Emphasis on the mean only (best bold, second underlined), ``$\\pm$`` spread, a minus in math mode."""
    if value.kind == "metric":
        mean, spread, n = value.parts
        if not mean:
            return ""
        text = _emphasis(mean, value.rank) + (f" $\\pm$ {spread}" if spread else "")
        return text + (f" ({n})" if n else "")
    if value.kind == "delta":
        return latex_escape(value.text).replace("-", "$-$", 1)
    if value.kind == "layer":
        return latex_escape(value.text)
    if not value.text:
        return ""
    return _emphasis(value.text, value.rank) + (LATEX_DAGGER if value.partial else "")


def _emphasis(text: str, rank: int | None) -> str:
    return f"\\textbf{{{text}}}" if rank == 1 else f"\\underline{{{text}}}" if rank == 2 else text


# ----------------------------------------------------------------------------------------------------------------
# Terminal


def render_terminal(board: Leaderboard, console, decimals: int | None = None) -> None:
    """A rich table on the console: best per column bold, second underlined, the legend as its caption."""
    from rich.table import Table
    from rich.text import Text

    caption = Text("\n").join(rich_text(n) for n in notes(board))  # each note one line, then the breaks
    table = Table(title="Leaderboard", caption=caption, caption_justify="left")
    for h in lead_headers(board):
        table.add_column(rich_text(h), no_wrap=True)
    for vc in value_columns(board):
        table.add_column(rich_text(vc.label), justify="center" if vc.kind == "layer" else "right")
    for row, values in row_values(board, decimals):
        table.add_row(*[rich_text(f) for f in row_fields(board, row)], *[_rich(v) for v in values],
                      style="italic" if row.published else None)
    console.print(table)


def _rich(value: CellValue):
    """A value cell as rich ``Text`` (never parsed as markup): best bold, second underlined."""
    return rich_text(value.marked(), {1: "bold", 2: "underline"}.get(value.rank or 0))
