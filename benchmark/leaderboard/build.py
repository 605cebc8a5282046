"""Run records -> :class:`~benchmark.leaderboard.table.Leaderboard`: the one pipeline behind every table and the
heat map (filter, group into protocols and rows, aggregate over seeds, add published rows, average, sort).

Why its own module: the command, the plots and the tests all build boards, and the published merge depends on
the table's types while the table does not depend on it; composing them here keeps both free of each other.
"""
from __future__ import annotations

from pathlib import Path
from typing import Mapping, Sequence

from benchmark.leaderboard.grouping import group_records
from benchmark.leaderboard.published import add_published, check_published
from benchmark.leaderboard.records import as_record
from benchmark.leaderboard.table import Leaderboard, aggregate_rows, row_average, sort_rows, table_columns
from benchmark.run_record import RunRecord


def build_leaderboard(records: Sequence[RunRecord | Mapping], tasks: Sequence[str] | None = None,
                      models: Sequence[str] | None = None, by_layer: bool = False, published: str | None = None,
                      percent: bool = True, ddof: int = 1, reference_dir: Path | str | None = None) -> Leaderboard:
    """Aggregate run records into a :class:`Leaderboard` (see benchmark.leaderboard's docstring for the rules)."""
    if published:
        check_published(published)
    records = [r for r in map(as_record, records)
               if (not tasks or r.task in tasks) and (not models or r.model in models)]
    grouped = group_records(records)
    scale = 100.0 if percent else 1.0
    task_order = list(tasks) if tasks else sorted({r.task for r in records})
    columns = table_columns(records, task_order)
    rows = aggregate_rows(grouped, columns, by_layer, scale, ddof)
    board = Leaderboard(columns, task_order, rows, grouped.protocols, by_layer, percent, ddof, len(records),
                        deviating_rows=grouped.deviating_rows)
    if published:
        add_published(board, published, reference_dir, tasks_given=bool(tasks))
    for row in board.rows:
        row.average, row.average_tasks = row_average(row, board.columns)
    board.rows = sort_rows(board)
    return board
