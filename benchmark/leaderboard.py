"""Leaderboards from run records: mean ± std over seeds per model and task metric, in four formats.

Every number comes from the JSON run records the runner writes (``<results_dir>/runs/**.json``); nothing is
typed in by hand, so ``results/leaderboard.md`` can always be regenerated and checked against the records.

Rules (the ones a reader of a paper table needs to trust it):

- A cell is the *test* score of the layer selected on *validation* (or, with ``by_layer``, of one given layer),
  as a mean over seeds ± the **sample** standard deviation (``ddof=1``; one seed shows no spread) with the seed
  count: ``74.8 ± 1.0 (3)``. Scores are shown in percent, the scale the published tables use.
- Seeds are only averaged within one ``protocol_checksum`` (the run's full config minus seed and file locations):
  runs made with other probe / trainer / model / task settings are never mixed. Rows carry a protocol id; the
  settings that tell the protocols apart are named under the table.
- The average column averages a task's metrics first, then the tasks (so a task with two metrics weighs as much
  as a task with one), over the tasks the row has; a row with fewer tasks than the table is marked.
- ``published=marble`` adds the MARBLE paper's rows (``results/reference/``), marked as published, and a delta
  column (ours minus published) for each metric the paper reports where we measured the same model and task.
"""
from __future__ import annotations

import csv
import functools
import io
import json
import logging
import math
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Iterable, Sequence

import numpy as np
import pandas as pd

from benchmark.cache import config_checksum
from benchmark.metrics import higher_is_better
from benchmark.record import protocol_fields
from benchmark.resources import config_dir, reference_dir

log = logging.getLogger(__name__)

REFERENCE_DIR = reference_dir()
REQUIRED_KEYS = ("task", "model", "seed", "selected", "layers", "protocol_checksum")
WEIGHTED_SUM = "weighted_sum"

# Metrics that are bookkeeping, not scores (how many tags a split could score): never tabulated.
BOOKKEEPING_METRICS = frozenset({"tags_scored"})

# The metrics the field reports per task, in its order. Other tasks show every score metric of their records.
FIELD_METRICS: dict[str, tuple[str, ...]] = {
    "gtzan": ("accuracy",),
    "mtt": ("roc_auc", "average_precision"),
    "giantsteps_key": ("weighted_score",),
    "emomusic": ("r2_valence", "r2_arousal"),
    "gtzan_beat": ("f_measure",),
}

# Published reference tables: (task, metric) -> column of the CSV, and our model names -> the CSV's.
PUBLISHED: dict[str, dict[str, Any]] = {
    "marble": {
        "file": "marble_published.csv",
        "label": "MARBLE (published)",
        "columns": {
            ("gtzan", "accuracy"): "gtzan_acc",
            ("mtt", "roc_auc"): "mtt_roc_auc",
            ("mtt", "average_precision"): "mtt_ap",
            ("giantsteps_key", "weighted_score"): "giantsteps_key_weighted",
            ("emomusic", "r2_valence"): "emo_r2_valence",
            ("emomusic", "r2_arousal"): "emo_r2_arousal",
            ("gtzan_beat", "f_measure"): "gtzan_beat_f1",
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


# ----------------------------------------------------------------------------------------------------------------
# Reading and grouping records


def flatten(value: Any, prefix: str = "") -> dict[str, Any]:
    """``{"probe": {"lr": [1e-3]}}`` -> ``{"probe.lr": "[0.001]"}``: comparable, printable settings."""
    if isinstance(value, dict):
        out: dict[str, Any] = {}
        for k, v in value.items():
            out.update(flatten(v, f"{prefix}{k}."))
        return out
    key = prefix[:-1]
    return {key: json.dumps(value) if isinstance(value, (list, tuple)) else value}


def load_records(folder: Path | str) -> list[dict[str, Any]]:
    """Every run record under ``folder`` (searched recursively); other JSON files are ignored with a warning.

    Each record gets ``_path``. The same run found twice (a copied folder: same protocol checksum, model, task and
    seed) is kept once, the most recently created, so that a backup copy cannot double a seed's weight.
    """
    folder = Path(folder)
    found: dict[tuple, dict[str, Any]] = {}
    ignored = 0
    for path in sorted(folder.rglob("*.json")):
        try:
            record = json.loads(path.read_text())
        except (OSError, json.JSONDecodeError):
            ignored += 1
            continue
        if not isinstance(record, dict) or any(k not in record for k in REQUIRED_KEYS):
            ignored += 1
            continue
        record["_path"] = str(path)
        key = (record["protocol_checksum"], record["model"], record["task"], int(record["seed"]))
        if key not in found or str(record.get("created", "")) > str(found[key].get("created", "")):
            found[key] = record
    if ignored:
        log.warning("ignored %d JSON file(s) under %s that are not run records", ignored, folder)
    return list(found.values())


def shared_settings(record: dict[str, Any]) -> dict[str, Any]:
    """The settings every task and model of one protocol share: the config minus task, model, seed, locations."""
    config = record.get("config")
    if not isinstance(config, dict):
        return {"protocol_checksum": record["protocol_checksum"]}
    return flatten({k: v for k, v in protocol_fields(config).items() if k not in ("task", "model", "seed")})


@dataclass(frozen=True)
class RowKey:
    """Which leaderboard row a record belongs to: same protocol, same model, same model/task variant."""

    protocol: str
    model: str
    variant: str = ""

    @property
    def label(self) -> str:
        return f"{self.model} [{self.variant}]" if self.variant else self.model


@dataclass
class Protocol:
    """A protocol group: records whose shared settings (probe, trainer, layers, ...) are identical."""

    id: str
    settings: dict[str, Any]
    differing: dict[str, Any] = field(default_factory=dict)  # the settings where it differs from other groups
    records: int = 0

    def describe(self) -> str:
        shown = self.differing or {k: self.settings[k] for k in SUMMARY_KEYS if k in self.settings}
        return ", ".join(f"{k}={_show(v)}" for k, v in shown.items())


SUMMARY_KEYS = ("probe.name", "probe.hidden", "probe.lr", "trainer.max_epochs", "trainer.patience", "layers")
_ABSENT = "(absent)"


def _show(value: Any) -> str:
    return "null" if value is None else str(value)


@dataclass
class Grouped:
    """Records with their row keys and the protocol groups they fall in."""

    records: list[dict[str, Any]]
    keys: list[RowKey]
    protocols: dict[str, Protocol]

    def __iter__(self):
        return iter(zip(self.records, self.keys))


def group_records(records: Sequence[dict[str, Any]]) -> Grouped:
    """Assign every record a protocol id and a row key so that no row mixes two protocol checksums in a task.

    Protocol ids (``P1``, ``P2``, ... by number of records) group the settings shared by all tasks and models.
    Inside a protocol, model settings that differ between a model's records (``model.dtype``) and task settings
    that differ between a model's records of one task (``task.window_seconds``) become the row's variant label.
    Should a cell still hold two checksums, the checksum itself is added to the variant: never averaged.
    """
    shared = [shared_settings(r) for r in records]
    shared_ids = [config_checksum(s) for s in shared]
    counts = Counter(shared_ids)
    first_seen = {}
    for sid, r in zip(shared_ids, records):
        first_seen[sid] = min(first_seen.get(sid, "~"), str(r.get("created", "")))
    order = sorted(counts, key=lambda s: (-counts[s], first_seen[s], s))
    protocols: dict[str, Protocol] = {}
    id_of: dict[str, str] = {}
    for i, sid in enumerate(order, 1):
        id_of[sid] = f"P{i}"
        settings = next(s for s, x in zip(shared, shared_ids) if x == sid)
        protocols[f"P{i}"] = Protocol(f"P{i}", settings, records=counts[sid])
    if len(protocols) > 1:
        keys = sorted({k for p in protocols.values() for k in p.settings})
        varying = [k for k in keys if len({json.dumps(p.settings.get(k, _ABSENT), default=str)
                                           for p in protocols.values()}) > 1]
        for p in protocols.values():
            p.differing = {k: p.settings.get(k, _ABSENT) for k in varying}

    proto = [id_of[s] for s in shared_ids]
    flat_model = [flatten(r.get("config", {}).get("model", {}), "model.") for r in records]
    flat_task = [flatten(r.get("config", {}).get("task", {}), "task.") for r in records]

    def varying_keys(indices: list[int], flats: list[dict[str, Any]]) -> list[str]:
        keys = sorted({k for i in indices for k in flats[i]})
        return [k for k in keys if len({json.dumps(flats[i].get(k, _ABSENT), default=str) for i in indices}) > 1]

    by_model: dict[tuple[str, str], list[int]] = {}
    by_model_task: dict[tuple[str, str, str], list[int]] = {}
    for i, r in enumerate(records):
        by_model.setdefault((proto[i], r["model"]), []).append(i)
        by_model_task.setdefault((proto[i], r["model"], r["task"]), []).append(i)
    variant_parts: list[list[str]] = [[] for _ in records]
    for indices in by_model.values():
        for k in varying_keys(indices, flat_model):
            for i in indices:
                _label_setting(variant_parts[i], k, flat_model[i], "model")
    for indices in by_model_task.values():
        for k in varying_keys(indices, flat_task):
            for i in indices:
                _label_setting(variant_parts[i], k, flat_task[i], "task")
    keys = [RowKey(proto[i], r["model"], ", ".join(variant_parts[i])) for i, r in enumerate(records)]

    cell_checksums: dict[tuple[RowKey, str], set[str]] = {}
    for key, r in zip(keys, records):
        cell_checksums.setdefault((key, r["task"]), set()).add(r["protocol_checksum"])
    for i, (key, r) in enumerate(zip(keys, records)):
        if len(cell_checksums[(key, r["task"])]) > 1:
            extra = f"protocol {r['protocol_checksum'][:8]}"
            keys[i] = RowKey(key.protocol, key.model, f"{key.variant}, {extra}" if key.variant else extra)
    return Grouped(list(records), keys, protocols)


@functools.lru_cache(maxsize=256)
def config_defaults(group: str, name: Any) -> dict[str, Any] | None:
    """The flattened defaults of ``configs/<group>/<name>.yaml`` (None when this checkout has no such file)."""
    from omegaconf import OmegaConf

    path = config_dir() / group / f"{name}.yaml"
    if not isinstance(name, str) or not path.is_file():
        return None
    return flatten(OmegaConf.to_container(OmegaConf.load(path), resolve=True), f"{group}.")


def _label_setting(parts: list[str], key: str, flat: dict[str, Any], group: str) -> None:
    """Name a varying setting in a record's variant, unless the record has the config file's default for it.

    So the runs made with the defaults stay in the model's plain row (next to its other tasks) and only the
    runs with an overridden setting (``task.window_seconds=10``) get a row of their own.
    """
    value = flat.get(key, _ABSENT)
    defaults = config_defaults(group, flat.get(f"{group}.name"))
    if defaults is not None and key in defaults and json.dumps(defaults[key], default=str) == json.dumps(
            value, default=str):
        return
    parts.append(f"{key}={_show(value)}")


def task_metrics(task: str, records: Iterable[dict[str, Any]]) -> list[str]:
    """The metric columns of a task: the field's metrics where known, else every score metric, primary first.

    For multi-target regression the per-target ``r2_<target>`` are shown and their mean ``r2`` is not (it would
    count twice in the average); a single target's ``r2_<target>`` repeats ``r2`` and is dropped instead.
    """
    if task in FIELD_METRICS:
        return list(FIELD_METRICS[task])
    names: list[str] = []
    primary = None
    for r in records:
        primary = primary or r.get("primary_metric")
        for m in r["selected"]["test"]:
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


# ----------------------------------------------------------------------------------------------------------------
# The table


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

    @property
    def scale(self) -> float:
        return 100.0 if self.percent else 1.0

    def full_coverage(self, row: Row) -> bool:
        return row.average_tasks == len(self.tasks)


def layer_name(row: dict[str, Any]) -> str:
    return WEIGHTED_SUM if row.get("layer") is None else str(row["layer"])


def chosen_layers_text(names: Sequence[str]) -> str:
    """``7`` when every seed chose layer 7; otherwise every choice with its count, the most common first."""
    counts = Counter("ws" if n == WEIGHTED_SUM else n for n in names)
    if len(counts) == 1:
        return next(iter(counts))
    ranked = sorted(counts.items(), key=lambda kv: (-kv[1], _layer_sort(kv[0])))
    return ", ".join(f"{name}×{n}" for name, n in ranked)


def _layer_sort(name: str) -> tuple[int, int]:
    return (1, 0) if name in ("ws", WEIGHTED_SUM) else (0, int(name)) if name.lstrip("-").isdigit() else (2, 0)


def records_frame(grouped: Grouped, by_layer: bool, scale: float) -> pd.DataFrame:
    """Long table: one row per (record, reported layer, metric) with its test value, scaled."""
    rows = []
    for record, key in grouped:
        entries = record["layers"] if by_layer else [record["selected"]]
        for entry in entries:
            for metric, value in entry["test"].items():
                if metric in BOOKKEEPING_METRICS or value is None:
                    continue
                rows.append({"protocol": key.protocol, "model": key.model, "variant": key.variant,
                             "layer": layer_name(entry) if by_layer else None, "task": record["task"],
                             "metric": metric, "seed": int(record["seed"]), "value": float(value) * scale,
                             "checksum": record["protocol_checksum"]})
    columns = ["protocol", "model", "variant", "layer", "task", "metric", "seed", "value", "checksum"]
    return pd.DataFrame(rows, columns=columns)


def build_leaderboard(records: Sequence[dict[str, Any]], tasks: Sequence[str] | None = None,
                      models: Sequence[str] | None = None, by_layer: bool = False, published: str | None = None,
                      percent: bool = True, ddof: int = 1, reference_dir: Path | str | None = None) -> Leaderboard:
    """Aggregate run records into a :class:`Leaderboard` (see the module docstring for the rules)."""
    if published and published not in PUBLISHED:
        raise ValueError(f"unknown published table {published!r}; known: {', '.join(PUBLISHED)}")
    records = [r for r in records if (not tasks or r["task"] in tasks) and (not models or r["model"] in models)]
    grouped = group_records(records)
    scale = 100.0 if percent else 1.0
    task_order = list(tasks) if tasks else sorted({r["task"] for r in records})
    columns: list[Column] = []
    for task in task_order:
        columns += [Column(task, m) for m in task_metrics(task, [r for r in records if r["task"] == task])]

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
        if by_layer:
            for entry in record["layers"]:
                row = rows.get((key.protocol, key.model, key.variant, layer_name(entry)))
                if row is not None:
                    row.checksums.add(record["protocol_checksum"])
            continue
        row = rows.get((key.protocol, key.model, key.variant, None))
        if row is not None:
            row.checksums.add(record["protocol_checksum"])
    if not by_layer:
        choices: dict[tuple, list[str]] = {}
        for record, key in grouped:
            choices.setdefault((key.protocol, key.model, key.variant, record["task"]), []).append(
                layer_name(record["selected"]))
        for (p, m, v, task), names in choices.items():
            if (p, m, v, None) in rows:
                rows[(p, m, v, None)].chosen_layers[task] = chosen_layers_text(names)

    ours = list(rows.values())
    board = Leaderboard(columns, task_order, ours, grouped.protocols, by_layer, percent, ddof, len(records))
    if published:
        add_published(board, published, reference_dir, tasks_given=bool(tasks))
    for row in board.rows:
        row.average, row.average_tasks = row_average(row, board.columns)
    board.rows = sort_rows(board)
    return board


def row_average(row: Row, columns: Sequence[Column]) -> tuple[float, int]:
    """Mean over the row's tasks of the mean over each task's metrics (a task counts once, whatever its metrics).

    A task counts only when the row has every one of its metric columns, so a task's average is never a
    different mix of metrics from one row to the next.
    """
    per_task: dict[str, list[Column]] = {}
    for c in columns:
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
        layer = _layer_sort(row.layer) if row.layer is not None else (0, 0)
        if board.by_layer:
            return (row.published, row.key.protocol, row.key.model, row.key.variant, layer)
        return (row.published, row.key.protocol, not board.full_coverage(row), avg, row.key.label)
    return sorted(board.rows, key=key)


# ----------------------------------------------------------------------------------------------------------------
# Published rows


def read_published(name: str, reference_dir: Path | str | None = None) -> pd.DataFrame:
    """The published table ``name`` (e.g. ``marble``) from the reference folder, indexed by model name."""
    if name not in PUBLISHED:
        raise ValueError(f"unknown published table {name!r}; known: {', '.join(PUBLISHED)}")
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
        present = set(board.columns)
        for task in board.tasks:
            for metric in FIELD_METRICS.get(task, ()):
                col = Column(task, metric)
                if col not in present and (task, metric) in spec["columns"]:
                    board.columns.append(col)
        order = {t: i for i, t in enumerate(board.tasks)}
        board.columns.sort(key=lambda c: order[c.task])  # stable: keeps metric order within a task
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
    delta_cols: set[Column] = set()
    for row in board.rows:
        if row.published or row.key.model not in published_rows:
            continue
        ref = published_rows[row.key.model]
        for c, cell in row.cells.items():
            if c in ref.cells:
                row.deltas[c] = cell.mean - ref.cells[c].mean
                delta_cols.add(c)
    board.delta_columns = [c for c in board.columns if c in delta_cols]


# ----------------------------------------------------------------------------------------------------------------
# Ranking and text


def ranks(board: Leaderboard) -> dict[tuple[int, str], int]:
    """``{(row index, column label): 1 or 2}``: best and second best per column (ties share the rank).

    The average column ranks only rows that have every task of the table: an average over fewer tasks is not
    comparable with one over all of them.
    """
    out: dict[tuple[int, str], int] = {}
    for c in board.columns:
        values = {i: r.cells[c].mean for i, r in enumerate(board.rows) if c in r.cells}
        _rank(values, _higher_is_better(c.metric), c.label, out)
    averages = {i: r.average for i, r in enumerate(board.rows)
                if not math.isnan(r.average) and board.full_coverage(r)}
    _rank(averages, True, "average", out)
    return out


def _higher_is_better(metric: str) -> bool:
    """benchmark.metrics' direction; metrics it does not list (beat tracking's ``f_measure``, ``cmlt``, ...)
    are scores in this suite, so larger is better unless the name says loss or error."""
    try:
        return higher_is_better(metric)
    except KeyError:
        return not metric.endswith(("loss", "error"))


def _rank(values: dict[int, float], higher: bool, label: str, out: dict[tuple[int, str], int]) -> None:
    distinct = sorted({round(v, 9) for v in values.values() if not math.isnan(v)}, reverse=higher)
    for i, v in values.items():
        if distinct and round(v, 9) == distinct[0]:
            out[(i, label)] = 1
        elif len(distinct) > 1 and round(v, 9) == distinct[1]:
            out[(i, label)] = 2


def fmt_number(value: float, decimals: int) -> str:
    return "" if value is None or math.isnan(value) else f"{value:.{decimals}f}"


def cell_parts(cell: Cell | None, decimals: int) -> tuple[str, str, str]:
    """(mean, spread, count) strings of a cell; published cells have neither spread nor count."""
    if cell is None:
        return "", "", ""
    spread = fmt_number(cell.std, decimals) if cell.n > 1 else ""
    return fmt_number(cell.mean, decimals), spread, str(cell.n) if cell.n else ""


def cell_text(cell: Cell | None, decimals: int, pm: str = "±") -> str:
    mean, spread, n = cell_parts(cell, decimals)
    if not mean:
        return ""
    text = mean + (f" {pm} {spread}" if spread else "")
    return text + (f" ({n})" if n else "")


def delta_text(value: float | None, decimals: int) -> str:
    return "" if value is None or math.isnan(value) else f"{value:+.{decimals}f}"


def default_decimals(board: Leaderboard) -> int:
    return 1 if board.percent else 3


def average_text(board: Leaderboard, row: Row, decimals: int, mark: str = "†") -> str:
    if math.isnan(row.average):
        return ""
    return fmt_number(row.average, decimals) + ("" if board.full_coverage(row) else mark)


def header_columns(board: Leaderboard) -> list[tuple[str, str, Column | None]]:
    """The table's value columns in order: (kind, label, column) with kind in metric / delta / layer."""
    out: list[tuple[str, str, Column | None]] = []
    for task in board.tasks:
        cols = [c for c in board.columns if c.task == task]
        for c in cols:
            out.append(("metric", c.label, c))
            if c in board.delta_columns:
                out.append(("delta", f"{c.label} Δ", c))
        if not board.by_layer and any(task in r.chosen_layers for r in board.rows):
            out.append(("layer", f"{task} layer", None))
    return out


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
                     "Δ = ours minus published, same model and task.")
    return lines


def row_fields(board: Leaderboard, row: Row) -> list[str]:
    fields = [row.label, row.key.protocol if not row.published else "-"]
    return fields + ([row.source] if board.published else [])


def lead_headers(board: Leaderboard) -> list[str]:
    return ["model", "protocol"] + (["source"] if board.published else [])


def render_markdown(board: Leaderboard, command: str, decimals: int | None = None,
                    source: str = "results/") -> str:
    """A Markdown page: a generated-by line, the table (best per column in bold) and the legend."""
    d = default_decimals(board) if decimals is None else decimals
    rank = ranks(board)
    cols = header_columns(board)
    headers = lead_headers(board) + [label for _, label, _ in cols] + ["average"]
    lines = [f"_Generated by `{command}` on {_now()} from {board.n_records} run record(s) under `{source}`; "
             "do not edit by hand._", "", "| " + " | ".join(_md(h) for h in headers) + " |",
             "|" + "|".join(["---"] * len(lead_headers(board)) + ["---:"] * (len(cols) + 1)) + "|"]
    for i, row in enumerate(board.rows):
        values = []
        for kind, label, c in cols:
            if kind == "metric":
                text = cell_text(row.cells.get(c), d)
                values.append(f"**{text}**" if text and rank.get((i, c.label)) == 1 else text)
            elif kind == "delta":
                values.append(delta_text(row.deltas.get(c), d))
            else:
                values.append(row.chosen_layers.get(label[: -len(" layer")], ""))
        avg = average_text(board, row, d)
        values.append(f"**{avg}**" if avg and rank.get((i, "average")) == 1 else avg)
        lines.append("| " + " | ".join(_md(v) for v in row_fields(board, row) + values) + " |")
    lines += [""] + [f"- {n}" for n in notes(board)]
    return "\n".join(lines) + "\n"


def _md(text: str) -> str:
    return str(text).replace("|", "\\|")


def render_csv(board: Leaderboard) -> str:
    """Machine-readable numbers: per metric column its mean, std, n (and delta); per task the chosen layer."""
    headers = ["model", "variant", "layer", "protocol", "source", "checksums"]
    cols = header_columns(board)
    for kind, label, c in cols:
        if kind == "metric":
            headers += [f"{c.task}/{c.metric}", f"{c.task}/{c.metric}/std", f"{c.task}/{c.metric}/n"]
        elif kind == "delta":
            headers.append(f"{c.task}/{c.metric}/delta")
        else:
            headers.append(label.replace(" layer", "/layer"))
    headers += ["average", "average_tasks"]
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(headers)
    for row in board.rows:
        values: list[Any] = [row.key.model, row.key.variant, row.layer or "", row.key.protocol, row.source,
                             ";".join(sorted(row.checksums))]
        for kind, label, c in cols:
            if kind == "metric":
                cell = row.cells.get(c)
                values += ["", "", ""] if cell is None else [
                    repr(cell.mean), "" if math.isnan(cell.std) else repr(cell.std), cell.n or ""]
            elif kind == "delta":
                v = row.deltas.get(c)
                values.append("" if v is None else repr(v))
            else:
                values.append(row.chosen_layers.get(label[: -len(" layer")], ""))
        values += ["" if math.isnan(row.average) else repr(row.average), row.average_tasks]
        writer.writerow(values)
    return out.getvalue()


LATEX_SPECIAL = {"\\": r"\textbackslash{}", "&": r"\&", "%": r"\%", "$": r"\$", "#": r"\#", "_": r"\_",
                 "{": r"\{", "}": r"\}", "~": r"\textasciitilde{}", "^": r"\textasciicircum{}"}


def latex_escape(text: str) -> str:
    escaped = "".join(LATEX_SPECIAL.get(ch, ch) for ch in str(text))
    return escaped.replace("×", r"$\times$").replace("†", r"$^\dagger$")


def render_latex(board: Leaderboard, command: str, decimals: int | None = None) -> str:
    """A booktabs ``tabular``: tasks as column groups, best per column bold, second underlined, names escaped."""
    d = default_decimals(board) if decimals is None else decimals
    rank = ranks(board)
    cols = header_columns(board)
    lead = lead_headers(board)
    spec = "l" * len(lead) + "".join("r" if kind != "layer" else "c" for kind, _, _ in cols) + "r"
    ncols = len(lead) + len(cols) + 1
    lines = [f"% Generated by `{command}` on {_now()}; do not edit by hand. Needs \\usepackage{{booktabs}}.",
             *[f"% {n}" for n in notes(board)],
             f"\\begin{{tabular}}{{{spec}}}", r"\toprule"]
    group_cells, rules, sub = [""] * len(lead), [], [latex_escape(h.capitalize()) for h in lead]
    start = len(lead) + 1
    for task in board.tasks:
        width = sum(1 for kind, label, c in cols if (c is not None and c.task == task) or
                    (kind == "layer" and label == f"{task} layer"))
        if not width:
            continue
        group_cells.append(f"\\multicolumn{{{width}}}{{c}}{{{latex_escape(task)}}}")
        rules.append(f"\\cmidrule(lr){{{start}-{start + width - 1}}}")
        start += width
    for kind, label, c in cols:
        sub.append(latex_escape(c.metric) if kind == "metric" else r"$\Delta$" if kind == "delta" else "layer")
    group_cells.append("")
    sub.append("Avg.")
    lines += [" & ".join(group_cells) + r" \\", " ".join(rules), " & ".join(sub) + r" \\", r"\midrule"]
    previous_published = False
    for i, row in enumerate(board.rows):
        if row.published and not previous_published and i > 0:
            lines.append(r"\midrule")
        previous_published = row.published
        values = [latex_escape(v) for v in row_fields(board, row)]
        for kind, label, c in cols:
            if kind == "metric":
                values.append(_latex_cell(row.cells.get(c), d, rank.get((i, c.label))))
            elif kind == "delta":
                values.append(latex_escape(delta_text(row.deltas.get(c), d)).replace("-", "$-$", 1)
                              if c in row.deltas else "")
            else:
                values.append(latex_escape(row.chosen_layers.get(label[: -len(" layer")], "")))
        avg = average_text(board, row, d, mark="")
        if avg:
            avg = _emphasis(avg, rank.get((i, "average"))) + ("" if board.full_coverage(row) else r"$^\dagger$")
        values.append(avg)
        lines.append(" & ".join(values) + r" \\")
    lines.append(r"\bottomrule")
    if any(not math.isnan(r.average) and not board.full_coverage(r) for r in board.rows):
        lines.append(f"\\multicolumn{{{ncols}}}{{l}}{{\\footnotesize $^\\dagger$ average over fewer tasks "
                     r"than the table has.} \\")
    lines.append(r"\end{tabular}")
    return "\n".join(lines) + "\n"


def _emphasis(text: str, rank: int | None) -> str:
    return f"\\textbf{{{text}}}" if rank == 1 else f"\\underline{{{text}}}" if rank == 2 else text


def _latex_cell(cell: Cell | None, decimals: int, rank: int | None) -> str:
    mean, spread, n = cell_parts(cell, decimals)
    if not mean:
        return ""
    text = _emphasis(mean, rank)
    if spread:
        text += f" $\\pm$ {spread}"
    return text + (f" ({n})" if n else "")


def render_terminal(board: Leaderboard, console, decimals: int | None = None) -> None:
    """A rich table on the console: best per column bold, second underlined, the legend as its caption."""
    from rich.table import Table

    d = default_decimals(board) if decimals is None else decimals
    rank = ranks(board)
    cols = header_columns(board)
    table = Table(title="Leaderboard", caption="\n".join(notes(board)), caption_justify="left")
    for h in lead_headers(board):
        table.add_column(h, no_wrap=True)
    for kind, label, _ in cols:
        table.add_column(label, justify="right" if kind != "layer" else "center")
    table.add_column("average", justify="right")
    for i, row in enumerate(board.rows):
        values = []
        for kind, label, c in cols:
            if kind == "metric":
                values.append(_rich(cell_text(row.cells.get(c), d), rank.get((i, c.label))))
            elif kind == "delta":
                values.append(delta_text(row.deltas.get(c), d))
            else:
                values.append(row.chosen_layers.get(label[: -len(" layer")], ""))
        values.append(_rich(average_text(board, row, d), rank.get((i, "average"))))
        table.add_row(*row_fields(board, row), *values, style="italic" if row.published else None)
    console.print(table)


def _rich(text: str, rank: int | None) -> str:
    from rich.markup import escape

    text = escape(text)
    return f"[bold]{text}[/]" if rank == 1 and text else f"[underline]{text}[/]" if rank == 2 and text else text


def _now() -> str:
    return datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")


# ----------------------------------------------------------------------------------------------------------------
# The command


FORMATS = ("terminal", "markdown", "csv", "latex")


def _as_list(value: Any) -> list[str] | None:
    if value in (None, "", "all"):
        return None
    if isinstance(value, (list, tuple)):
        return [str(v) for v in value]
    return [s.strip() for s in str(value).split(",") if s.strip()]


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
    results_dir = Path(config.get("results_dir") or "results")
    source = Path(config.get("records") or results_dir)
    if not source.exists():
        raise FileNotFoundError(f"no results folder {source}: run `python -m benchmark run ...` first")
    records = load_records(source)
    published = config.get("published") or None
    board = build_leaderboard(records, tasks=_as_list(config.get("tasks")), models=_as_list(config.get("models")),
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
        console.print(f"wrote {written}")
    return written


def _display(path: Path) -> str:
    try:
        return str(path.resolve().relative_to(Path.cwd().resolve())) + "/"
    except ValueError:
        return str(path) + "/"


def _write(path: Path, text: str) -> None:
    from benchmark.cache import atomic_write_text

    atomic_write_text(path, text)
