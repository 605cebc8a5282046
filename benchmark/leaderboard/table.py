"""The leaderboard as data: columns, rows of cells (mean, std, seed count over seeds), averages and ranks.

Why separate from rendering: every format (terminal, markdown, csv, latex) and the heat map show the same numbers,
so they are computed once here, from typed records, and the renderers only format them.

Rules: a cell is the *test* score of the layer selected on *validation* (or, with ``by_layer``, of one layer),
as a mean over seeds with the sample standard deviation (``ddof=1``; one seed shows no spread); the average
takes a task's metrics first, then the tasks; best and second best are ranked per column.
"""
from __future__ import annotations

import math
from collections import Counter
from dataclasses import dataclass, field
from typing import Any, Iterable, Sequence

import numpy as np
import pandas as pd

from benchmark.leaderboard.grouping import Grouped, Protocol, RowKey
from benchmark.metrics import higher_is_better
from benchmark.run_record import WEIGHTED_SUM, LayerScores, RunRecord

# Metrics that are bookkeeping, not scores (how many tags a split could score): never tabulated.
BOOKKEEPING_METRICS = frozenset({"tags_scored"})

# The metrics the field reports per task, in its order. Other tasks show every score metric of their records.
FIELD_METRICS: dict[str, tuple[str, ...]] = {
    "gtzan": ("accuracy",),
    "mtt": ("roc_auc", "average_precision"),
    # under protocol=marble the number MARBLE reports is the second one (the strategy chosen on validation; F pooled
    # over tracks), and the published columns map to it; default-protocol runs leave it empty or report both
    "giantsteps_key": ("weighted_score", "ensemble_val_select"),
    "emomusic": ("r2_valence", "r2_arousal"),
    "gtzan_beat": ("f_measure", "f_measure_pooled"),
    **{f"mtg_{subset}": ("roc_auc", "average_precision") for subset in ("top50", "genre", "moodtheme", "instrument")},
    **{task: ("accuracy",) for task in ("nsynth_instrument", "nsynth_pitch", "vocalset_technique", "vocalset_singer")},
}


@dataclass(frozen=True)
class Column:
    task: str
    metric: str

    @property
    def label(self) -> str:
        return f"{self.task} {self.metric}"


@dataclass
class Cell:
    mean: float
    std: float  # NaN with one seed
    n: int


@dataclass
class Row:
    key: RowKey
    source: str  # "ours" or the published table's label
    layer: str | None = None  # by_layer: the layer this row reports
    cells: dict[Column, Cell] = field(default_factory=dict)
    chosen_layers: dict[str, str] = field(default_factory=dict)  # task -> layer(s) selected on validation
    deltas: dict[Column, float] = field(default_factory=dict)
    checksums: set[str] = field(default_factory=set)
    average: float = math.nan
    average_tasks: int = 0

    @property
    def published(self) -> bool:
        return self.source != "ours"

    @property
    def label(self) -> str:
        name = self.key.label
        return f"{name} @ {self.layer}" if self.layer is not None else name


@dataclass
class Leaderboard:
    columns: list[Column]
    tasks: list[str]
    rows: list[Row]
    protocols: dict[str, Protocol]
    by_layer: bool
    percent: bool
    ddof: int
    n_records: int
    published: str | None = None
    delta_columns: list[Column] = field(default_factory=list)
    # rows that deviate from their named protocol's preset -> the deviating settings (no published delta for them)
    deviating_rows: dict[RowKey, dict[str, Any]] = field(default_factory=dict)
    # why rows of ours got no published delta, one line per protocol (shown in the legend)
    delta_refusals: list[str] = field(default_factory=list)

    @property
    def scale(self) -> float:
        return 100.0 if self.percent else 1.0

    def full_coverage(self, row: Row) -> bool:
        return row.average_tasks == len(self.tasks)


def task_metrics(task: str, records: Iterable[RunRecord]) -> list[str]:
    """The metric columns of a task: the field's metrics where known, else every score metric, primary first.

    For multi-target regression the per-target ``r2_<target>`` are shown and their mean ``r2`` is not (it would
    count twice in the average); a single target's ``r2_<target>`` repeats ``r2`` and is dropped instead.
    """
    if task in FIELD_METRICS:
        return list(FIELD_METRICS[task])
    names: list[str] = []
    primary = None
    for r in records:
        primary = primary or r.primary_metric
        for m in r.selected.test:
            if m not in names and m not in BOOKKEEPING_METRICS:
                names.append(m)
    per_target = [m for m in names if m.startswith("r2_")]
    if "r2" in names and per_target:
        names = [m for m in names if m != "r2"] if len(per_target) > 1 else [m for m in names if m not in per_target]
        if primary == "r2" and len(per_target) > 1:
            primary = None
    if primary in names:
        names.remove(primary)
        names.insert(0, primary)
    return names


def table_columns(records: Sequence[RunRecord], tasks: Sequence[str]) -> list[Column]:
    """Each task's metric columns, tasks in the given order."""
    columns: list[Column] = []
    for task in tasks:
        columns += [Column(task, m) for m in task_metrics(task, [r for r in records if r.task == task])]
    return columns


def chosen_layers_text(names: Sequence[str]) -> str:
    """``7`` when every seed chose layer 7; otherwise every choice with its count, the most common first."""
    counts = Counter("ws" if n == WEIGHTED_SUM else n for n in names)
    if len(counts) == 1:
        return next(iter(counts))
    ranked = sorted(counts.items(), key=lambda kv: (-kv[1], layer_sort(kv[0])))
    return ", ".join(f"{name}×{n}" for name, n in ranked)


def layer_sort(name: str) -> tuple[int, int]:
    """Sort key of a layer name: layers by index, then the weighted sum, then anything else."""
    return (1, 0) if name in ("ws", WEIGHTED_SUM) else (0, int(name)) if name.lstrip("-").isdigit() else (2, 0)


def _reported(record: RunRecord, by_layer: bool) -> list[LayerScores]:
    """The entries a record contributes: every layer with ``by_layer``, else the one selected on validation."""
    return record.layers if by_layer else [record.selected]


def records_frame(grouped: Grouped, by_layer: bool, scale: float) -> pd.DataFrame:
    """Long table: one row per (record, reported layer, metric) with its test value, scaled."""
    rows = []
    for record, key in grouped:
        for entry in _reported(record, by_layer):
            for metric, value in entry.test.items():
                if metric in BOOKKEEPING_METRICS or value is None:
                    continue
                rows.append({"protocol": key.protocol, "model": key.model, "variant": key.variant,
                             "layer": entry.name if by_layer else None, "task": record.task,
                             "metric": metric, "seed": record.seed, "value": float(value) * scale,
                             "checksum": record.protocol_checksum})
    columns = ["protocol", "model", "variant", "layer", "task", "metric", "seed", "value", "checksum"]
    return pd.DataFrame(rows, columns=columns)


def aggregate_rows(grouped: Grouped, columns: Sequence[Column], by_layer: bool, scale: float,
                   ddof: int) -> list[Row]:
    """Our rows: per row key (and layer, with ``by_layer``) the mean, std and seed count of every column, the
    protocol checksums behind it and, per task, the layer(s) its seeds chose."""
    frame = records_frame(grouped, by_layer, scale)
    wanted = {(c.task, c.metric) for c in columns}
    frame = frame.loc[np.array([(t, m) in wanted for t, m in zip(frame["task"], frame["metric"])], dtype=bool)]
    stats = (frame.groupby(["protocol", "model", "variant", "layer", "task", "metric"], dropna=False)["value"]
             .agg(mean="mean", n="count",
                  std=lambda v: float(np.std(v.dropna(), ddof=ddof)) if v.notna().sum() > ddof else math.nan)
             .reset_index())
    rows: dict[tuple, Row] = {}
    for s in stats.itertuples(index=False):
        layer = None if pd.isna(s.layer) else s.layer
        row = rows.setdefault((s.protocol, s.model, s.variant, layer),
                              Row(RowKey(s.protocol, s.model, s.variant), "ours", layer))
        row.cells[Column(s.task, s.metric)] = Cell(float(s.mean), float(s.std), int(s.n))
    for record, key in grouped:
        for entry in _reported(record, by_layer):
            row = rows.get((key.protocol, key.model, key.variant, entry.name if by_layer else None))
            if row is not None:
                row.checksums.add(record.protocol_checksum)
    if not by_layer:
        choices: dict[tuple, list[str]] = {}
        for record, key in grouped:
            choices.setdefault((key.protocol, key.model, key.variant, record.task), []).append(
                record.selected.name)
        for (p, m, v, task), names in choices.items():
            if (p, m, v, None) in rows:
                rows[(p, m, v, None)].chosen_layers[task] = chosen_layers_text(names)
    return list(rows.values())


def row_average(row: Row, columns: Sequence[Column]) -> tuple[float, int]:
    """Mean over the row's tasks of the mean over each task's metrics (a task counts once, whatever its metrics).

    A task counts only when the row has every one of its metric columns, so a task's average is never a
    different mix of metrics from one row to the next. Only higher-is-better scores enter it: an error or a loss
    averaged with accuracies means nothing, and the average column is ranked and sorted as a score.
    """
    per_task: dict[str, list[Column]] = {}
    for c in columns:
        if metric_higher_is_better(c.metric):
            per_task.setdefault(c.task, []).append(c)
    task_means = []
    for task, cols in per_task.items():
        if all(c in row.cells and not math.isnan(row.cells[c].mean) for c in cols):
            task_means.append(float(np.mean([row.cells[c].mean for c in cols])))
    return (float(np.mean(task_means)) if task_means else math.nan), len(task_means)


def sort_rows(board: Leaderboard) -> list[Row]:
    """Ours by protocol, then full task coverage first, best average first; published rows last."""
    def key(row: Row):
        avg = -row.average if not math.isnan(row.average) else math.inf
        layer = layer_sort(row.layer) if row.layer is not None else (0, 0)
        if board.by_layer:
            return (row.published, row.key.protocol, row.key.model, row.key.variant, layer)
        return (row.published, row.key.protocol, not board.full_coverage(row), avg, row.key.label)
    return sorted(board.rows, key=key)


def ranks(board: Leaderboard) -> dict[tuple[int, str], int]:
    """``{(row index, column label): 1 or 2}``: best and second best per column (ties share the rank).

    The average column ranks only rows that have every task of the table: an average over fewer tasks is not
    comparable with one over all of them.
    """
    out: dict[tuple[int, str], int] = {}
    for c in board.columns:
        values = {i: r.cells[c].mean for i, r in enumerate(board.rows) if c in r.cells}
        _rank(values, metric_higher_is_better(c.metric), c.label, out)
    averages = {i: r.average for i, r in enumerate(board.rows)
                if not math.isnan(r.average) and board.full_coverage(r)}
    _rank(averages, True, "average", out)
    return out


def metric_higher_is_better(metric: str) -> bool:
    """benchmark.metrics' direction; metrics it does not list (beat tracking's ``f_measure``, ``cmlt``, ...)
    are scores in this suite, so larger is better unless the name says loss or error."""
    try:
        return higher_is_better(metric)
    except KeyError:
        return not metric.endswith(("loss", "error"))


def _rank(values: dict[int, float], higher: bool, label: str, out: dict[tuple[int, str], int]) -> None:
    """Rank 1 and 2 of ``values`` into ``out``; NaN and infinity are no score and never ranked (records with
    such scores are refused on read: this keeps an in-memory one from being shown in bold as the best)."""
    values = {i: v for i, v in values.items() if math.isfinite(v)}
    distinct = sorted({round(v, 9) for v in values.values()}, reverse=higher)
    for i, v in values.items():
        if distinct and round(v, 9) == distinct[0]:
            out[(i, label)] = 1
        elif len(distinct) > 1 and round(v, 9) == distinct[1]:
            out[(i, label)] = 2
