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
from benchmark.storage import committing, remove_dead_temporaries, temporary_name

PACKAGES = ("torch", "torchaudio", "transformers", "lightning", "numpy", "scikit-learn", "mir_eval", "hydra-core",
            "huggingface_hub", "soundfile", "torchcrepe")

# Config keys that say where files are and how a run executes, not what it measures: left out of the
# protocol/record checksum, so records made on another machine or with other data paths still group together.
# ``logger`` (the config group: csv, tensorboard, wandb, none) and ``log_dir`` only say who watches the training.
LOCATION_KEYS = ("data_root", "cache_dir", "results_dir", "num_workers", "force", "device", "max_missing_fraction",
                 "verify_checksums", "shard_tracks", "log_dir", "logger")


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
# Model keys that say where a file comes from, not what it is: a wheel fetched from PyPI and one at wheel=PATH are
# checked against the same published sha256 (which the encoder's identity records), so they are one protocol.
EXECUTION_MODEL_KEYS = ("wheel",)


# The protocol checksum is computed from this explicit, versioned list, not from "the config minus some keys":
# a setting added later is then outside the checksum unless it is listed here, so finished runs keep being found
# and protocols do not split when the suite grows an execution setting.
PROTOCOL_VERSION = 1
# Top-level config entries that define what a run measures. Every key inside the task, model, probe and trainer
# groups counts (less the execution keys above); the other top-level keys (LOCATION_KEYS, and any added later,
# such as a logger) do not. Version 1 reproduces the checksums of every record written before the list existed.
PROTOCOL_SECTIONS = ("task", "model", "probe", "trainer", "layers", "seed", "protocol")
# The protocol section as a record keeps it: its name and reference, where this model x task's values come from,
# and the preset (every value the protocol sets). The rest of configs/protocol/<name>.yaml is lookup tables.
PROTOCOL_RECORD_KEYS = ("name", "reference", "source", "preset")
DEFAULT_PROTOCOL = "sweep"  # a run of the default protocol has no protocol section, as records made before it
# Keys added to a group after records existed, with the value that behaves as the suite did before the key
# existed: at that value the key is left out of the checksum (so old and new records agree), any other value
# counts. ``"probe.some_key": value``; add a key here in the change that introduces it.
NEUTRAL_DEFAULTS: dict[str, Any] = {"task.ensemble": "mean_probabilities",
                                     "task.crop_seconds": None, "model.normalize": None,
                                     "model.normalize_scope": "window",
                                     "probe.weighted_sum_layers": "all", "probe.weighted_sum_init": "uniform",
                                     "trainer.batch_unit": "rows", "trainer.lr_decay_rule": "suite",
                                     "trainer.lr_decay_threshold": 0.0, "trainer.stop_on_non_finite": False,
                                     "task.f_aggregation": "mean"}
# The top-level config key that holds the content fingerprint of a dataset the user defines (a custom task's
# manifest: its sha256), set by :func:`with_dataset_fingerprint`. Absent for built-in tasks, whose splits are the
# manifests committed with the suite: their checksums (and record names) are those of records written before it.
FINGERPRINT_KEY = "dataset_fingerprint"


def recorded_protocol(section: Any) -> dict[str, Any] | None:
    """The part of a config's protocol section that defines the run (None for the default protocol, whose runs
    keep the checksums and file names of runs made before protocols existed)."""
    if not isinstance(section, dict) or section.get("name", DEFAULT_PROTOCOL) == DEFAULT_PROTOCOL:
        return None
    return {k: section[k] for k in PROTOCOL_RECORD_KEYS if k in section}


def protocol_fields(config: dict[str, Any]) -> dict[str, Any]:
    """The settings that define a run's result (see PROTOCOL_SECTIONS), with the process layout set to the values
    of configs written before it existed and neutral-default keys dropped, so records from before and after
    those keys group together."""
    fields = {k: config[k] for k in PROTOCOL_SECTIONS if k in config}
    protocol = recorded_protocol(fields.pop("protocol", None))
    if protocol is not None:
        fields["protocol"] = protocol
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
    if isinstance(fields.get("model"), dict):
        fields["model"] = {k: v for k, v in fields["model"].items() if k not in EXECUTION_MODEL_KEYS}
    for dotted, neutral in NEUTRAL_DEFAULTS.items():
        group, _, key = dotted.partition(".")
        section = fields.get(group)
        if isinstance(section, dict) and key in section and section[key] == neutral:
            fields[group] = {k: v for k, v in section.items() if k != key}
    fingerprint = config.get(FINGERPRINT_KEY)
    if fingerprint is not None and isinstance(fields.get("task"), dict):
        # Inside the task section: it says which dataset was measured, like the task's name, so the leaderboard's
        # protocol groups (everything but task, model and seed) stay shared with the built-in tasks.
        fields["task"] = {**fields["task"], FINGERPRINT_KEY: fingerprint}
    return fields


def dataset_fingerprint(task_cfg: dict[str, Any]) -> str | None:
    """The content fingerprint of the dataset a task config defines, or None when the suite ships its definition.

    Why: a custom task is defined by a file the user edits in place (``task.manifest``); keyed by its path alone,
    a run after the labels changed found the earlier record and skipped. A task class says what defines its data
    with ``content_fingerprint()`` (read from disk, cheap); built-in tasks have none. A task that cannot be built or
    a manifest that is missing gives None here: the run itself then stops with its own message.
    """
    from benchmark.tasks.registry import build_task

    try:
        task = build_task(task_cfg)
    except (KeyError, ValueError):  # reported by the run, which builds the same task first
        return None
    fingerprint = getattr(task, "content_fingerprint", None)
    return fingerprint() if callable(fingerprint) else None


def with_dataset_fingerprint(config: dict[str, Any]) -> dict[str, Any]:
    """``config`` with its dataset's fingerprint (:data:`FINGERPRINT_KEY`) when its task has one, else as it is.

    A config that already holds the key (a record's config) keeps it: a record's name and checksum are computed
    from what the record says, never from the files on disk today.
    """
    if FINGERPRINT_KEY in config or not isinstance(config.get("task"), dict):
        return config
    fingerprint = dataset_fingerprint(config["task"])
    return config if fingerprint is None else {**config, FINGERPRINT_KEY: fingerprint}


def run_checksum(config: dict[str, Any]) -> str:
    """Checksum of the settings that define a run's result (file locations and process layout excluded)."""
    return config_checksum(protocol_fields(config))


def record_path(results_dir: Path, config: dict[str, Any]) -> Path:
    """Where a run's record lives: deterministic, so a repeated run finds its earlier record (and a run of an
    edited custom manifest does not: its fingerprint is part of the checksum)."""
    name = f"seed{config['seed']}-{run_checksum(with_dataset_fingerprint(config))[:10]}.json"
    return Path(results_dir) / "runs" / config["task"]["name"] / config["model"]["name"] / name


def sweep_checkpoint_path(record: Path) -> Path:
    """The probe sweep's checkpoint of the run whose record is ``record``: next to it and keyed by it."""
    return record.with_name(record.stem + ".sweep.ckpt")


def tidy_run_files(record: Path) -> None:
    """Remove what interrupted runs of this record left: temporaries of dead writers and, once the record exists,
    its sweep checkpoint (a run killed between writing the record and deleting the checkpoint)."""
    remove_dead_temporaries(record)
    if record.exists():
        sweep_checkpoint_path(record).unlink(missing_ok=True)


def write_record(path: Path, record: dict[str, Any]) -> None:
    """Write the record atomically; a failed write leaves no temporary and a full disk names the folder."""
    text = json.dumps(record, indent=2, sort_keys=False, default=_jsonable)
    with committing(path, temporary_name(path), needed_bytes=len(text.encode())):
        atomic_write_text(path, text)


def _jsonable(value: Any) -> Any:
    if hasattr(value, "tolist"):
        return value.tolist()
    if isinstance(value, Path):
        return str(value)
    raise TypeError(f"cannot serialise {type(value).__name__}")
