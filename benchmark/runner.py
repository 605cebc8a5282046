"""One benchmark run: spec -> tracks -> feature store -> probe data -> sweep -> record; this module only orchestrates.

Each stage is a module of its own: :mod:`benchmark.run_checks` (settings and the task/encoder pair, before any
data is read), :mod:`benchmark.run_tracks` (the tracks, checked against the disk), :mod:`benchmark.feature_store`
with :mod:`benchmark.clip_level` or :mod:`benchmark.frame_level` (cached features and the probe data the task's
kind asks for), :mod:`benchmark.sweep` (every head trained together, selection on validation) and
:mod:`benchmark.run_output` (the versioned record, :mod:`benchmark.run_record`).
"""
from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rich.console import Console

from benchmark.audio import WindowSpec
from benchmark.clip_level import clip_level_data
from benchmark.console import make_console
from benchmark.distributed import (SINGLE_PROCESS, Ranks, distributed_settings, launch,
                                   processes_started_externally)
from benchmark.encoders import build_encoder
from benchmark.encoders.base import Encoder
from benchmark.encoders.registry import with_resolved_dtype
from benchmark.errors import ConfigError
from benchmark.interrupt import reported_interrupts
from benchmark.loggers import run_logging
from benchmark.probe_data import ProbeData
from benchmark.record import record_path, run_checksum, sweep_checkpoint_path, with_dataset_fingerprint, write_record
from benchmark.report import print_table
from benchmark.run_checks import check_compatible, check_config, compute_device, encoder_device, window_spec
from benchmark.run_output import RunOutcome, run_record
from benchmark.run_tracks import check_decoded, checked_tracks
from benchmark.settings import ProbeSettings
from benchmark.storage import remove_dead_temporaries
from benchmark.sweep import resolve_layers, summarise, sweep_heads, train_sweep
from benchmark.tasks.base import Task, Track
from benchmark.tasks.registry import build_task

log = logging.getLogger(__name__)


def run(config: dict[str, Any], console: Console | None = None, encoder: Encoder | None = None) -> dict[str, Any]:
    """Run the benchmark described by a resolved config (a plain dict) and return its record.

    ``encoder`` may be passed in (tests use it to count forward passes); otherwise it is built from the config.
    With ``trainer.devices`` x ``trainer.num_nodes`` > 1 the run is one DDP job (see :mod:`benchmark.distributed`):
    the ranks share extraction and probing, and rank 0 writes the record, which is returned here. A Ctrl-C raises
    :class:`~benchmark.interrupt.RunInterrupted` naming the stage it stopped and what was kept.
    """
    with reported_interrupts():
        return _in_processes(_run_in_process, config, console, encoder)


def extract_features(config: dict[str, Any], console: Console | None = None,
                     encoder: Encoder | None = None) -> dict[str, Any]:
    """The first stage of a run on its own: check the data and fill the feature cache, train nothing.

    Why a stage of its own: on a cluster, one extraction job per (task, model) fills the cache that the probe
    jobs of every seed then read (``python -m benchmark extract ...``, then ``python -m benchmark run ...``).
    Returns a summary (cache folder, tracks per split, encoder forward calls).
    """
    with reported_interrupts():
        return _in_processes(_extract_in_process, config, console, encoder)


def _in_processes(function, config: dict[str, Any], console: Console | None, encoder: Encoder | None) -> Any:
    """``function(ranks, config, console, encoder)`` in this process, or in every process of a DDP job."""
    check_config(config)
    # model.dtype=auto becomes the precision the encoder will run in here, before anything reads the config: the
    # record path, checksum, cache key and record name what ran
    config = {**config, "model": with_resolved_dtype(config["model"], encoder_device(config))}
    settings = distributed_settings(config["trainer"])
    if settings.world_size == 1:
        return function(SINGLE_PROCESS, config, console, encoder)
    if encoder is not None:
        raise ConfigError("an encoder object cannot be shared by the processes of a multi-device run; leave it "
                          "out (each process builds it from model=...) or use trainer.devices=1")
    if not processes_started_externally():
        # Before spawning, the dataset is checked here: a missing or incomplete dataset stops the command with its
        # own error (not one wrapped by the process launcher), and a synthetic task is rendered once. Processes
        # started by torchrun or srun run this very function themselves, so their own check below says the same.
        checked_tracks(build_task(config["task"]), Path(config["data_root"]), config, Console(quiet=True))
    return launch(settings, function, config)


@dataclass
class PreparedRun:
    """What the probing stage needs from the first stage: the task, the encoder and the cached features."""

    task: Task
    encoder: Encoder
    spec: WindowSpec
    layers: list[int]
    with_sum: bool
    by_split: dict[str, list[Track]]
    skipped: dict[str, list[str]]
    data: ProbeData


def _rank_console(ranks: Ranks, console: Console | None) -> Console:
    """Rank 0 speaks for the run; the other ranks print nothing (their errors still reach stderr)."""
    if not ranks.is_zero:
        return Console(quiet=True)
    return console or make_console()


def _prepare(ranks: Ranks, config: dict[str, Any], console: Console, encoder: Encoder | None) -> PreparedRun:
    """Task, encoder and dataset checks, then every split's features from the cache or the encoder (the config
    itself was checked by :func:`_in_processes`, in this process or in the one that spawned it)."""
    task = build_task(config["task"])
    # The encoder is built before the data are checked so that an impossible pair (layers out of range, a window
    # under the receptive field, a frame-level task with a clip-only encoder) fails before any data work.
    device = ranks.device if ranks.world_size > 1 else compute_device(config.get("device", "auto"))
    encoder = encoder or build_encoder(config["model"]).to(device)
    spec = window_spec(config["task"], encoder)
    layers, with_sum = resolve_layers(config.get("layers", "all"), encoder.num_hidden_states)
    check_compatible(task, encoder, spec)
    data_root = Path(config["data_root"])
    by_split, skipped, positions = checked_tracks(task, data_root, config, console)
    if task.level == "frame":
        from benchmark.frame_level import frame_level_data

        data = frame_level_data(task, encoder, by_split, spec, layers, config, console, positions, ranks=ranks)
    else:
        data = clip_level_data(task, encoder, by_split, spec, config, console, positions, ranks=ranks)
    skipped = check_decoded(by_split, skipped, data.extraction, config, console)
    if data.extraction.forward_calls == 0:
        console.print("features: read from cache (encoder not run)")
    return PreparedRun(task, encoder, spec, layers, with_sum, by_split, skipped, data)


def _extract_in_process(ranks: Ranks, config: dict[str, Any], console: Console | None = None,
                        encoder: Encoder | None = None) -> dict[str, Any] | None:
    console = _rank_console(ranks, console)
    prepared = _prepare(ranks, config, console, encoder)
    data = prepared.data
    summary = {"task": prepared.task.name, "model": prepared.encoder.name, "cache": str(data.cache.dir),
               "tracks": {s: len(f.track_ids) for s, f in data.splits.items()},
               "encoder_forward_calls": data.extraction.forward_calls,
               "extraction_seconds": data.extraction.seconds, "processes": ranks.world_size}
    console.print(f"features cached: {summary['cache']} ({summary['encoder_forward_calls']} encoder forward "
                  f"calls, {summary['extraction_seconds']:.1f} s on {ranks.world_size} process(es))")
    return summary if ranks.is_zero else None


def _run_in_process(ranks: Ranks, config: dict[str, Any], console: Console | None = None,
                    encoder: Encoder | None = None) -> dict[str, Any] | None:
    """One run in one process: every rank of a DDP job runs this; rank 0 writes and returns the record."""
    console = _rank_console(ranks, console)
    started = time.perf_counter()
    config = with_dataset_fingerprint(config)  # a custom manifest's content names the record, and is recorded
    out_path = record_path(Path(config["results_dir"]), config)
    if ranks.is_zero:
        remove_dead_temporaries(out_path)  # a killed earlier attempt's record or checkpoint temporaries
    prepared = _prepare(ranks, config, console, encoder)
    task, encoder, spec, data = prepared.task, prepared.encoder, prepared.spec, prepared.data
    layers, with_sum, by_split, skipped = prepared.layers, prepared.with_sum, prepared.by_split, prepared.skipped
    extracted = time.perf_counter()

    probe_cfg, trainer_cfg = config["probe"], config["trainer"]
    probe = ProbeSettings.from_config(probe_cfg)
    lrs = probe.learning_rates
    heads = sweep_heads(config.get("layers", "all"), layers, with_sum, probe_cfg)
    probed = len({h.layer for h in heads if h.layer is not None})
    console.print(f"training {len(heads)} probe heads together ({probed} layers"
                  f"{' + weighted sum' if any(h.layer is None for h in heads) else ''} x {len(lrs)} learning rate(s))")
    # Saved after every epoch next to the record and keyed by it (and by the features), so an interrupted sweep
    # resumes where it stopped; deleted once the record is written.
    checkpoint = sweep_checkpoint_path(out_path)
    logs = run_logging(config, out_path, ranks)  # the logger= of rank zero (None for logger=none)
    if logs is not None:
        console.print(f"logs: {logs.folder} ({logs.about})", highlight=False, soft_wrap=True)
    results, model = train_sweep(
        data.splits, data.train_targets, data.evaluators, data.loss, data.num_outputs, heads, probe_cfg,
        trainer_cfg, seed=int(config["seed"]), console=console, state_ids=data.state_ids,
        checkpoint=checkpoint, checkpoint_tag=f"{run_checksum(config)}:{data.cache.key}", ranks=ranks,
        distributed=distributed_settings(trainer_cfg), loggers=logs.loggers if logs else None,
        callbacks=logs.callbacks if logs else None)
    primary = data.evaluators["test"].primary
    rows, selected = summarise(results, primary)
    trained = time.perf_counter()
    if not ranks.is_zero:
        return None  # rank 0 holds the same results (gathered) and writes the one record

    print_table(console, task.name, encoder.name, primary, rows, selected, data.chance)
    record = run_record(config, RunOutcome(
        task=task, encoder=encoder, spec=spec, data=data, heads=heads, results=results, rows=rows,
        selected=selected, layer_weights=model.layer_weights(), history=model.history,
        split_sizes={s: len(data.splits[s].track_ids) for s in by_split}, skipped=skipped,
        seconds={"total": trained - started, "training": trained - extracted}, processes=ranks.world_size))
    write_record(out_path, record)
    checkpoint.unlink(missing_ok=True)
    console.print(f"record: {out_path}")
    return record

