"""Run records: one JSON file per run, holding everything needed to trust, reproduce and aggregate it."""
from __future__ import annotations

import importlib.metadata
import json
import platform
import subprocess
import sys
from pathlib import Path
from typing import Any

from benchmark.cache import atomic_write_text, config_checksum

PACKAGES = ("torch", "torchaudio", "transformers", "lightning", "numpy", "scikit-learn", "mir_eval", "hydra-core",
            "huggingface_hub", "soundfile", "torchcrepe")

# Config keys that say where files are and how a run executes, not what it measures: left out of the
# protocol/record checksum, so records made on another machine or with other data paths still group together.
LOCATION_KEYS = ("data_root", "cache_dir", "results_dir", "num_workers", "force", "device", "max_missing_fraction",
                 "verify_checksums", "shard_tracks")


def package_versions() -> dict[str, str]:
    versions = {"python": sys.version.split()[0], "platform": platform.platform()}
    for name in PACKAGES:
        try:
            versions[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            versions[name] = "not installed"
    return versions


def suite_revision() -> str | None:
    """The git commit of this suite, when run from a checkout (``+dirty`` when it has local changes)."""
    root = Path(__file__).resolve().parents[1]
    try:
        rev = subprocess.run(["git", "rev-parse", "HEAD"], cwd=root, capture_output=True, text=True, timeout=5)
        if rev.returncode:
            return None
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=root,
                               capture_output=True, text=True, timeout=5).stdout.strip()
        return rev.stdout.strip() + ("+dirty" if dirty else "")
    except (OSError, subprocess.SubprocessError):
        return None


# Trainer keys that say how many processes and which hardware run the probes (DDP on N devices takes the same
# optimisation steps as one process). They are set to these values in the checksum, so that a run on 8 GPUs, on
# 2 nodes or on one CPU finds and groups with the same record; the values are those of configs written before
# the keys existed, which keeps the checksums of earlier records unchanged.
EXECUTION_TRAINER_DEFAULTS = {"devices": 1, "accelerator": "auto", "num_nodes": None, "strategy": None}
# Task keys that change how a dataset is produced, not what it holds (a synthetic task's render processes).
EXECUTION_TASK_KEYS = ("render_workers",)


# The protocol checksum is computed from this explicit, versioned list, not from "the config minus some keys":
# a setting added later is then outside the checksum unless it is listed here, so finished runs keep being found
# and protocols do not split when the suite grows an execution setting.
PROTOCOL_VERSION = 1
# Top-level config entries that define what a run measures. Every key inside the task, model, probe and trainer
# groups counts (less the execution keys above); the other top-level keys (LOCATION_KEYS, and any added later,
# such as a logger) do not. Version 1 reproduces the checksums of every record written before the list existed.
PROTOCOL_SECTIONS = ("task", "model", "probe", "trainer", "layers", "seed")
# Keys added to a group after records existed, with the value that behaves as the suite did before the key
# existed: at that value the key is left out of the checksum (so old and new records agree), any other value
# counts. ``"probe.some_key": value``; add a key here in the change that introduces it.
NEUTRAL_DEFAULTS: dict[str, Any] = {}


def protocol_fields(config: dict[str, Any]) -> dict[str, Any]:
    """The settings that define a run's result (see PROTOCOL_SECTIONS), with the process layout set to the values
    of configs written before it existed and neutral-default keys dropped, so records from before and after
    those keys group together."""
    fields = {k: config[k] for k in PROTOCOL_SECTIONS if k in config}
    if isinstance(fields.get("trainer"), dict):
        trainer = dict(fields["trainer"])
        for key, value in EXECUTION_TRAINER_DEFAULTS.items():
            if value is None:
                trainer.pop(key, None)
            elif key in trainer:
                trainer[key] = value
        fields["trainer"] = trainer
    if isinstance(fields.get("task"), dict):
        fields["task"] = {k: v for k, v in fields["task"].items() if k not in EXECUTION_TASK_KEYS}
    for dotted, neutral in NEUTRAL_DEFAULTS.items():
        group, _, key = dotted.partition(".")
        section = fields.get(group)
        if isinstance(section, dict) and key in section and section[key] == neutral:
            fields[group] = {k: v for k, v in section.items() if k != key}
    return fields


def run_checksum(config: dict[str, Any]) -> str:
    """Checksum of the settings that define a run's result (file locations and process layout excluded)."""
    return config_checksum(protocol_fields(config))


def record_path(results_dir: Path, config: dict[str, Any]) -> Path:
    """Where a run's record lives: deterministic, so a repeated run finds its earlier record."""
    name = f"seed{config['seed']}-{run_checksum(config)[:10]}.json"
    return Path(results_dir) / "runs" / config["task"]["name"] / config["model"]["name"] / name


def write_record(path: Path, record: dict[str, Any]) -> None:
    atomic_write_text(path, json.dumps(record, indent=2, sort_keys=False, default=_jsonable))


def _jsonable(value: Any) -> Any:
    if hasattr(value, "tolist"):
        return value.tolist()
    if isinstance(value, Path):
        return str(value)
    raise TypeError(f"cannot serialise {type(value).__name__}")
