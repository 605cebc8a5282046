"""The clip-level probe data: pooled window features of every layer, window targets and per-track evaluators.

The counterpart of :mod:`benchmark.frame_level`; what depends on the task type comes from its kind.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

from rich.console import Console

from benchmark.audio import WindowSpec
from benchmark.distributed import SINGLE_PROCESS, Ranks
from benchmark.encoders.base import Encoder
from benchmark.errors import ConfigError
from benchmark.extract import drop_featureless, load_or_extract
from benchmark.feature_store import (
    SHARED_SPLIT, extraction_settings, feature_cache, select_tracks, shared_extraction_plan, split_shared_stats,
)
from benchmark.kinds.clip import ClipKind
from benchmark.probe_data import ProbeData
from benchmark.tasks.base import SPLITS, Task, Track


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
    shared = task.shared_audio(Path(config["data_root"]))
    cache = feature_cache(Path(config["cache_dir"]), encoder, spec, task,
                          dataset=None if shared is None else shared.identity)
    console.print(f"[bold]{task.name}[/] x [bold]{encoder.name}[/]: "
                  f"{', '.join(f'{s} {len(t)}' for s, t in by_split.items())} tracks; "
                  f"window {spec.window:g} s, hop {spec.hop:g} s; cache {cache.dir}")
    batch_size, num_workers = int(config["model"].get("batch_size", 8)), int(config.get("num_workers", 0))
    if shared is None:
        splits, extraction = load_or_extract(encoder, by_split, cache, spec, batch_size, num_workers,
                                             console=console, ranks=ranks, **extraction_settings(config, positions))
    else:
        # One extraction of the whole collection serves every task that reads it (the four MTG-Jamendo subsets):
        # the encoder runs once per item, whichever of those tasks runs first.
        items, item_positions = shared_extraction_plan(shared)
        console.print(f"shared audio {shared.identity.get('dataset', '')}: {len(items[SHARED_SPLIT])} of "
                      f"{len(shared.tracks)} items present, one feature cache for every task that reads them")
        every, extraction = load_or_extract(encoder, items, cache, spec, batch_size, num_workers, console=console,
                                            ranks=ranks, **extraction_settings(config, item_positions))
        splits = {s: select_tracks(every[SHARED_SPLIT], by_split[s]) for s in SPLITS}
        extraction = split_shared_stats(extraction, by_split)
    targets = {}
    for s in SPLITS:  # tracks whose audio could not be decoded have no features: they leave targets too
        splits[s], kept, _ = drop_featureless(splits[s])
        targets[s] = task.target_array([by_split[s][i] for i in kept])
    targets = kind.probe_targets(targets)
    scored = ("valid", "test")  # in one call: a kind may score test with what validation chose
    evaluators = kind.build_evaluators(task.labels, {s: splits[s].window_track for s in scored},
                                       {s: targets[s] for s in scored})
    return ProbeData(
        splits=splits, train_targets=targets["train"][splits["train"].window_track], evaluators=evaluators,
        loss=kind.loss, num_outputs=kind.num_outputs(task),
        chance=kind.chance(targets["train"], targets["test"], task.labels),
        cache=cache, extraction=extraction)
