"""One benchmark run: data -> cached all-layer features -> layer sweep -> table and run record."""
from __future__ import annotations

import logging
import time
from dataclasses import asdict
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np
from rich.console import Console
from rich.table import Table

from benchmark.audio import WindowSpec
from benchmark.cache import FeatureCache
from benchmark.console import make_console
from benchmark.encoders import build_encoder
from benchmark.encoders.base import Encoder
from benchmark.evaluation import LOSS_BY_TASK_TYPE, ClipEvaluator
from benchmark.extract import load_or_extract
from benchmark.metrics import PRIMARY_METRIC, chance_score
from benchmark.probe import make_heads
from benchmark.record import package_versions, record_path, run_checksum, suite_revision, write_record
from benchmark.sweep import LayerRow, resolve_layers, summarise, train_sweep
from tasks.base import SPLITS, Task, Track
from tasks.registry import build_task

log = logging.getLogger(__name__)


def window_spec(task_cfg: dict[str, Any], encoder: Encoder) -> WindowSpec:
    """The task's window/hop, defaulting to the encoder's pretraining context and non-overlapping windows."""
    window = task_cfg.get("window_seconds") or encoder.context_seconds
    hop = task_cfg.get("hop_seconds") or window
    return WindowSpec(window=float(window), hop=float(hop))


def split_tracks(task: Task, tracks: list[Track]) -> dict[str, list[Track]]:
    by_split = {s: [t for t in tracks if t.split == s] for s in SPLITS}
    empty = [s for s, tr in by_split.items() if not tr]
    if empty:
        raise ValueError(f"task {task.name}: split(s) {empty} have no tracks; check the dataset and its manifest")
    return by_split


def feature_cache(cache_dir: Path, encoder: Encoder, spec: WindowSpec, task: Task) -> FeatureCache:
    return FeatureCache(cache_dir, {
        "encoder": encoder.identity(),
        "sample_rate": encoder.sample_rate,
        "window": spec.as_dict(),
        "pooling": "time_mean",
        "dataset": task.dataset_identity(),
    })


def run(config: dict[str, Any], console: Console | None = None, encoder: Encoder | None = None) -> dict[str, Any]:
    """Run the benchmark described by a resolved config (a plain dict) and return its record.

    ``encoder`` may be passed in (tests use it to count forward passes); otherwise it is built from the config.
    """
    console = console or make_console()
    started = time.perf_counter()
    out_path = record_path(Path(config["results_dir"]), config)
    task = build_task(config["task"])
    data_root = Path(config["data_root"])
    task.prepare(data_root)
    by_split = split_tracks(task, task.tracks(data_root))
    encoder = encoder or build_encoder(config["model"])
    spec = window_spec(config["task"], encoder)
    cache = feature_cache(Path(config["cache_dir"]), encoder, spec, task)
    console.print(f"[bold]{task.name}[/] x [bold]{encoder.name}[/]: "
                  f"{', '.join(f'{s} {len(t)}' for s, t in by_split.items())} tracks; "
                  f"window {spec.window:g} s, hop {spec.hop:g} s; cache {cache.dir}")
    splits, extraction = load_or_extract(encoder, by_split, cache, spec, int(config["model"].get("batch_size", 8)),
                                         int(config.get("num_workers", 0)), console=console)
    if extraction.forward_calls == 0:
        console.print("features: read from cache (encoder not run)")
    extracted = time.perf_counter()

    targets = {s: task.target_array(by_split[s]) for s in SPLITS}
    evaluators = {s: ClipEvaluator(task.task_type, task.labels, splits[s].window_track, targets[s])
                  for s in ("valid", "test")}
    num_states = splits["train"].features.shape[1]
    layers, with_sum = resolve_layers(config.get("layers", "all"), num_states)
    probe_cfg, trainer_cfg = config["probe"], config["trainer"]
    lrs = probe_cfg["lr"] if isinstance(probe_cfg["lr"], (list, tuple)) else [probe_cfg["lr"]]
    heads = make_heads(layers, with_sum and bool(probe_cfg.get("weighted_sum", True)), [float(x) for x in lrs])
    console.print(f"training {len(heads)} probe heads together ({len(layers)} layers"
                  f"{' + weighted sum' if with_sum else ''} x {len(lrs)} learning rate(s))")
    results, model = train_sweep(
        splits, targets["train"][splits["train"].window_track], evaluators, LOSS_BY_TASK_TYPE[task.task_type],
        task.num_outputs, heads, probe_cfg, trainer_cfg, seed=int(config["seed"]), console=console)
    primary = PRIMARY_METRIC[task.task_type]
    rows, selected = summarise(results, primary)
    trained = time.perf_counter()

    chance = chance_score(task.task_type, targets["train"], targets["test"], task.labels)
    print_table(console, task.name, encoder.name, primary, rows, selected, chance)
    record = {
        "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "produced_by": "python -m benchmark run " + " ".join(config.get("_overrides", [])),
        "task": task.name,
        "task_type": task.task_type,
        "model": encoder.name,
        "seed": int(config["seed"]),
        "primary_metric": primary,
        "selected": _row_dict(selected),
        "test_score": selected.test[primary],
        "chance_level": chance,
        "layers": [_row_dict(r) for r in rows],
        "heads": [{"name": r.head.name, "layer": r.head.layer, "lr": r.head.lr, "best_epoch": r.best_epoch,
                   "valid": r.valid, "test": r.test} for r in results],
        "layer_weights": {h.name: w.tolist() for h, w in zip([h for h in heads if h.layer is None],
                                                              model.layer_weights())},
        "valid_history": model.history,
        "encoder": encoder.identity(),
        "dataset": task.dataset_identity(),
        "split_sizes": {s: len(t) for s, t in by_split.items()},
        "window": spec.as_dict(),
        "feature_cache": {"key": cache.key, "dir": str(cache.dir), "disk_bytes": cache.disk_bytes()},
        "timings": {
            "total_seconds": trained - started,
            "extraction_seconds": extraction.seconds,
            "extraction_audio_seconds": extraction.audio_seconds,
            "encoder_forward_calls": extraction.forward_calls,
            "training_seconds": trained - extracted,
        },
        "config": {k: v for k, v in config.items() if not k.startswith("_")},
        "protocol_checksum": run_checksum({k: v for k, v in config.items() if k != "seed"}),
        "versions": package_versions(),
        "suite_revision": suite_revision(),
    }
    write_record(out_path, record)
    console.print(f"record: {out_path}")
    return record


def _row_dict(row: LayerRow) -> dict[str, Any]:
    d = asdict(row)
    d["name"] = row.name
    return d


def print_table(console: Console, task: str, model: str, primary: str, rows: list[LayerRow], selected: LayerRow,
                chance: float) -> None:
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
