"""Command line: ``python -m benchmark <command> [hydra overrides]``.

Commands:
    run      probe every layer of ``model=`` on ``task=`` (a Hydra app: ``-m`` sweeps, any override)
    extract  the first stage of ``run`` alone: check the data and fill the feature cache (same overrides; on a
             cluster, one extraction job per task x model before the probe jobs of every seed)
    check    verify a local dataset copy: layout, published checksums, tracks per split (``task=<name>``)
    prepare  fetch a dataset, or print the manual steps where it has no public source (``prepare <task>``)
    embed    write every hidden state of audio files as ``[layers+1, frames, dim]`` float32 ``.npy``
    list     the models and tasks this suite knows, with their key facts
    leaderboard
             mean ± std over seeds per model and task metric from the run records under ``results/`` (or a
             given folder): terminal, markdown (``results/leaderboard.md``, regenerated), csv, latex
             (``tasks=[gtzan,mtt] format=latex out=paper/table.tex``); ``published=marble``, ``by_layer=true``
    plot     per-layer validation/test curves with the learned layer weights per task, and a model x task heat
             map, as PNG and SVG under ``results/plots/`` (``task=<name>``)
"""
from __future__ import annotations

import os
import sys
import time
from pathlib import Path
from typing import Any, Callable

from benchmark.errors import UserError, storage_error_message
from benchmark.interrupt import interrupted_message
from benchmark.resources import config_dir

CONFIG_DIR = config_dir()
USAGE = __doc__ or ""
INTERRUPTED = 130  # the shell's status for a command stopped by Ctrl-C


def _full_errors() -> bool:
    """``HYDRA_FULL_ERROR=1``: show the traceback of user errors too (Hydra's own switch, for one habit)."""
    return os.environ.get("HYDRA_FULL_ERROR") == "1"


def user_error_message(exc: BaseException) -> str | None:
    """The message to print instead of a traceback, or None when ``exc`` is a bug that keeps its traceback."""
    if isinstance(exc, UserError):
        return str(exc)
    if isinstance(exc, OSError):
        return storage_error_message(exc)
    return None


def report_user_errors(job: Callable[[], int]) -> int:
    """Run ``job``; print a user error as ``error: <message>`` (no traceback) and return 1, Ctrl-C as one line.

    Errors a user can fix (:class:`~benchmark.errors.UserError`, a full disk, a folder without write
    permission) are explained by their message; anything else is a bug and propagates with its traceback.
    A Ctrl-C (returned as 130) says where the run stopped and how to resume (:mod:`benchmark.interrupt`).
    """
    try:
        return job()
    except KeyboardInterrupt as exc:
        if _full_errors():
            raise
        print(f"\n{interrupted_message(exc)}", file=sys.stderr)
        return INTERRUPTED
    except Exception as exc:  # noqa: BLE001 - only user errors are handled, the rest is re-raised
        message = user_error_message(exc)
        if message is None or _full_errors():
            raise
        print(f"error: {message}", file=sys.stderr)
        return 1


def register_schemas() -> None:
    """The run spec's types in Hydra's ConfigStore, which the config files' ``defaults:`` lists name."""
    from benchmark.config_store import register_schemas as register

    register()


def _resolved(cfg) -> dict[str, Any]:
    from benchmark.config_store import resolved_config

    return resolved_config(cfg)


def _hydra_app(argv: list[str], job: Callable[[dict[str, Any]], None]) -> int:
    """Run ``job(resolved config)`` as a Hydra app over ``configs/config.yaml``: ``-m`` sweeps, launchers and
    every override work the same for each command built on it."""
    import warnings

    import hydra
    from hydra.core.hydra_config import HydraConfig

    # Our launcher configs carry the plugins' own names (hydra/launcher=submitit_slurm): Hydra validates them
    # against the plugin's schema of that name and says so; they list every field, so nothing depends on it.
    warnings.filterwarnings("ignore", message=r"(?s).*is validated against ConfigStore schema with the same name")

    from hydra.types import RunMode

    failures: list[int] = []

    @hydra.main(version_base="1.3", config_path=str(CONFIG_DIR), config_name="config")
    def _app(cfg) -> None:
        hydra_cfg = HydraConfig.get()
        config = _resolved(cfg)
        config["_overrides"] = list(hydra_cfg.overrides.task)
        config["_multirun"] = hydra_cfg.mode == RunMode.MULTIRUN
        # Handled here, inside the job: Hydra would print any exception from it with a traceback. In a multirun
        # a failed job is reported and the sweep goes on to the next one.
        status = report_user_errors(lambda: job(config) or 0)
        if status == INTERRUPTED:
            raise SystemExit(status)
        if status:
            failures.append(status)

    register_schemas()
    sys.argv = [sys.argv[0], *argv]
    _app()
    return failures[0] if failures else 0


def _run_job(config: dict[str, Any]) -> None:
    from benchmark.config_store import validate_run_config
    from benchmark.console import make_console
    from benchmark.record import record_path, tidy_run_files
    from benchmark.report import print_existing_record
    from benchmark.runner import run

    validate_run_config(config)  # before the record's name is computed from it
    path = record_path(Path(config["results_dir"]), config)
    if path.exists() and not config.get("force"):
        tidy_run_files(path)  # what a run killed after writing this record left
        # a single run shows the result it would have produced; a multirun gives one line per skipped run
        print_existing_record(make_console(), path, table=not config.get("_multirun"))
        return
    run(config)


def _extract_job(config: dict[str, Any]) -> None:
    from benchmark.runner import extract_features

    extract_features(config)


def _run_command(argv: list[str]) -> int:
    return _hydra_app(argv, _run_job)


def _extract_command(argv: list[str]) -> int:
    return _hydra_app(argv, _extract_job)


def _compose(config_name: str, overrides: list[str]):
    from hydra import compose, initialize_config_dir

    register_schemas()
    with initialize_config_dir(config_dir=str(CONFIG_DIR), version_base="1.3"):
        return compose(config_name=config_name, overrides=overrides)


def _task_from_args(argv: list[str]):
    """Compose the run config (``prepare gtzan`` is accepted as a short form of ``prepare task=gtzan``)."""
    from benchmark.tasks.registry import build_task

    if argv and "=" not in argv[0]:
        argv = [f"task={argv[0]}", *argv[1:]]
    config = _resolved(_compose("config", argv))
    return build_task(config["task"]), Path(config["data_root"]), config


def _check_command(argv: list[str]) -> int:
    from benchmark.tasks.base import DatasetMissingError, check_dataset

    task, data_root, config = _task_from_args(argv)
    try:
        tracks = task.tracks(data_root)
    except DatasetMissingError as exc:
        print(exc, file=sys.stderr)
        return 1
    report = check_dataset(task, tracks, data_root, verify_checksums=bool(config.get("verify_checksums", True)))
    print(report.summary())
    return 0 if _protocol_ok(task, tracks, report, config) and report.complete else 1


def _protocol_ok(task, tracks, report, config: dict[str, Any]) -> bool:
    """The protocol checks a run makes before extraction (duplicate audio across splits, classes without training
    examples, ...), on the files present: ``check`` answers "would a run start?" without starting one."""
    from benchmark.console import make_console
    from benchmark.errors import ProtocolError
    from benchmark.protocol_checks import check_protocol
    from benchmark.tasks.base import SPLITS

    missing = {s: set(report.missing.get(s, [])) for s in SPLITS}
    usable = {s: [t for t in tracks if t.split == s and t.track_id not in missing[s]] for s in SPLITS}
    try:
        check_protocol(task, usable, allow_duplicate_audio=bool(config.get("allow_duplicate_audio", False)),
                       train_skipped=len(missing["train"]), console=make_console())
    except ProtocolError as exc:
        print(f"  protocol: {exc}", file=sys.stderr)
        return False
    print("  protocol: OK (no duplicate audio across splits; every class, tag and target learnable from train)")
    return True


def _prepare_command(argv: list[str]) -> int:
    from benchmark.tasks.base import SPLITS

    task, data_root, _ = _task_from_args(argv)
    started = time.perf_counter()
    task.prepare(data_root)
    try:  # say what is there now (a task whose prepare only printed manual steps has nothing to count yet)
        tracks = task.tracks(data_root)
    except (FileNotFoundError, UserError):
        return 0
    present = {s: sum(t.split == s and t.path.is_file() for t in tracks) for s in SPLITS}
    listed = {s: sum(t.split == s for t in tracks) for s in SPLITS}
    shown = " / ".join(f"{s} {present[s]}" + ("" if present[s] == listed[s] else f" of {listed[s]}") for s in SPLITS)
    print(f"{task.name}: {shown} tracks present under {data_root} ({time.perf_counter() - started:.0f} s); "
          f"`python -m benchmark check task={task.name}` verifies them")
    return 0


def _embed_command(argv: list[str]) -> int:
    from benchmark.embed import embed_files

    from benchmark.errors import ConfigError

    config = _resolved(_compose("embed", argv))
    missing = [key for key in ("input", "out") if config.get(key) == "???"]
    if missing:
        raise ConfigError(f"embed needs {' and '.join(f'{k}=' for k in missing)}: e.g. `python -m benchmark embed "
                          f"model=mert-v1-95m input=song.wav out=embeddings/` (input= an audio file or a folder of "
                          f"them, out= the folder for the .npy files)")
    written = embed_files(config)
    print(f"wrote {len(written)} file(s) to {config['out']}")
    return 0


def _list_command(argv: list[str]) -> int:
    from benchmark.catalog import print_catalog

    print_catalog(CONFIG_DIR)
    return 0


def _leaderboard_args(argv: list[str]) -> list[str]:
    """``task=gtzan`` -> ``tasks=[gtzan]`` (``task`` is a run config group), a bare folder -> ``records=<folder>``."""
    out = []
    for arg in argv:
        if arg.startswith("task="):
            value = arg.split("=", 1)[1].strip("[]")
            out.append(f"tasks=[{value}]")
        elif "=" not in arg:
            out.append(f"records={arg}")
        else:
            out.append(arg)
    return out


def _leaderboard_config(argv: list[str]) -> dict[str, Any] | None:
    """The composed ``configs/leaderboard.yaml``; an unknown key is refused with the valid keys listed."""
    from hydra.errors import HydraException
    from omegaconf import OmegaConf

    try:
        return _resolved(_compose("leaderboard", _leaderboard_args(argv)))
    except HydraException as exc:
        keys = OmegaConf.load(CONFIG_DIR / "leaderboard.yaml").keys()
        print(f"{exc}\nvalid keys: {', '.join(map(str, keys))} (and task=<name>)", file=sys.stderr)
        return None


def _leaderboard_command(argv: list[str]) -> int:
    from benchmark.leaderboard import leaderboard_command

    config = _leaderboard_config(argv)
    if config is None:
        return 2
    try:
        leaderboard_command(config, command=" ".join(["python -m benchmark leaderboard", *argv]))
    except (FileNotFoundError, ValueError) as exc:
        print(exc, file=sys.stderr)
        return 1
    return 0


def _plot_command(argv: list[str]) -> int:
    from benchmark.plots import plot_command

    config = _leaderboard_config(argv)
    if config is None:
        return 2
    try:
        plot_command(config)
    except (FileNotFoundError, ValueError) as exc:
        print(exc, file=sys.stderr)
        return 1
    return 0


COMMANDS: dict[str, Callable[[list[str]], int]] = {
    "run": _run_command,
    "extract": _extract_command,
    "check": _check_command,
    "prepare": _prepare_command,
    "embed": _embed_command,
    "list": _list_command,
    "leaderboard": _leaderboard_command,
    "plot": _plot_command,
}


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] in ("-h", "--help", "help"):
        print(USAGE)
        return 0
    command, rest = argv[0], argv[1:]
    if command not in COMMANDS:
        print(f"unknown command {command!r}; valid commands: {', '.join(COMMANDS)}\n\n{USAGE}", file=sys.stderr)
        return 2
    if command in ("run", "extract"):  # Hydra's own app prints its override errors (valid names listed) and exits
        return COMMANDS[command](rest)
    from hydra.errors import HydraException
    from omegaconf.errors import OmegaConfBaseException

    try:
        return report_user_errors(lambda: COMMANDS[command](rest))
    except (HydraException, OmegaConfBaseException) as exc:  # a wrong override: the message, not a traceback
        if _full_errors():
            raise
        print(f"error: {exc}", file=sys.stderr)
        return 2
