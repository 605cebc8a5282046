"""``python -m benchmark list``: every model and task config with its key facts."""
from __future__ import annotations

from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

from benchmark.console import make_console
from benchmark.encoders import build_encoder
from benchmark.resources import config_file_values
from benchmark.tasks.registry import build_task


def model_facts(model_cfg: dict[str, Any]) -> dict[str, Any]:
    """Rate, layers, width, frame rate and context of a model config, without downloading anything.

    m-a-p models are described from their committed architecture files; the offline baselines are cheap to
    build, so they are built and asked.
    """
    if model_cfg["kind"] == "mert":
        from benchmark.encoders.mert import describe_arch

        return describe_arch(model_cfg["arch"], model_cfg.get("context_seconds"))
    if model_cfg["kind"] == "musicnn":  # its weights are a 29 MB wheel: described from the architecture
        from benchmark.encoders.musicnn import describe

        return describe(model_cfg)
    encoder = build_encoder(model_cfg)
    return {"sample_rate": encoder.sample_rate, "num_layers": encoder.num_layers, "dim": encoder.dim,
            "frame_rate": encoder.frame_rate, "context_seconds": encoder.context_seconds}


def model_source(model_cfg: dict[str, Any]) -> str:
    if model_cfg.get("random_init"):
        return f"random init (seed {model_cfg.get('seed', 0)})"
    if model_cfg.get("hub_id"):
        return f"{model_cfg['hub_id']}@{str(model_cfg.get('revision', 'main'))[:10]}"
    if "wheel" in model_cfg:
        return "PyPI wheel (pinned sha256)"
    return "offline"


def load_configs(folder: Path) -> list[dict[str, Any]]:
    return [config_file_values(p) for p in sorted(folder.glob("*.yaml"))]


def print_catalog(config_dir: Path, console: Console | None = None) -> None:
    console = console or make_console()
    models = Table(title="models (model=<name>)")
    for col in ("name", "kind", "source", "rate", "layers x dim", "frames/s", "context"):
        models.add_column(col)
    for cfg in load_configs(config_dir / "model"):
        f = model_facts(cfg)
        models.add_row(cfg["name"], cfg["kind"], model_source(cfg), f"{f['sample_rate'] / 1000:g} kHz",
                       f"{f['num_layers'] + 1} x {f['dim']}", f"{f['frame_rate']:g}", f"{f['context_seconds']:g} s")
    console.print(models)
    tasks = Table(title="tasks (task=<name>)")
    for col in ("name", "type", "outputs", "splits", "metrics", "about"):
        tasks.add_column(col)
    for cfg in load_configs(config_dir / "task"):
        task = build_task(cfg)
        about = (type(task).__doc__ or "").strip().splitlines()[0] if type(task).__doc__ else ""
        tasks.add_row(cfg["name"], task.task_type, str(task.num_outputs), split_sizes(task), metric_names(task),
                      about)
    console.print(tasks)


def split_sizes(task: Any) -> str:
    """``train / valid / test`` sizes of the task's split (its published or committed counts), when fixed."""
    counts = task.expected_counts
    if not counts:
        return "set by its config" if task.task_type != "auto" else "from its CSV"
    return " / ".join(f"{counts[s]:,}" for s in ("train", "valid", "test") if s in counts)


def metric_names(task: Any) -> str:
    """The kind's metrics, the primary one (selection, headline) first and starred."""
    try:
        kind = task.kind
    except ValueError:  # a task whose kind is decided by its data (task=custom: task_type auto)
        return "by its data"
    rest = [m.name for m in kind.metrics if m != kind.primary]
    return ", ".join([f"{kind.primary.name}*", *rest])
