"""The per-layer table a run prints, from the run's own rows or from a record that is already on disk.

A run that is skipped because its record exists prints that record's table (with where it came from and how to
rerun), so the first thing a user sees is a result, not a silent skip.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.markup import escape
from rich.table import Table

from benchmark.sweep import LayerRow


def print_table(console: Console, task: str, model: str, primary: str, rows: list[LayerRow], selected: LayerRow,
                chance: float) -> None:
    """Validation and test score of every layer's best learning rate, the selected row in bold."""
    table = Table(title=f"{task} / {model}: {primary} per layer (selection on validation)")
    for col in ("layer", "lr", "epoch", f"valid {primary}", f"test {primary}", ""):
        table.add_column(col, justify="right")
    for row in rows:
        mark = "<- selected" if row is selected else ""
        table.add_row(row.name, f"{row.lr:g}", str(row.best_epoch), f"{row.valid[primary]:.4f}",
                      f"{row.test[primary]:.4f}", mark, style="bold" if row is selected else None)
    console.print(table)
    console.print(f"selected: layer {selected.name} (valid {selected.valid[primary]:.4f}) -> "
                  f"test {primary} {selected.test[primary]:.4f}; chance level {chance:.4f}")


def _layer_row(d: dict[str, Any]) -> LayerRow:
    return LayerRow(layer=None if d["layer"] is None else int(d["layer"]), lr=float(d["lr"]),
                    best_epoch=int(d["best_epoch"]), valid=dict(d["valid"]), test=dict(d["test"]))


def print_existing_record(console: Console, path: Path, table: bool = True) -> None:
    """Say that ``path`` already holds this run, show its table (unless ``table`` is false) and how to rerun.

    A record that cannot be read is reported as such (the run is still skipped: ``force=true`` redoes it).
    """
    rerun = "force=true reruns it"
    try:
        record = json.loads(path.read_text())
        rows = [_layer_row(d) for d in record["layers"]]
        selected = next(r for r in rows if r.name == record["selected"]["name"])
        primary = str(record["primary_metric"])
    except (OSError, ValueError, KeyError, TypeError, StopIteration) as exc:
        console.print(f"record exists but cannot be read ({type(exc).__name__}: {escape(str(exc))}), skipping "
                      f"({rerun}): {escape(str(path))}", highlight=False)
        return
    if not table:
        console.print(f"record exists, skipping ({rerun}): {escape(str(path))}", highlight=False)
        return
    console.print(f"record exists, skipping the run ({rerun}); its result:", highlight=False)
    print_table(console, str(record.get("task")), str(record.get("model")), primary, rows, selected,
                float(record.get("chance_level", float("nan"))))
    produced = escape(str(record.get("produced_by", "?")))
    console.print(f"record: {escape(str(path))}\n  made {escape(str(record.get('created', '?')))} by `{produced}` "
                  f"(suite revision {escape(str(record.get('suite_revision')))})", highlight=False)
