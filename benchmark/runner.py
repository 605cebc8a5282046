"""One benchmark run: data -> cached all-layer features -> layer sweep -> table and run record."""
from __future__ import annotations

import logging
import os
import time
from dataclasses import asdict, dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import torch
from rich.console import Console

from benchmark.audio import WindowSpec
from benchmark.console import make_console
from benchmark.distributed import (SINGLE_PROCESS, Ranks, distributed_settings, launch,
                                   processes_started_externally)
from benchmark.encoders import build_encoder
from benchmark.encoders.base import Encoder
from benchmark.extract import ExtractionStats, drop_featureless, load_or_extract
from benchmark.kinds.clip import ClipKind, standardized_targets  # noqa: F401  (re-exported as before)
from benchmark.probe import make_heads
from benchmark.probe_data import ProbeData
from benchmark.errors import ConfigError, UserError, storage_error_message
from benchmark.feature_store import (extraction_settings, feature_cache, shard_positions,
                                     track_positions)
from benchmark.report import print_table
from benchmark.record import package_versions, record_path, run_checksum, suite_revision, write_record
from benchmark.settings import ProbeSettings
from benchmark.run_record import LayerScores, RunRecord, config_file_defaults
from benchmark.sweep import (LayerRow, check_sweep_config, parse_layers, resolve_layers, summarise,
                             train_sweep)
from benchmark.tasks.base import SPLITS, Task, Track, check_dataset
from benchmark.tasks.registry import build_task

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


def check_config(config: dict[str, Any]) -> None:
    """Refuse settings that cannot work from the config alone, before the task, encoder or data are touched.

    Why: a run spends minutes to hours reading data and running the encoder; a typo such as ``probe.lr=[]``,
    ``trainer.max_epochs=0`` or a negative window must fail in the first second with the key and the fix.
    """
    check_sweep_config(config["probe"], config["trainer"])
    distributed_settings(config["trainer"])
    parse_layers(config.get("layers", "all"))
    fraction = config.get("max_missing_fraction", 0.01)
    if isinstance(fraction, bool) or not isinstance(fraction, (int, float)) or not 0 <= fraction <= 1:
        raise ConfigError(f"max_missing_fraction={fraction!r}: must be a number in [0, 1] (default 0.01)")
    task_cfg = config["task"]
    for key in ("window_seconds", "hop_seconds"):
        value = task_cfg.get(key)
        if value is not None and (isinstance(value, bool) or not isinstance(value, (int, float)) or value <= 0):
            raise ConfigError(f"task.{key}={value!r}: must be a positive number of seconds, or null for the "
                              "default (the encoder's pretraining context; hop = the window)")
    min_fraction = task_cfg.get("window_min_fraction")
    if min_fraction is not None and (isinstance(min_fraction, bool) or not isinstance(min_fraction, (int, float))
                                     or not 0 <= min_fraction <= 1):
        raise ConfigError(f"task.window_min_fraction={min_fraction!r}: must be in [0, 1] (default 0.5)")
    device = str(config.get("device", "auto"))
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise ConfigError(f"device={device}: this machine has no CUDA device torch can use. Use device=auto "
                          "(the GPU when there is one, else the CPU) or device=cpu.")
    for key in ("cache_dir", "results_dir"):
        check_writable_folder(key, Path(config[key]))


def check_writable_folder(key: str, folder: Path) -> None:
    """Write (and remove) a probe file in ``folder``, so a folder the run cannot write fails now, not after hours
    of extraction or training. Folders created for the probe are removed again: a run refused later by another
    check leaves nothing behind. Raises ConfigError naming the setting and the fix."""
    created = [p for p in (folder, *folder.parents) if not p.exists()]
    try:
        folder.mkdir(parents=True, exist_ok=True)
        probe = folder / f".write-probe-{os.getpid()}"
        probe.write_bytes(b"")
        probe.unlink()
    except OSError as exc:
        reason = storage_error_message(exc) or f"{type(exc).__name__}: {exc}."
        raise ConfigError(f"{key}={folder} is not writable: {reason}") from exc
    finally:
        for made in created:  # deepest first
            try:
                made.rmdir()
            except OSError:
                break


def check_compatible(task: Task, encoder: Encoder, spec: WindowSpec) -> None:
    """Refuse a task/encoder pair that cannot work, once both exist and before any data is read.

    A frame-level task needs per-frame hidden states; every window (and every kept trailing part of one) must be
    at least the encoder's receptive field, or the encoder has no frame to return for it.
    """
    if task.level == "frame" and not getattr(encoder, "frame_level", True):
        raise ConfigError(
            f"task {task.name} is frame-level (a target per encoder frame) but model {encoder.name} returns no "
            f"per-frame hidden states (frame_level = False). Use a model that does (every built-in model does, "
            f"e.g. model=mert-v1-95m or model=mfcc) or a clip-level task with model={encoder.name}.")
    window = int(round(spec.window * encoder.sample_rate))
    receptive_ms = 1000 * encoder.min_samples / encoder.sample_rate
    if window < encoder.min_samples:
        raise ConfigError(
            f"task.window_seconds={spec.window:g} is shorter than the receptive field of {encoder.name} "
            f"({encoder.min_samples} samples at {encoder.sample_rate} Hz = {receptive_ms:.1f} ms): the encoder "
            f"returns no frame for such a window. Set task.window_seconds to at least "
            f"{encoder.min_samples / encoder.sample_rate:.3f}, or null for its context "
            f"({encoder.context_seconds:g} s).")
    if task.level != "frame" and spec.min_fraction * window < encoder.min_samples:
        raise ConfigError(
            f"task.window_min_fraction={spec.min_fraction:g} keeps trailing windows down to "
            f"{spec.min_fraction * spec.window * 1000:.1f} ms, shorter than the receptive field of {encoder.name} "
            f"({receptive_ms:.1f} ms). Raise task.window_min_fraction to at least "
            f"{encoder.min_samples / window:.3f} or task.window_seconds.")


class DatasetIncompleteError(UserError, RuntimeError):
    """More of a split is missing (or fails its checksum) than ``max_missing_fraction`` allows."""


def splits_over_limit(lost: dict[str, list[str]], totals: dict[str, int], limit: float) -> list[str]:
    """The splits that lose more than ``limit`` of their tracks (the ``max_missing_fraction`` rule)."""
    return [s for s in SPLITS if len(lost.get(s, [])) > limit * max(totals.get(s, 0), 1)]


def checked_tracks(task: Task, data_root: Path, config: dict[str, Any],
                   console: Console) -> tuple[dict[str, list[Track]], dict[str, list[str]], dict[str, list[int]]]:
    """Check the local dataset before any compute; drop absent or corrupt files within the allowed fraction.

    Returns the usable tracks per split, the skipped track ids per split (for the run record) and the position of
    every usable track in the task's full split list (the extractor's shards are cut by it, see
    :func:`track_positions`).
    """
    tracks = task.tracks(data_root)
    report = check_dataset(task, tracks, data_root, verify_checksums=bool(config.get("verify_checksums", True)))
    limit = float(config.get("max_missing_fraction", 0.01))
    bad_paths = set(report.bad_checksums)
    skipped = {s: list(report.missing.get(s, [])) for s in SPLITS}
    for t in tracks:
        if str(t.path) in bad_paths:
            skipped[t.split].append(t.track_id)
    over = splits_over_limit(skipped, report.counts, limit)
    if over:
        raise DatasetIncompleteError(
            f"{report.summary()}\nsplit(s) {over} lose more than max_missing_fraction={limit:g} of their tracks; "
            f"fetch the data with `{task.fetch_command()}` or allow it with max_missing_fraction=...")
    if not report.complete:
        console.print(report.summary(), highlight=False)
        console.print(f"[yellow]skipping {sum(map(len, skipped.values()))} track(s) "
                      f"(within max_missing_fraction={limit:g})[/]")
    gone = {tid for ids in skipped.values() for tid in ids}
    by_split = split_tracks(task, [t for t in tracks if t.track_id not in gone])
    return by_split, skipped, shard_positions(by_split, track_positions(tracks))


def check_decoded(by_split: dict[str, list[Track]], skipped: dict[str, list[str]], extraction: ExtractionStats,
                  config: dict[str, Any], console: Console) -> dict[str, list[str]]:
    """Add the tracks whose audio could not be decoded to ``skipped``; stop when a split lost too many.

    Called after every split was extracted and cached: fixing or deleting the listed files and running the same
    command again reuses all the work done (only the shards holding replaced files are computed again).
    """
    limit = float(config.get("max_missing_fraction", 0.01))
    merged = {s: list(skipped.get(s, [])) for s in SPLITS}
    failures = extraction.failures
    for s in SPLITS:
        merged[s] += [tid for tid in failures.get(s, {}) if tid not in merged[s]]
    lines = [f"  {s}: {tid}: {reason}" for s in SPLITS for tid, reason in failures.get(s, {}).items()]
    total = {s: len(by_split.get(s, [])) + len(skipped.get(s, [])) for s in SPLITS}
    over = splits_over_limit(merged, total, limit)
    if over:
        raise DatasetIncompleteError(
            "audio that could not be decoded:\n" + "\n".join(lines) + f"\nsplit(s) {over} lose more than "
            f"max_missing_fraction={limit:g} of their tracks (absent, corrupt and undecodable files together). "
            "Everything else was extracted and cached: replace or delete these files and run the same command "
            "again, or allow it with max_missing_fraction=...")
    if lines:
        console.print(f"[yellow]skipped {len(lines)} track(s) whose audio could not be decoded "
                      f"(within max_missing_fraction={limit:g}):[/]\n" + "\n".join(lines), highlight=False)
    return merged


def clip_level_data(task: Task, encoder: Encoder, by_split: dict[str, list[Track]], spec: WindowSpec,
                    config: dict[str, Any], console: Console,
                    positions: dict[str, list[int]] | None = None, ranks: Ranks = SINGLE_PROCESS) -> ProbeData:
    """Pooled window features of every layer (cached), window targets, and per-track evaluators.

    Everything that depends on the task type comes from its kind (:mod:`benchmark.kinds`): the target encoding
    and conditioning (regression targets z-scored), the evaluators, the loss and the chance level.
    """
    kind = task.kind
    if not isinstance(kind, ClipKind):
        raise ConfigError(f"task {task.name}: kind {kind.name} is {kind.level}-level, not clip-level; its task "
                          f"class says level = {task.level!r}: leave level to the kind")
    cache = feature_cache(Path(config["cache_dir"]), encoder, spec, task)
    console.print(f"[bold]{task.name}[/] x [bold]{encoder.name}[/]: "
                  f"{', '.join(f'{s} {len(t)}' for s, t in by_split.items())} tracks; "
                  f"window {spec.window:g} s, hop {spec.hop:g} s; cache {cache.dir}")
    splits, extraction = load_or_extract(encoder, by_split, cache, spec, int(config["model"].get("batch_size", 8)),
                                         int(config.get("num_workers", 0)), console=console,
                                         ranks=ranks, **extraction_settings(config, positions))
    targets = {}
    for s in SPLITS:  # tracks whose audio could not be decoded have no features: they leave targets too
        splits[s], kept, _ = drop_featureless(splits[s])
        targets[s] = task.target_array([by_split[s][i] for i in kept])
    targets = kind.probe_targets(targets)
    evaluators = {s: kind.build_evaluator(task.labels, splits[s].window_track, targets[s]) for s in ("valid", "test")}
    return ProbeData(
        splits=splits, train_targets=targets["train"][splits["train"].window_track], evaluators=evaluators,
        loss=kind.loss, num_outputs=kind.num_outputs(task),
        chance=kind.chance(targets["train"], targets["test"], task.labels),
        cache=cache, extraction=extraction)


def run(config: dict[str, Any], console: Console | None = None, encoder: Encoder | None = None) -> dict[str, Any]:
    """Run the benchmark described by a resolved config (a plain dict) and return its record.

    ``encoder`` may be passed in (tests use it to count forward passes); otherwise it is built from the config.
    With ``trainer.devices`` x ``trainer.num_nodes`` > 1 the run is one DDP job (see :mod:`benchmark.distributed`):
    the ranks share extraction and probing, and rank 0 writes the record, which is returned here.
    """
    return _in_processes(_run_in_process, config, console, encoder)


def extract_features(config: dict[str, Any], console: Console | None = None,
                     encoder: Encoder | None = None) -> dict[str, Any]:
    """The first stage of a run on its own: check the data and fill the feature cache, train nothing.

    Why a stage of its own: on a cluster, one extraction job per (task, model) fills the cache that the probe
    jobs of every seed then read (``python -m benchmark extract ...``, then ``python -m benchmark run ...``).
    Returns a summary (cache folder, tracks per split, encoder forward calls).
    """
    return _in_processes(_extract_in_process, config, console, encoder)


def _in_processes(function, config: dict[str, Any], console: Console | None, encoder: Encoder | None) -> Any:
    """``function(ranks, config, console, encoder)`` in this process, or in every process of a DDP job."""
    check_config(config)
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
    out_path = record_path(Path(config["results_dir"]), config)
    prepared = _prepare(ranks, config, console, encoder)
    task, encoder, spec, data = prepared.task, prepared.encoder, prepared.spec, prepared.data
    layers, with_sum, by_split, skipped = prepared.layers, prepared.with_sum, prepared.by_split, prepared.skipped
    extracted = time.perf_counter()

    probe_cfg, trainer_cfg = config["probe"], config["trainer"]
    probe = ProbeSettings.from_config(probe_cfg)
    lrs = probe.learning_rates
    heads = make_heads(layers, with_sum and bool(probe.weighted_sum), lrs)
    console.print(f"training {len(heads)} probe heads together ({len(layers)} layers"
                  f"{' + weighted sum' if with_sum else ''} x {len(lrs)} learning rate(s))")
    # Saved after every epoch next to the record and keyed by it (and by the features), so an interrupted sweep
    # resumes where it stopped; deleted once the record is written.
    checkpoint = out_path.with_name(out_path.stem + ".sweep.ckpt")
    results, model = train_sweep(
        data.splits, data.train_targets, data.evaluators, data.loss, data.num_outputs, heads, probe_cfg,
        trainer_cfg, seed=int(config["seed"]), console=console, state_ids=data.state_ids,
        checkpoint=checkpoint, checkpoint_tag=f"{run_checksum(config)}:{data.cache.key}", ranks=ranks,
        distributed=distributed_settings(trainer_cfg))
    primary = data.evaluators["test"].primary
    rows, selected = summarise(results, primary)
    trained = time.perf_counter()
    if not ranks.is_zero:
        return None  # rank 0 holds the same results (gathered) and writes the one record

    chance = data.chance
    print_table(console, task.name, encoder.name, primary, rows, selected, chance)
    record = RunRecord(
        created=datetime.now(timezone.utc).isoformat(timespec="seconds"),
        produced_by="python -m benchmark run " + " ".join(config.get("_overrides", [])),
        task=task.name,
        task_type=task.task_type,
        model=encoder.name,
        seed=int(config["seed"]),
        primary_metric=primary,
        selected=LayerScores.from_dict(_row_dict(selected)),
        test_score=selected.test[primary],
        chance_level=chance,
        layers=[LayerScores.from_dict(_row_dict(r)) for r in rows],
        heads=[{"name": r.head.name, "layer": r.head.layer, "lr": r.head.lr, "best_epoch": r.best_epoch,
                "valid": r.valid, "test": r.test} for r in results],
        layer_weights={h.name: w.tolist() for h, w in zip([h for h in heads if h.layer is None],
                                                           model.layer_weights())},
        valid_history=model.history,
        encoder=encoder.identity(),
        dataset=task.dataset_identity(),
        split_sizes={s: len(data.splits[s].track_ids) for s in by_split},
        skipped=skipped,
        flagged={flag: {s: data.extraction.flagged.get(s, {}).get(flag, []) for s in SPLITS}
                 for flag in ("padded_short", "non_finite")},
        window=spec.as_dict(),
        feature_cache={"key": data.cache.key, "dir": str(data.cache.dir), "disk_bytes": data.cache.disk_bytes()},
        timings={
            "total_seconds": trained - started,
            "extraction_seconds": data.extraction.seconds,
            "extraction_audio_seconds": data.extraction.audio_seconds,
            "encoder_forward_calls": data.extraction.forward_calls,
            "training_seconds": trained - extracted,
            "processes": ranks.world_size,
        },
        config={k: v for k, v in config.items() if not k.startswith("_")},
        protocol_checksum=run_checksum({k: v for k, v in config.items() if k != "seed"}),
        versions=package_versions(),
        suite_revision=suite_revision(),
        config_defaults=config_file_defaults(config),  # so the leaderboard never reads the checkout's configs
    ).to_dict()
    write_record(out_path, record)
    checkpoint.unlink(missing_ok=True)
    console.print(f"record: {out_path}")
    return record


def _row_dict(row: LayerRow) -> dict[str, Any]:
    d = asdict(row)
    d["name"] = row.name
    return d
