"""Checks of a run's settings and of the task/encoder pair, made before any data is read.

Why a module of its own: every refusal a user can meet before the first file is decoded is here, in the order the
runner applies them (config alone, then the task and encoder once built), so the runner only orchestrates.
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import torch

from benchmark.audio import WindowSpec
from benchmark.config_store import validate_run_config
from benchmark.distributed import distributed_settings
from benchmark.encoders.base import Encoder
from benchmark.errors import ConfigError, storage_error_message
from benchmark.loggers import check_logging, log_root
from benchmark.sweep import check_sweep_config, parse_layers
from benchmark.tasks.base import Task


def compute_device(name: str) -> torch.device:
    """``auto`` = the first CUDA device when there is one, else the CPU; ``cpu`` / ``cuda[:N]`` as given."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(name)


def encoder_device(config: dict[str, Any]) -> torch.device:
    """Where the encoder of a run computes: ``device`` for one process; with ``trainer.devices`` > 1 the kind of
    device Lightning gives each process (``trainer.accelerator``; ``auto`` = CUDA when there is one)."""
    settings = distributed_settings(config.get("trainer") or {})
    if settings.world_size == 1:
        return compute_device(str(config.get("device", "auto")))
    if settings.accelerator == "auto":
        return compute_device("auto")
    return torch.device("cuda" if settings.accelerator in ("gpu", "cuda") else "cpu")


def window_spec(task_cfg: dict[str, Any], encoder: Encoder) -> WindowSpec:
    """The task's window/hop, defaulting to the encoder's pretraining context and non-overlapping windows.

    ``task.crop_seconds`` (windowed tasks; null = the whole clip) becomes ``WindowSpec.crop``, so the feature
    cache, which is keyed by the spec, tells cropped features from whole-clip ones.
    """
    window = task_cfg.get("window_seconds") or encoder.context_seconds
    hop = task_cfg.get("hop_seconds") or window
    min_fraction = task_cfg.get("window_min_fraction")
    crop = task_cfg.get("crop_seconds")
    return WindowSpec(window=float(window), hop=float(hop),
                      min_fraction=0.5 if min_fraction is None else float(min_fraction),
                      crop=None if crop is None else float(crop))


def check_config(config: dict[str, Any]) -> None:
    """Refuse settings that cannot work from the config alone, before the task, encoder or data are touched.

    Why: a run spends minutes to hours reading data and running the encoder; a typo such as ``probe.lr=[]``,
    ``trainer.max_epochs=0`` or a negative window must fail in the first second with the key and the fix.
    """
    validate_run_config(config)  # types and ranges of every key the schemas know (benchmark/schema.py)
    check_sweep_config(config["probe"], config["trainer"])
    distributed_settings(config["trainer"])
    parse_layers(config.get("layers", "all"), config["probe"])
    data_root = Path(config["data_root"])
    if data_root.exists() and not data_root.is_dir():
        raise ConfigError(f"data_root={data_root} is a file, not a folder: datasets live in <data_root>/<task "
                          "name>/. Point data_root at a folder (default: datasets under the current directory).")
    device = str(config.get("device", "auto"))
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise ConfigError(f"device={device}: this machine has no CUDA device torch can use. Use device=auto "
                          "(the GPU when there is one, else the CPU) or device=cpu.")
    for key in ("cache_dir", "results_dir"):
        check_writable_folder(key, Path(config[key]))
    if check_logging(config) is not None:  # logger=tensorboard / wandb without its extra is refused here
        check_writable_folder("log_dir", log_root(config))


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
    if spec.crop is not None and int(round(spec.crop * encoder.sample_rate)) < encoder.min_samples:
        raise ConfigError(
            f"task.crop_seconds={spec.crop:g} keeps less than the receptive field of {encoder.name} "
            f"({receptive_ms:.1f} ms): the encoder returns no frame for such a clip. Set task.crop_seconds to at "
            f"least {encoder.min_samples / encoder.sample_rate:.3f}, or null for the whole clip.")
    if task.level != "frame" and spec.min_fraction * window < encoder.min_samples:
        raise ConfigError(
            f"task.window_min_fraction={spec.min_fraction:g} keeps trailing windows down to "
            f"{spec.min_fraction * spec.window * 1000:.1f} ms, shorter than the receptive field of {encoder.name} "
            f"({receptive_ms:.1f} ms). Raise task.window_min_fraction to at least "
            f"{encoder.min_samples / window:.3f} or task.window_seconds.")
