"""Published reference rows (``published=marble``) and the ours-minus-published deltas.

Why: a new result means little without the paper's number beside it. The published tables are copies under
``results/reference/`` (found through :func:`benchmark.resources.reference_dir`, with a README giving citation and
protocol); their rows are marked as published, never ranked into ours, and a delta column appears for each metric
where we measured the same model and task.
"""
from __future__ import annotations

import logging
import math
from pathlib import Path
from typing import Any

import pandas as pd

from benchmark.leaderboard.grouping import RowKey
from benchmark.record import DEFAULT_PROTOCOL
from benchmark.leaderboard.table import FIELD_METRICS, Cell, Column, Leaderboard, Row
from benchmark.resources import reference_dir as _reference_dir

log = logging.getLogger(__name__)

REFERENCE_DIR = _reference_dir()

# Published reference tables: (task, metric) -> column of the CSV, and our model names -> the CSV's.
PUBLISHED: dict[str, dict[str, Any]] = {
    "marble": {
        "file": "marble_published.csv",
        "label": "MARBLE (published)",
        "columns": {
            ("gtzan", "accuracy"): "gtzan_acc",
            ("mtt", "roc_auc"): "mtt_roc_auc",
            ("mtt", "average_precision"): "mtt_ap",
            ("giantsteps_key", "ensemble_val_select"): "giantsteps_key_weighted",
            ("emomusic", "r2_valence"): "emo_r2_valence",
            ("emomusic", "r2_arousal"): "emo_r2_arousal",
            ("gtzan_beat", "f_measure_pooled"): "gtzan_beat_f1",
            ("nsynth_instrument", "accuracy"): "nsynth_instrument_acc",
            ("nsynth_pitch", "accuracy"): "nsynth_pitch_acc",
            ("vocalset_technique", "accuracy"): "vocalset_technique_acc",
            ("vocalset_singer", "accuracy"): "vocalset_singer_acc",
            **{(f"mtg_{subset}", metric): f"mtg_{subset}_{column}"
               for subset in ("instrument", "moodtheme", "genre", "top50")
               for metric, column in (("roc_auc", "roc_auc"), ("average_precision", "ap"))},
        },
        "models": {
            "mert-v1-95m": "MERT-v1-95M",
            "mert-v1-330m": "MERT-v1-330M",
            "mert-v0": "MERT-v0",
            "mert-v0-public": "MERT-v0-public",
            "music2vec-v1": "music2vec-v1",
        },
        "scale": 100.0,  # the CSV holds percentages
    },
}


def check_published(name: str) -> None:
    if name not in PUBLISHED:
        raise ValueError(f"unknown published table {name!r}; known: {', '.join(PUBLISHED)}")


def read_published(name: str, reference_dir: Path | str | None = None) -> pd.DataFrame:
    """The published table ``name`` (e.g. ``marble``) from the reference folder, indexed by model name."""
    check_published(name)
    path = Path(reference_dir or REFERENCE_DIR) / PUBLISHED[name]["file"]
    if not path.is_file():
        raise FileNotFoundError(f"published table {path} not found (results/reference/ holds the copies and "
                                f"their README with citation and protocol)")
    return pd.read_csv(path).set_index("model")


def add_published(board: Leaderboard, name: str, reference_dir: Path | str | None, tasks_given: bool) -> None:
    """Add the published rows (values in the table's columns only) and the ours-minus-published deltas.

    When tasks were named, a named task the paper reports gets its columns even without a record of ours, so
    ``tasks=[gtzan,mtt] published=marble`` shows the paper's numbers next to whatever we have.
    """
    spec = PUBLISHED[name]
    table = read_published(name, reference_dir)
    if tasks_given:
        _add_named_task_columns(board, spec)
    mapped = [c for c in board.columns if (c.task, c.metric) in spec["columns"]]
    if not mapped:
        log.warning("published table %s reports none of the tasks in this table", name)
    back = {v: k for k, v in spec["models"].items()}
    factor = board.scale / spec["scale"]  # the CSV is in percent
    published_rows: dict[str, Row] = {}
    for model_name, values in table.iterrows():
        ours = back.get(str(model_name), str(model_name))
        row = Row(RowKey(spec["label"], ours), spec["label"])
        for c in mapped:
            v = values.get(spec["columns"][(c.task, c.metric)])
            if v is not None and not pd.isna(v):
                row.cells[c] = Cell(float(v) * factor, math.nan, 0)
        if row.cells:
            board.rows.append(row)
            published_rows[ours] = row
    board.published = spec["label"]
    _add_deltas(board, published_rows, PUBLISHED_PROTOCOL[name])


def _add_named_task_columns(board: Leaderboard, spec: dict[str, Any]) -> None:
    """The field's columns of every named task the paper reports, in the table's task order."""
    present = set(board.columns)
    for task in board.tasks:
        for metric in FIELD_METRICS.get(task, ()):
            col = Column(task, metric)
            if col not in present and (task, metric) in spec["columns"]:
                board.columns.append(col)
    order = {t: i for i, t in enumerate(board.tasks)}
    board.columns.sort(key=lambda c: order[c.task])  # stable: keeps metric order within a task


# The protocol a published table's numbers were made with: only rows of ours made with it get a delta.
PUBLISHED_PROTOCOL = {"marble": "marble"}


def delta_refusal(board: Leaderboard, row: Row, protocol: str) -> str | None:
    """Why ``row`` gets no delta against a table made with ``protocol`` (None when it may be compared).

    Why: a delta against a published number claims "same recipe, different result". A run of this suite's own
    protocol (layer and learning rate selected on validation, features z-scored, ...) or one that overrode a
    setting of the published recipe differs by construction, often by points; it is shown without a delta."""
    p = board.protocols.get(row.key.protocol)
    name = p.name if p is not None else DEFAULT_PROTOCOL
    if name != protocol:
        return (f"{row.key.protocol}: protocol {name}, not {protocol}; published numbers are compared only with "
                f"runs made with protocol={protocol} (README 'Two protocols')")
    deviating = board.deviating_rows.get(row.key)
    if deviating:
        shown = ", ".join(f"{k}={v}" for k, v in sorted(deviating.items()))
        return f"{row.label} ({row.key.protocol}): protocol={protocol} with settings changed from it: {shown}"
    return None


def _add_deltas(board: Leaderboard, published_rows: dict[str, Row], protocol: str) -> None:
    """Ours minus published for every cell of ours whose model and column the paper reports, on rows made with
    the table's protocol and none of its settings changed; every other row is named with the reason."""
    delta_cols: set[Column] = set()
    refusals: dict[str, None] = {}
    for row in board.rows:
        if row.published or row.key.model not in published_rows:
            continue
        reason = delta_refusal(board, row, protocol)
        if reason is not None:
            refusals[reason] = None
            continue
        ref = published_rows[row.key.model]
        for c, cell in row.cells.items():
            if c in ref.cells:
                row.deltas[c] = cell.mean - ref.cells[c].mean
                delta_cols.add(c)
    board.delta_columns = [c for c in board.columns if c in delta_cols]
    board.delta_refusals = [f"No Δ for {reason}." for reason in refusals]
