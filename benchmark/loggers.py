"""Watching a run: the Lightning logger that ``logger=`` names, and the callback that logs a sweep's curves.

Why a module of its own: the sweep trains every layer's head (x learning rates) and the weighted-sum heads in one
LightningModule, whose own ``self.log`` gives one training loss for all of them. What a researcher watches is per
head: each head's validation score, how many heads still train, where the weighted sums put their weight. A
Lightning Callback reads those from the module after each epoch's validation, so neither the probe nor the sweep
knows about logging. TensorBoard and wandb are optional extras: only the package of the logger chosen is imported,
and a missing one is refused before any data is read (:func:`check_logging`), not after hours of extraction.

Logs are execution output, like the console: the logger settings are outside the protocol checksum
(``record.PROTOCOL_SECTIONS``), so changing ``logger=`` never reruns a finished run nor finds another's record.
Under DDP every rank computes the same scores (validation predictions are gathered); rank zero alone writes logs.
"""
from __future__ import annotations

import importlib
import re
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Mapping

import lightning as L

from benchmark.config_store import typed_section
from benchmark.distributed import SINGLE_PROCESS, Ranks
from benchmark.errors import ConfigError
from benchmark.schema import LoggerSpec, WandbLoggerSpec

if TYPE_CHECKING:
    from benchmark.probe import LayerSweepProbe

# Every value here is logged once per epoch, so Lightning's per-step interval does not apply: its warning that an
# epoch has fewer batches than that interval says nothing a benchmark user can act on.
warnings.filterwarnings("ignore", message=r".*is smaller than the logging interval Trainer\(log_every_n_steps.*")

# The modules a logger needs beyond Lightning (the first is also the name of its extra in pyproject.toml).
_EXTRA_MODULES: dict[str, tuple[str, ...]] = {"tensorboard": ("tensorboard", "torch.utils.tensorboard"),
                                              "wandb": ("wandb",)}
VERSION_PREFIX = "version_"


def logger_spec(config: Mapping[str, Any]) -> LoggerSpec | None:
    """The run's logger settings, checked against their schema; None for ``logger=none`` or a config without a
    logger section (one built in code: such a run writes no log file, as runs did before loggers existed)."""
    section = config.get("logger")
    if section is None:
        return None
    if not isinstance(section, Mapping):
        raise ConfigError(f"logger={section!r}: expected a logger config; choose one with logger=NAME (csv, "
                          "tensorboard, wandb, none)")
    spec = typed_section("logger", section)
    return None if spec.name == "none" else spec


def log_root(config: Mapping[str, Any]) -> Path:
    """``log_dir`` (default ``<results_dir>/logs``): the folder that holds every run's log folder."""
    return Path(config.get("log_dir") or Path(config["results_dir"]) / "logs")


def run_log_folder(config: Mapping[str, Any], record: Path) -> Path:
    """``<log_dir>/<task>/<model>/<record name>``: named as the run's record, so each leads to the other. Every
    attempt at the run (a rerun with ``force=true``, a resume after Ctrl-C) writes a ``version_<n>`` inside."""
    return log_root(config) / str(config["task"]["name"]) / str(config["model"]["name"]) / Path(record).stem


def next_version(folder: Path) -> int:
    """The first ``version_<n>`` number after those already in ``folder`` (0 in a new folder)."""
    taken = [int(m.group(1)) for p in (folder.iterdir() if folder.is_dir() else [])
             if (m := re.fullmatch(rf"{VERSION_PREFIX}(\d+)", p.name)) and p.is_dir()]
    return max(taken, default=-1) + 1


def check_logging(config: Mapping[str, Any]) -> LoggerSpec | None:
    """The run's logger settings (None: no logger), or the ConfigError naming the fix when the logger's package is
    not installed (TensorBoard and wandb are extras). Called with the other checks of the config, before any data
    is read (:func:`benchmark.run_checks.check_config`, which also checks that ``log_dir`` can be written)."""
    spec = logger_spec(config)
    if spec is None:
        return None
    for module in _EXTRA_MODULES.get(spec.name, ()):
        try:
            importlib.import_module(module)
        except ImportError as exc:
            extra = _EXTRA_MODULES[spec.name][0]
            raise ConfigError(
                f"logger={spec.name} needs the {extra} package, which cannot be imported here ({exc}). Install the "
                f"extra: pip install -e \".[{extra}]\" in the suite's checkout (or pip install {extra}), or choose "
                "another logger: logger=csv (the default, no extra package) or logger=none.") from None
    return spec


@dataclass
class RunLogging:
    """What a run hands the sweep's trainer to be watched, and where the files go (``folder``, a version folder)."""

    folder: Path
    about: str  # how to look at the logs, for the console line
    loggers: list[Any] = field(default_factory=list)
    callbacks: list[L.Callback] = field(default_factory=list)


def run_logging(config: Mapping[str, Any], record: Path, ranks: Ranks = SINGLE_PROCESS) -> RunLogging | None:
    """The logger ``config`` names for the run whose record is ``record``, with its callback; None when nothing is
    to be written: ``logger=none``, no logger section, or a rank other than zero (it creates no file)."""
    spec = logger_spec(config)
    if spec is None or not ranks.is_zero:
        return None
    root = run_log_folder(config, record)
    version = next_version(root)
    logger, about = _BUILDERS[spec.name](spec, root, version, config)
    hparams = {**{k: v for k, v in config.items() if not str(k).startswith("_")}, "record": str(record)}
    return RunLogging(folder=root / f"{VERSION_PREFIX}{version}", about=about, loggers=[logger],
                      callbacks=[SweepCurves(hparams)])


def _csv(spec: LoggerSpec, root: Path, version: int, config: Mapping[str, Any]) -> tuple[Any, str]:
    from lightning.pytorch.loggers import CSVLogger

    return CSVLogger(save_dir=root.parent, name=root.name, version=version), "CSV: metrics.csv, rows by epoch"


def _tensorboard(spec: LoggerSpec, root: Path, version: int, config: Mapping[str, Any]) -> tuple[Any, str]:
    from lightning.pytorch.loggers import TensorBoardLogger

    logger = TensorBoardLogger(save_dir=root.parent, name=root.name, version=version, default_hp_metric=False)
    return logger, f"TensorBoard: tensorboard --logdir {log_root(config)}"


def _wandb(spec: LoggerSpec, root: Path, version: int, config: Mapping[str, Any]) -> tuple[Any, str]:
    import wandb
    from lightning.pytorch.loggers import WandbLogger

    assert isinstance(spec, WandbLoggerSpec)
    folder = root / f"{VERSION_PREFIX}{version}"
    folder.mkdir(parents=True, exist_ok=True)  # wandb writes into an existing folder only
    task, model = config["task"]["name"], config["model"]["name"]
    extra = {} if spec.entity is None else {"entity": spec.entity}
    # mode= goes to wandb.init: WandbLogger(offline=True) would set WANDB_MODE for the whole process, and a later
    # run in it (a multirun, a notebook) would stay offline. silent: wandb's banner and its end-of-run summary of
    # every logged series would bury the suite's own lines.
    logger = WandbLogger(name=f"{task}/{model}/{root.name}", project=spec.project, save_dir=str(folder),
                         mode=spec.mode, group=f"{task}/{model}", settings=wandb.Settings(silent=True), **extra)
    if spec.mode == "offline":
        return logger, f"wandb offline, project {spec.project}: upload with wandb sync {folder / 'wandb'}/offline-run-*"
    return logger, f"wandb online, project {spec.project}"


_BUILDERS: dict[str, Callable[[LoggerSpec, Path, int, Mapping[str, Any]], tuple[Any, str]]] = {
    "csv": _csv, "tensorboard": _tensorboard, "wandb": _wandb}


class SweepCurves(L.Callback):
    """After every epoch's validation, logs to each of the trainer's loggers:

    - ``valid/<head>`` (e.g. ``valid/layer_3@lr=0.001``): every head's validation score on the primary metric,
      the values ``module.history`` (and the record's ``valid_history``) holds, at full precision;
    - ``heads_training``: how many heads have not stopped early yet;
    - ``layer_weights/<head>/state_<k>``: each weighted-sum head's softmax weight of hidden state ``k`` (they sum
      to 1 per head).

    Logged at the step of Lightning's own epoch-level ``train_loss`` (the epoch's last optimizer step), with the
    epoch, so all curves share one x axis. When training starts it logs the run's config (and record path) as the
    loggers' hyperparameters. Rank zero only: every rank holds the same scores.
    """

    def __init__(self, hparams: Mapping[str, Any]) -> None:
        self.hparams = dict(hparams)
        self._logged = 0  # epochs of module.history already logged (a resumed sweep starts with some)
        self._finished = False

    def on_train_start(self, trainer: L.Trainer, module: LayerSweepProbe) -> None:
        """After Lightning's own (empty) hyperparameters, which TensorBoard would otherwise show instead."""
        self._logged = len(module.history)  # after a resume: the epochs restored from the checkpoint
        if trainer.is_global_zero:
            for logger in trainer.loggers:
                logger.log_hyperparams({**self.hparams, "primary_metric": module.primary})

    def on_train_epoch_end(self, trainer: L.Trainer, module: LayerSweepProbe) -> None:  # after validation
        if trainer.sanity_checking or not trainer.is_global_zero or len(module.history) <= self._logged:
            return
        self._logged = len(module.history)
        metrics: dict[str, float] = {**epoch_metrics(module), "epoch": trainer.current_epoch}
        for logger in trainer.loggers:
            logger.log_metrics(metrics, step=max(trainer.global_step - 1, 0))

    def on_exception(self, trainer: L.Trainer, module: LayerSweepProbe, exception: BaseException) -> None:
        self._finish_wandb(trainer, exit_code=1)

    def teardown(self, trainer: L.Trainer, module: LayerSweepProbe, stage: str) -> None:
        self._finish_wandb(trainer, exit_code=0)

    def _finish_wandb(self, trainer: L.Trainer, exit_code: int) -> None:
        """End the wandb run this trainer's WandbLogger started: a later run in the same process (a multirun, a
        notebook) would otherwise be logged into it, as Lightning reuses an active wandb run."""
        if self._finished or not trainer.is_global_zero:
            return
        self._finished = True
        from lightning.pytorch.loggers import WandbLogger

        for logger in trainer.loggers:
            run = getattr(logger, "_experiment", None) if isinstance(logger, WandbLogger) else None
            if run is not None:  # None: the run never started (nothing was logged)
                run.finish(exit_code=exit_code)


def epoch_metrics(module: LayerSweepProbe) -> dict[str, float]:
    """The values :class:`SweepCurves` logs for the module's last validated epoch (see there)."""
    metrics = {f"valid/{head.name}": float(score) for head, score in zip(module.heads, module.history[-1])}
    metrics["heads_training"] = int((~module.stopped).sum())
    weighted = [head for head in module.heads if head.layer is None]
    if weighted:
        for head, weights in zip(weighted, module.layer_weights()):
            metrics.update({f"layer_weights/{head.name}/state_{k}": float(w) for k, w in enumerate(weights)})
    return metrics
