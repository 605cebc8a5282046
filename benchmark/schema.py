"""The run spec's types: Hydra structured configs that every composed config is checked against.

Why: a run config used to be an untyped dict, checked by hand in several places, so ``seed=abc`` or
``model.batch_size=x`` surfaced as a traceback deep in a run. Every config file now starts from one of these
dataclasses (its ``defaults:`` names ``/schema/<group>/<kind>@_here_``), so Hydra refuses a value of the wrong
type, or a key the schema does not have, while composing, naming the key. Values that have the right type but
cannot work (a negative seed, ``batch_size=0``) are refused by the ``__post_init__`` checks below when
:func:`benchmark.config_store.validate_run_config` turns the composed config into these objects, before any data
is read.

Where values live: the YAML files hold every value a user reads and edits; these classes hold the types, and the
defaults of keys a config file may leave out (``None`` = "the code's default", e.g. ``window_seconds: null`` is the
encoder's context). Probe and trainer settings are :mod:`benchmark.settings` (their defaults are tested equal to the
config files). A task or encoder kind declares its schema next to its code (``register_task(kind,
schema=...)``, ``register_encoder(kind, schema=...)``), so adding one touches its own module and config only.

Adding a key: give it a neutral default here and list it in ``record.NEUTRAL_DEFAULTS`` (or make it an execution
key), so finished runs keep their protocol checksum.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, List, Optional

from omegaconf import MISSING

from benchmark.errors import ConfigError
from benchmark.precision import check_dtype_name


def require(condition: bool, key: str, value: Any, rule: str) -> None:
    """Raise the one-paragraph ConfigError a user sees for a setting that has the right type but cannot work."""
    if not condition:
        raise ConfigError(f"{key}={value!r}: {rule}")


@dataclass
class RunSpec:
    """The top level of ``configs/config.yaml`` (the ``run`` and ``extract`` commands)."""

    seed: int = 0
    layers: Any = "all"
    data_root: str = "datasets"
    cache_dir: str = "cache"
    results_dir: str = "results"
    num_workers: int = 1
    device: str = "auto"
    force: bool = False
    max_missing_fraction: float = 0.01
    verify_checksums: bool = True
    allow_duplicate_audio: bool = False
    shard_tracks: int = 64
    task: Any = MISSING
    model: Any = MISSING
    probe: Any = MISSING
    trainer: Any = MISSING
    protocol: Any = None  # configs/protocol/<name>.yaml: which recipe the run follows (sweep | marble)
    # configs/logger/<name>.yaml: where the probe sweep's curves go (LoggerSpec); a config built in code without
    # it logs nothing. Like log_dir, an execution setting: outside the protocol checksum (record.PROTOCOL_SECTIONS).
    logger: Any = MISSING
    log_dir: str = "${results_dir}/logs"  # logs in <log_dir>/<task>/<model>/<record name>/version_<n>/

    def __post_init__(self) -> None:
        require(self.seed >= 0, "seed", self.seed, "must be a whole number >= 0 (it seeds the probe heads' "
                "initialisation and data order; seed=0,1,2 with -m runs several)")
        require(self.num_workers >= 0, "num_workers", self.num_workers,
                "must be >= 0 (DataLoader processes decoding audio; 0 decodes in the main process)")
        require(self.shard_tracks >= 1, "shard_tracks", self.shard_tracks,
                "must be >= 1 (tracks committed to the cache together; default 64)")
        require(0.0 <= self.max_missing_fraction <= 1.0, "max_missing_fraction", self.max_missing_fraction,
                "must be in [0, 1] (default 0.01)")
        require(bool(self.device.strip()), "device", self.device, "use auto, cpu, cuda or cuda:N")


LOGGERS: dict[str, str] = {
    "csv": "metrics.csv in the run's log folder (the default; no extra package)",
    "tensorboard": "TensorBoard event files in the run's log folder (needs pip install -e \".[tensorboard]\")",
    "wandb": "a Weights & Biases run, offline by default, in the run's log folder (needs pip install -e \".[wandb]\")",
    "none": "no log files (the console's epoch lines and the record only)",
}
"""``logger=``: where a run's training curves go (benchmark/loggers.py builds the Lightning logger)."""

WANDB_MODES: dict[str, str] = {
    "offline": "files only, uploaded later with `wandb sync` (the default; no account or network needed)",
    "online": "streamed to the wandb server as the run trains (needs `wandb login`)",
}


@dataclass
class LoggerSpec:
    """``logger.*``: which Lightning logger watches a run. An execution setting, never part of the protocol
    checksum or the record's name: changing it neither reruns a finished run nor finds another run's record."""

    name: str = MISSING

    def __post_init__(self) -> None:
        if self.name not in LOGGERS:
            known = "; ".join(f"{name} = {about}" for name, about in LOGGERS.items())
            raise ConfigError(f"logger.name={self.name!r}: must be one of {', '.join(LOGGERS)} ({known}); choose "
                              "one with logger=NAME")


@dataclass
class WandbLoggerSpec(LoggerSpec):
    """``logger=wandb``: the project the runs are filed under, and whether they are uploaded as they train."""

    project: str = "mir-probe-benchmark"
    mode: str = "offline"  # one of WANDB_MODES
    entity: Optional[str] = None  # the wandb user or team; None = the account's default

    def __post_init__(self) -> None:
        super().__post_init__()
        require(bool(self.project.strip()), "logger.project", self.project, "must name a wandb project")
        if self.mode not in WANDB_MODES:
            known = "; ".join(f"{name} = {about}" for name, about in WANDB_MODES.items())
            raise ConfigError(f"logger.mode={self.mode!r}: must be one of {', '.join(WANDB_MODES)} ({known})")


LOGGER_SCHEMAS: dict[str, type[LoggerSpec]] = {"csv": LoggerSpec, "tensorboard": LoggerSpec,
                                                "wandb": WandbLoggerSpec, "none": LoggerSpec}
"""The schema each ``configs/logger/<name>.yaml`` starts from (``/schema/logger/<name>@_here_``)."""


@dataclass
class TaskSpec:
    """Keys every task config has: the registry kind, and how audio is cut into encoder windows."""

    name: str = MISSING
    kind: str = MISSING
    window_seconds: Optional[float] = None  # None = the encoder's pretraining context
    hop_seconds: Optional[float] = None  # None = the window (no overlap)

    def __post_init__(self) -> None:
        for key in ("window_seconds", "hop_seconds"):
            value = getattr(self, key)
            require(value is None or value > 0, f"task.{key}", value,
                    "must be a positive number of seconds, or null for the default (the encoder's pretraining "
                    "context; hop = the window)")


@dataclass
class WindowedTaskSpec(TaskSpec):
    """A task on recordings longer than a window: a trailing part shorter than this fraction of one is dropped;
    ``crop_seconds`` windows only the first seconds of each clip (MARBLE v1's EMO: 30 of 45 s)."""

    window_min_fraction: Optional[float] = None  # None = 0.5
    crop_seconds: Optional[float] = None  # None = the whole clip (record.NEUTRAL_DEFAULTS)

    def __post_init__(self) -> None:
        super().__post_init__()
        value = self.window_min_fraction
        require(value is None or 0.0 <= value <= 1.0, "task.window_min_fraction", value,
                "must be in [0, 1] (default 0.5)")
        require(self.crop_seconds is None or self.crop_seconds > 0, "task.crop_seconds", self.crop_seconds,
                "must be a positive number of seconds (only the clip's first seconds are windowed), or null "
                "for the whole clip")


BEAT_F_AGGREGATIONS: dict[str, str] = {
    "mean": "the mean over tracks of each track's F-measure (f_measure; the suite's metric and the default)",
    "pooled": "matches, estimates and references summed over the split's tracks, then one F (f_measure_pooled; "
              "MARBLE v1's GTZAN beat metric)",
}
"""``task.f_aggregation`` of a beat task: how per-track beat matches become the split's primary F-measure."""


def check_f_aggregation(value: Any) -> str:
    """``value`` if it is a known ``task.f_aggregation``; else the ConfigError naming the key and every value.

    Checked by the schema while the config is validated (before any data is read) and again where the evaluator
    is built, for configs that were never validated (a record's, a test's dict)."""
    if value not in BEAT_F_AGGREGATIONS:
        known = "; ".join(f"{name} = {about}" for name, about in BEAT_F_AGGREGATIONS.items())
        raise ConfigError(f"task.f_aggregation={value!r}: must be one of {', '.join(BEAT_F_AGGREGATIONS)} ({known})")
    return value


@dataclass
class BeatDecoderSpec(TaskSpec):
    """A beat-tracking task: how frame activations become beat times (benchmark/beat_decode.py)."""

    decoder: str = "dbn"
    min_bpm: float = 55.0
    max_bpm: float = 215.0
    transition_lambda: float = 100.0
    peak_threshold: float = 0.3
    meters: List[int] = field(default_factory=lambda: [2, 3, 4])
    eval_skip_seconds: float = 0.0
    f_aggregation: str = "mean"  # one of BEAT_F_AGGREGATIONS: which beat F-measure is the primary metric
    # decoder and tempo range are checked with their fix when the evaluator is built, before any data is read
    # (benchmark.frame_level.DecoderConfig)

    def __post_init__(self) -> None:
        super().__post_init__()
        check_f_aggregation(self.f_aggregation)


@dataclass
class SynthTaskSpec(TaskSpec):
    """A synthetic task rendered offline: every key below is a generator parameter (it is the dataset's identity),
    except ``render_workers`` (processes rendering in parallel, None = one per core up to 8; an execution key)."""

    seed: int = 0
    clip_seconds: float = 3.0
    sample_rate: int = 22050
    n_train: int = MISSING
    n_valid: int = MISSING
    n_test: int = MISSING
    render_workers: Optional[int] = None

    def __post_init__(self) -> None:
        super().__post_init__()
        require(self.seed >= 0, "task.seed", self.seed, "must be a whole number >= 0 (the generator's seed)")
        require(self.clip_seconds > 0.5, "task.clip_seconds", self.clip_seconds, "must be > 0.5")
        require(self.sample_rate >= 8000, "task.sample_rate", self.sample_rate, "must be >= 8000 Hz")
        for split in ("train", "valid", "test"):
            value = getattr(self, f"n_{split}")
            require(value >= 0, f"task.n_{split}", value, "must be >= 0 clips")
        require(self.render_workers is None or self.render_workers >= 0, "task.render_workers",
                self.render_workers, "must be >= 0 (0 = one per core) or null")


NORMALIZE_SCOPES: dict[str, str] = {
    "window": "each encoder window is z-normalised on its own statistics (the default)",
    "file": "each decoded file (after task.crop_seconds) is z-normalised once, then cut into windows (MARBLE v1)",
}
"""``model.normalize_scope``: what one waveform z-normalisation covers, when the model normalises at all."""


def check_normalize_scope(value: Any) -> str:
    """``value`` if it is a known ``model.normalize_scope``; else the ConfigError naming the key and every value.

    Checked by the schema and again where a MERT encoder is built, for configs that were never validated (a
    record's, a test's dict): an unknown scope silently read as ``window`` would mislabel the features."""
    if value not in NORMALIZE_SCOPES:
        known = "; ".join(f"{name} = {about}" for name, about in NORMALIZE_SCOPES.items())
        raise ConfigError(f"model.normalize_scope={value!r}: must be one of {', '.join(NORMALIZE_SCOPES)} ({known})")
    return value


@dataclass
class ModelSpec:
    """Keys every model config has: the registry kind and how the encoder is run."""

    name: str = MISSING
    kind: str = MISSING
    batch_size: int = MISSING
    dtype: str = "fp32"
    context_seconds: Optional[float] = None
    # Waveform z-normalisation: null = the model's own setting (a MERT snapshot's preprocessor_config.json);
    # true/false override it (protocol=marble sets MARBLE's per-model flag). Encoders without such a step refuse a
    # value other than null.
    normalize: Optional[bool] = None
    # What one z-normalisation covers (NORMALIZE_SCOPES): each encoder window (the default) or each whole decoded
    # file once, before windowing (MARBLE v1). Only meaningful while normalisation is on.
    normalize_scope: str = "window"

    def __post_init__(self) -> None:
        require(self.batch_size >= 1, "model.batch_size", self.batch_size,
                "must be >= 1 (encoder windows per forward pass; lower it if memory runs out)")
        check_normalize_scope(self.normalize_scope)
        check_dtype_name(self.dtype)
        require(self.context_seconds is None or self.context_seconds > 0, "model.context_seconds",
                self.context_seconds, "must be a positive number of seconds, or null for the model's own")
