"""One benchmark run: data -> cached all-layer features -> layer sweep -> table and run record."""
from __future__ import annotations

import logging
import time
from dataclasses import asdict
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np
import torch
from rich.console import Console
from rich.table import Table

from benchmark.audio import WindowSpec
from benchmark.cache import FeatureCache
from benchmark.console import make_console
from benchmark.encoders import build_encoder
from benchmark.encoders.base import Encoder
from benchmark.evaluation import LOSS_BY_TASK_TYPE, ClipEvaluator
from benchmark.extract import load_or_extract
from benchmark.metrics import chance_score
from benchmark.probe import make_heads
from benchmark.probe_data import ProbeData
from benchmark.record import package_versions, record_path, run_checksum, suite_revision, write_record
from benchmark.sweep import LayerRow, resolve_layers, summarise, train_sweep
from tasks.base import SPLITS, Task, Track, check_dataset
from tasks.registry import build_task

log = logging.getLogger(__name__)


def compute_device(name: str) -> torch.device:
    """``auto`` = the first CUDA device when there is one, else the CPU; ``cpu`` / ``cuda[:N]`` as given."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(name)


def window_spec(task_cfg: dict[str, Any], encoder: Encoder) -> WindowSpec:
    """The task's window/hop, defaulting to the encoder's pretraining context and non-overlapping windows."""
    window = task_cfg.get("window_seconds") or encoder.context_seconds
    hop = task_cfg.get("hop_seconds") or window
    min_fraction = task_cfg.get("window_min_fraction")
    return WindowSpec(window=float(window), hop=float(hop),
                      min_fraction=0.5 if min_fraction is None else float(min_fraction))


def split_tracks(task: Task, tracks: list[Track]) -> dict[str, list[Track]]:
    by_split = {s: [t for t in tracks if t.split == s] for s in SPLITS}
    empty = [s for s, tr in by_split.items() if not tr]
    if empty:
        raise ValueError(f"task {task.name}: split(s) {empty} have no tracks; check the dataset and its manifest")
    return by_split


class DatasetIncompleteError(RuntimeError):
    """More of a split is missing (or fails its checksum) than ``max_missing_fraction`` allows."""


def checked_tracks(task: Task, data_root: Path, config: dict[str, Any],
                   console: Console) -> tuple[dict[str, list[Track]], dict[str, list[str]]]:
    """Check the local dataset before any compute; drop absent or corrupt files within the allowed fraction.

    Returns the usable tracks per split and the skipped track ids per split (for the run record).
    """
    tracks = task.tracks(data_root)
    report = check_dataset(task, tracks, data_root, verify_checksums=bool(config.get("verify_checksums", True)))
    limit = float(config.get("max_missing_fraction", 0.01))
    bad_paths = set(report.bad_checksums)
    skipped = {s: list(report.missing.get(s, [])) for s in SPLITS}
    for t in tracks:
        if str(t.path) in bad_paths:
            skipped[t.split].append(t.track_id)
    over = [s for s in SPLITS if len(skipped[s]) > limit * max(report.counts[s], 1)]
    if over:
        raise DatasetIncompleteError(
            f"{report.summary()}\nsplit(s) {over} lose more than max_missing_fraction={limit:g} of their tracks; "
            f"fetch the data with `{task.fetch_command()}` or allow it with max_missing_fraction=...")
    if not report.complete:
        console.print(report.summary(), highlight=False)
        console.print(f"[yellow]skipping {sum(map(len, skipped.values()))} track(s) "
                      f"(within max_missing_fraction={limit:g})[/]")
    gone = {tid for ids in skipped.values() for tid in ids}
    return split_tracks(task, [t for t in tracks if t.track_id not in gone]), skipped


def feature_cache(cache_dir: Path, encoder: Encoder, spec: WindowSpec, task: Task) -> FeatureCache:
    return FeatureCache(cache_dir, {
        "encoder": encoder.identity(),
        "sample_rate": encoder.sample_rate,
        "window": spec.as_dict(),
        "pooling": "time_mean",
        "dataset": task.dataset_identity(),
    })


def standardized_targets(targets: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Regression targets z-scored with train mean and population std, for every split.

    The probe's MSE and learning rate then see unit-scale targets whatever the units (BPM, dB, Hz); R2 is unchanged
    because the same affine map applies to targets and, through training, to predictions.
    """
    mean = targets["train"].mean(axis=0)
    std = targets["train"].std(axis=0)
    std = np.where(std > 1e-12, std, 1.0)
    return {s: ((y - mean) / std).astype(np.float32) for s, y in targets.items()}


def clip_level_data(task: Task, encoder: Encoder, by_split: dict[str, list[Track]], spec: WindowSpec,
                    config: dict[str, Any], console: Console) -> ProbeData:
    """Pooled window features of every layer (cached), window targets, and per-track evaluators."""
    cache = feature_cache(Path(config["cache_dir"]), encoder, spec, task)
    console.print(f"[bold]{task.name}[/] x [bold]{encoder.name}[/]: "
                  f"{', '.join(f'{s} {len(t)}' for s, t in by_split.items())} tracks; "
                  f"window {spec.window:g} s, hop {spec.hop:g} s; cache {cache.dir}")
    splits, extraction = load_or_extract(encoder, by_split, cache, spec, int(config["model"].get("batch_size", 8)),
                                         int(config.get("num_workers", 0)), console=console)
    targets = {s: task.target_array(by_split[s]) for s in SPLITS}
    if task.task_type == "regression":
        targets = standardized_targets(targets)
    evaluators = {s: ClipEvaluator(task.task_type, task.labels, splits[s].window_track, targets[s])
                  for s in ("valid", "test")}
    return ProbeData(
        splits=splits, train_targets=targets["train"][splits["train"].window_track], evaluators=evaluators,
        loss=LOSS_BY_TASK_TYPE[task.task_type], num_outputs=task.num_outputs,
        chance=chance_score(task.task_type, targets["train"], targets["test"], task.labels),
        cache=cache, extraction=extraction)


def run(config: dict[str, Any], console: Console | None = None, encoder: Encoder | None = None) -> dict[str, Any]:
    """Run the benchmark described by a resolved config (a plain dict) and return its record.

    ``encoder`` may be passed in (tests use it to count forward passes); otherwise it is built from the config.
    """
    console = console or make_console()
    started = time.perf_counter()
    out_path = record_path(Path(config["results_dir"]), config)
    task = build_task(config["task"])
    data_root = Path(config["data_root"])
    by_split, skipped = checked_tracks(task, data_root, config, console)
    encoder = encoder or build_encoder(config["model"]).to(compute_device(config.get("device", "auto")))
    spec = window_spec(config["task"], encoder)
    layers, with_sum = resolve_layers(config.get("layers", "all"), encoder.num_hidden_states)
    if task.level == "frame":
        from benchmark.frame_level import frame_level_data

        data = frame_level_data(task, encoder, by_split, spec, layers, config, console)
    else:
        data = clip_level_data(task, encoder, by_split, spec, config, console)
    if data.extraction.forward_calls == 0:
        console.print("features: read from cache (encoder not run)")
    extracted = time.perf_counter()

    probe_cfg, trainer_cfg = config["probe"], config["trainer"]
    lrs = probe_cfg["lr"] if isinstance(probe_cfg["lr"], (list, tuple)) else [probe_cfg["lr"]]
    heads = make_heads(layers, with_sum and bool(probe_cfg.get("weighted_sum", True)), [float(x) for x in lrs])
    console.print(f"training {len(heads)} probe heads together ({len(layers)} layers"
                  f"{' + weighted sum' if with_sum else ''} x {len(lrs)} learning rate(s))")
    results, model = train_sweep(
        data.splits, data.train_targets, data.evaluators, data.loss, data.num_outputs, heads, probe_cfg,
        trainer_cfg, seed=int(config["seed"]), console=console, state_ids=data.state_ids)
    primary = data.evaluators["test"].primary
    rows, selected = summarise(results, primary)
    trained = time.perf_counter()

    chance = data.chance
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
        "skipped": skipped,
        "window": spec.as_dict(),
        "feature_cache": {"key": data.cache.key, "dir": str(data.cache.dir), "disk_bytes": data.cache.disk_bytes()},
        "timings": {
            "total_seconds": trained - started,
            "extraction_seconds": data.extraction.seconds,
            "extraction_audio_seconds": data.extraction.audio_seconds,
            "encoder_forward_calls": data.extraction.forward_calls,
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
