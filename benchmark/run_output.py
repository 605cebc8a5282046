"""The last stage of a run: what the stages produced, assembled into its versioned :class:`RunRecord`.

Why a module of its own: the record gathers facts from every stage (the task and its dataset identity, the
encoder identity, the windows, the cache entry, the sweep's heads and history, the timings), and assembling it is
bookkeeping, not orchestration; the runner hands over one :class:`RunOutcome` and writes what comes back.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass
from datetime import datetime, timezone
from typing import Any

from benchmark.audio import WindowSpec
from benchmark.encoders.base import Encoder
from benchmark.probe import HeadSpec
from benchmark.probe_data import ProbeData
from benchmark.record import package_versions, run_checksum, suite_revision
from benchmark.run_record import LayerScores, RunRecord, config_file_defaults
from benchmark.sweep import LayerRow
from benchmark.tasks.base import SPLITS, Task


@dataclass
class RunOutcome:
    """Everything a finished run knows that its record keeps (``results``: one entry per trained head)."""

    task: Task
    encoder: Encoder
    spec: WindowSpec
    data: ProbeData
    heads: list[HeadSpec]
    results: list[Any]
    rows: list[LayerRow]
    selected: LayerRow
    layer_weights: Any  # [weighted-sum heads, hidden states] softmax weights
    history: list[dict[str, Any]]
    split_sizes: dict[str, int]
    skipped: dict[str, list[str]]
    seconds: dict[str, float]  # total, training
    processes: int


def run_record(config: dict[str, Any], outcome: RunOutcome) -> dict[str, Any]:
    """The run's record as JSON-ready data (:class:`RunRecord`, current schema)."""
    o, data = outcome, outcome.data
    primary = data.evaluators["test"].primary
    weighted = [h for h in o.heads if h.layer is None]
    return RunRecord(
        created=datetime.now(timezone.utc).isoformat(timespec="seconds"),
        produced_by="python -m benchmark run " + " ".join(config.get("_overrides", [])),
        task=o.task.name,
        task_type=o.task.task_type,
        model=o.encoder.name,
        seed=int(config["seed"]),
        primary_metric=primary,
        selected=LayerScores.from_dict(_row_dict(o.selected)),
        test_score=o.selected.test[primary],
        chance_level=data.chance,
        layers=[LayerScores.from_dict(_row_dict(r)) for r in o.rows],
        heads=[{"name": r.head.name, "layer": r.head.layer, "lr": r.head.lr, "best_epoch": r.best_epoch,
                "valid": r.valid, "test": r.test} for r in o.results],
        layer_weights={h.name: w.tolist() for h, w in zip(weighted, o.layer_weights)},
        valid_history=o.history,
        encoder=o.encoder.identity(),
        dataset=o.task.dataset_identity(),
        split_sizes=o.split_sizes,
        skipped=o.skipped,
        flagged={flag: {s: data.extraction.flagged.get(s, {}).get(flag, []) for s in SPLITS}
                 for flag in ("padded_short", "non_finite")},
        window=o.spec.as_dict(),
        feature_cache={"key": data.cache.key, "dir": str(data.cache.dir), "disk_bytes": data.cache.disk_bytes()},
        timings={
            "total_seconds": o.seconds["total"],
            "extraction_seconds": data.extraction.seconds,
            "extraction_audio_seconds": data.extraction.audio_seconds,
            "encoder_forward_calls": data.extraction.forward_calls,
            "training_seconds": o.seconds["training"],
            "processes": o.processes,
        },
        config={k: v for k, v in config.items() if not k.startswith("_")},
        protocol_checksum=run_checksum({k: v for k, v in config.items() if k != "seed"}),
        versions=package_versions(),
        suite_revision=suite_revision(),
        config_defaults=config_file_defaults(config),  # so the leaderboard never reads the checkout's configs
    ).to_dict()


def _row_dict(row: LayerRow) -> dict[str, Any]:
    d = asdict(row)
    d["name"] = row.name
    return d
