"""Train a layer sweep with Lightning and turn it into per-layer scores and a validation-only selection.

Every "best" here (the progress line, the learning rate per layer, the reported layer) is in the direction of the
primary metric, as its kind declares it (:class:`benchmark.kinds.Metric`), like the probe's own early stopping.
"""
from __future__ import annotations

import contextlib
import logging
import os
import warnings
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator

import lightning as L
import numpy as np
import torch
from lightning.pytorch.plugins import TorchCheckpointIO
from torch.utils.data import BatchSampler, DataLoader, Dataset, Sampler

from benchmark.cache import SplitFeatures
from benchmark.distributed import SINGLE_PROCESS, DistributedSettings, Ranks, chunk_bounds
from benchmark.errors import ConfigError  # noqa: F401  (re-exported: benchmark.sweep.ConfigError)
from benchmark.evaluation import Evaluator
from benchmark.interrupt import lightning_interrupts
from benchmark.kinds.base import Metric, metric
from benchmark.kinds.losses import Loss, get_loss
from benchmark.probe import (LR_DECAY_RULES, WEIGHTED_SUM_INITS, WEIGHTED_SUM_LAYERS, HeadSpec, LayerSweepProbe,
                             make_heads)
from benchmark.settings import ProbeSettings, TrainerSettings
from benchmark.storage import committing, remove_dead_temporaries, temporary_name

log = logging.getLogger(__name__)
# Lightning's start-up banner (GPU/TPU availability, tips) says nothing a benchmark user needs.
logging.getLogger("lightning.pytorch.utilities.rank_zero").setLevel(logging.WARNING)
logging.getLogger("lightning.pytorch.accelerators.cuda").setLevel(logging.WARNING)
# Lightning 2.6 on torch 2.14 warns about torch's own pytree API at every fit; nothing a user can act on.
warnings.filterwarnings("ignore", message=r".*isinstance\(treespec, LeafSpec\).*")
# Under DDP every rank logs the same epoch values (computed from gathered predictions): nothing to synchronise.
warnings.filterwarnings("ignore", message=r".*when logging on epoch level in distributed setting.*")


@dataclass(frozen=True)
class BatchPart:
    """The rows of one training batch that this process computes: ``rows`` (sorted) start at position
    ``start`` of a global batch of ``total`` rows (a lone process gets the whole batch: start 0, all rows)."""

    rows: list[int]
    start: int
    total: int


class WindowBatches(Dataset):
    """Whole batches read from the (memory-mapped) feature array with one sorted fancy index each.

    Training batches arrive as :class:`BatchPart` and also return ``[start, total]``: the probe needs them to
    draw the dropout masks of the whole global batch and to scale its loss (see ``LayerSweepProbe``).
    """

    def __init__(self, features: np.ndarray, window_targets: np.ndarray) -> None:
        self.features, self.targets = features, window_targets

    def __len__(self) -> int:
        return len(self.targets)

    def __getitem__(self, item: "list[int] | BatchPart") -> tuple[torch.Tensor, ...]:
        indices = item.rows if isinstance(item, BatchPart) else item
        idx = np.sort(np.asarray(indices, dtype=np.int64))
        x = torch.from_numpy(np.asarray(self.features[idx], dtype=np.float32))  # [0, S, D] for an empty part
        y = torch.from_numpy(self.targets[idx])
        if isinstance(item, BatchPart):
            return x, y, torch.tensor([item.start, item.total])
        return x, y


def feature_statistics(features: np.ndarray, chunk: int = 4096) -> tuple[np.ndarray, np.ndarray]:
    """Per-(layer, dim) mean and std over training windows, streamed in chunks; std of constant dims is 1."""
    n = len(features)
    total = np.zeros(features.shape[1:], np.float64)
    total_sq = np.zeros(features.shape[1:], np.float64)
    for s in range(0, n, chunk):
        block = np.asarray(features[s:s + chunk], dtype=np.float64)
        total += block.sum(0)
        total_sq += (block ** 2).sum(0)
    mean = total / max(n, 1)
    std = np.sqrt(np.maximum(total_sq / max(n, 1) - mean ** 2, 0.0))
    std[std < 1e-6] = 1.0
    return mean.astype(np.float32), std.astype(np.float32)


class EpochShuffledBatches(Sampler[BatchPart]):
    """Random batches whose order depends only on (seed, epoch), each split between the ranks of a DDP run.

    Why not a RandomSampler with a generator: its generator state is not part of a Lightning checkpoint, so a
    resumed run would draw other batches than an uninterrupted one. Lightning calls :meth:`set_epoch` before each
    epoch (also after resuming), and the permutation is a pure function of the seed and that epoch.

    Why not Lightning's DistributedSampler: it gives each rank its own batches, so N processes would train on
    other batches (of other sizes) than one process. Here every rank draws the same global batch, sorts it, and
    keeps its contiguous part (:func:`~benchmark.distributed.chunk_bounds`); the ranks' gradients, summed by DDP,
    are those of the whole batch, whatever the number of processes.

    With ``groups`` (``trainer.batch_unit=tracks``: the rows of each track, see :func:`track_rows`) the permutation
    and the batches are of groups, and a batch holds every row of its ``batch_size`` groups, as MARBLE v1's
    collate stacks every window of each file. Without, each row is its own group.
    """

    def __init__(self, num_rows: int, batch_size: int, seed: int, rank: int = 0, world_size: int = 1,
                 groups: list[np.ndarray] | None = None) -> None:
        self.num_rows, self.batch_size, self.seed, self.epoch = num_rows, batch_size, seed, 0
        self.rank, self.world_size = rank, world_size
        self.groups = groups
        self.num_units = num_rows if groups is None else len(groups)

    def set_epoch(self, epoch: int) -> None:
        self.epoch = int(epoch)

    def __len__(self) -> int:
        return (self.num_units + self.batch_size - 1) // self.batch_size

    def __iter__(self) -> Iterator[BatchPart]:
        g = torch.Generator().manual_seed(zlib.crc32(f"{self.seed}:epoch{self.epoch}".encode()))
        order = torch.randperm(self.num_units, generator=g).tolist()
        for start in range(0, self.num_units, self.batch_size):
            units = order[start:start + self.batch_size]
            batch = sorted(units) if self.groups is None else \
                np.sort(np.concatenate([self.groups[u] for u in units])).tolist()
            lo, hi = chunk_bounds(len(batch), self.world_size)[self.rank]
            yield BatchPart(batch[lo:hi], lo, len(batch))


def track_rows(row_track: np.ndarray) -> list[np.ndarray]:
    """The row indices of each track (``row_track[i]``: the track of row ``i``), for the tracks that have rows, in
    track order: the groups of a ``batch_unit=tracks`` batch. Rows of a track need not be contiguous."""
    row_track = np.asarray(row_track, dtype=np.int64)
    order = np.argsort(row_track, kind="stable")
    tracks, starts = np.unique(row_track[order], return_index=True)
    return [order[a:b] for a, b in zip(starts, [*starts[1:], len(order)])] if len(tracks) else []


class SweepCheckpoint(L.Callback):
    """Saves the whole sweep (weights, optimizer, loops, selection state) after every epoch, atomically.

    Written to a temporary name and renamed, so an interruption at any moment leaves the previous complete
    checkpoint; the run deletes it once its record is written. A failed write removes its temporary, and a full
    or read-only disk stops the run with a message naming the folder, its free space and the checkpoint's size.
    ``saved_epochs`` counts the epochs the file on disk holds (for the message of an interrupted run).
    """

    def __init__(self, path: Path, tag: str) -> None:
        self.path, self.tag = Path(path), tag
        self.saved_epochs = 0

    def on_save_checkpoint(self, trainer, module, checkpoint: dict) -> None:
        checkpoint["sweep_tag"] = self.tag

    def on_train_start(self, trainer: L.Trainer, module: LayerSweepProbe) -> None:
        """After a resume: stop at once when every head had already stopped.

        Why: the module stops training by setting ``trainer.should_stop`` once every head stopped, and Lightning
        does not save that flag. A run resumed from the checkpoint of its last epoch (killed while scoring or
        writing the record) trained one more, empty epoch and appended its validation scores to the history, so
        its record differed from an uninterrupted run's.
        """
        self.saved_epochs = len(module.history)
        if module.history and bool(module.stopped.all()):
            trainer.should_stop = True

    def on_train_epoch_end(self, trainer: L.Trainer, module: LayerSweepProbe) -> None:
        if trainer.sanity_checking:
            return
        self.path.parent.mkdir(parents=True, exist_ok=True)
        # One name for every rank: Lightning writes on rank 0 only, but every rank must call save_checkpoint.
        tmp = temporary_name(self.path, trainer.strategy.broadcast(os.getpid()))
        guard = (committing(self.path, tmp, _checkpoint_bytes(self.path, module)) if trainer.is_global_zero
                 else contextlib.nullcontext())
        with guard:
            trainer.save_checkpoint(tmp, weights_only=False)  # the full state: optimizer and loops too
            if trainer.is_global_zero:
                os.replace(tmp, self.path)
        self.saved_epochs = len(module.history)
        trainer.strategy.barrier()


def _checkpoint_bytes(previous: Path, module: torch.nn.Module) -> int:
    """The size a sweep checkpoint needs: the previous one's, else four copies of the module's tensors (weights,
    Adam's two moments and the best weights kept per head)."""
    try:
        return previous.stat().st_size
    except OSError:
        return 4 * sum(t.numel() * t.element_size() for t in module.state_dict().values())


class DirectCheckpointIO(TorchCheckpointIO):
    """Writes a checkpoint straight to the path it is given (``torch.save``).

    Why: Lightning's default writes through an fsspec transaction whose temporary file lives in the system's
    temporary folder (``tempfile.mkstemp``) before it is copied over: a ``kill -9`` or a full disk there leaves a
    file no run of this suite can name. Here the only temporary is :class:`SweepCheckpoint`'s ``.tmp<pid>`` next
    to the record, which the next run of the same command removes.

    Written through a Python file, not a path: torch's zip writer reports a failed write to a path as a bare
    ``RuntimeError`` ("unexpected pos"), losing the ``OSError`` that says the disk is full.
    """

    def save_checkpoint(self, checkpoint: dict[str, Any], path, storage_options: Any = None) -> None:
        with open(path, "wb") as file:
            try:
                torch.save(checkpoint, file)
            except RuntimeError as exc:  # a failed file.write() reaches us as the RuntimeError's context
                if isinstance(exc.__context__, OSError):
                    raise exc.__context__ from exc
                raise


def _stopped_at(trainer: L.Trainer, saver: SweepCheckpoint | None) -> str:
    """Where an interrupted sweep stopped and what its checkpoint keeps (for the Ctrl-C message)."""
    where = f"probe training at epoch {trainer.current_epoch} (of at most {trainer.max_epochs})"
    if saver is None:
        return f"{where}; no checkpoint is kept, so training starts over"
    if saver.saved_epochs == 0 or not saver.path.exists():
        return f"{where}; no epoch had finished, so training starts over (checkpoint {saver.path})"
    return f"{where}; the checkpoint {saver.path} holds its first {saver.saved_epochs} epoch(s)"


def resumable_checkpoint(path: Path | None, tag: str) -> Path | None:
    """``path`` when it holds a checkpoint of this very sweep (same tag), else None (a stale one is deleted)."""
    if path is None or not Path(path).exists():
        return None
    try:
        saved = torch.load(path, map_location="cpu", weights_only=True).get("sweep_tag")
    except Exception:  # unreadable: start over
        saved = None
    if saved != tag:
        Path(path).unlink(missing_ok=True)
        return None
    return Path(path)


class EpochReport(L.Callback):
    """A progress line every ``every`` epochs and whenever heads stop: the best head so far and how many train."""

    def __init__(self, console, every: int = 5) -> None:
        self.console, self.every, self._active = console, every, None

    def on_train_epoch_end(self, trainer: L.Trainer, module: LayerSweepProbe) -> None:  # after validation
        if trainer.sanity_checking or not module.history:
            return
        epoch, active = len(module.history) - 1, int((~module.stopped).sum())
        if epoch % self.every and active == self._active:
            return
        self._active = active
        best = module.selection.best_index(module.best_score)
        self.console.print(
            f"epoch {epoch:3d}: best valid {module.primary} {module.best_score[best]:.4f} "
            f"({module.heads[best].name}); {active}/{len(module.heads)} heads training", highlight=False)


@dataclass
class HeadResult:
    head: HeadSpec
    best_epoch: int
    valid: dict[str, float]
    test: dict[str, float]


WEIGHTED_SUM_ONLY = "weighted_sum"  # layers=weighted_sum: train the weighted-sum heads alone


def parse_layers(layers: Any, probe_cfg: dict[str, Any] | None = None) -> list[int] | str | None:
    """``layers=`` as given: ``None`` for ``all``, ``"weighted_sum"`` for the weighted sum alone, else the non-empty
    list of distinct indices it names.

    Checked before the encoder exists, so ``layers=[]`` or ``layers=abc`` fails in a second, not after the data
    check; the range is checked by :func:`resolve_layers` once the encoder's depth is known. With ``probe_cfg``,
    ``layers=weighted_sum`` with ``probe.weighted_sum=false`` (no head at all) is refused too.
    """
    if layers is None or layers == "all":
        return None
    if layers == WEIGHTED_SUM_ONLY:
        if probe_cfg is not None and not ProbeSettings.from_config(probe_cfg).weighted_sum:
            raise ConfigError("layers=weighted_sum trains only the weighted-sum heads, but probe.weighted_sum=false "
                              "turns them off; set probe.weighted_sum=true, or layers=all / an index")
        return WEIGHTED_SUM_ONLY
    items = list(layers) if isinstance(layers, (list, tuple)) else [layers]
    chosen = []
    for x in items:
        if isinstance(x, bool) or not isinstance(x, (int, str)) or not str(x).lstrip("-").isdigit():
            raise ConfigError(f"layers={layers!r}: expected all, weighted_sum, a hidden-state index or a list of "
                              "indices (e.g. layers=all, layers=weighted_sum, layers=6, layers=[3,7])")
        chosen.append(int(x))
    if not chosen:
        raise ConfigError("layers=[] selects no hidden state; use layers=all or list at least one index")
    if len(set(chosen)) != len(chosen):
        raise ConfigError(f"layers={chosen} lists a hidden state twice; list each index once")
    return chosen


def resolve_layers(layers: Any, num_states: int) -> tuple[list[int], bool]:
    """The hidden states the features must hold, and whether the weighted sum is trained.

    ``layers=all`` -> every hidden state plus the weighted sum; ``weighted_sum`` -> every hidden state (the sum
    mixes them; the same features as ``all``) and the sum; an int or list restricts the sweep to those states.
    Which heads are trained on them is :func:`sweep_heads`.
    """
    chosen = parse_layers(layers)
    if chosen is None:
        return list(range(num_states)), num_states > 1  # a weighted sum of one state is that state
    if chosen == WEIGHTED_SUM_ONLY:
        if num_states < 2:
            raise ConfigError("layers=weighted_sum: this encoder has a single hidden state, nothing to weigh; use "
                              "layers=all or layers=0")
        return list(range(num_states)), True
    bad = [x for x in chosen if not 0 <= x < num_states]
    if bad:
        raise ConfigError(f"layers={bad} out of range: this encoder has hidden states 0..{num_states - 1} "
                          f"(0 = the input embedding); use layers=all or indices in that range")
    return chosen, False


def sweep_heads(layers: Any, states: list[int], with_sum: bool, probe_cfg: dict[str, Any]) -> list[HeadSpec]:
    """The heads a run trains on the hidden states ``states`` (from :func:`resolve_layers`): one per state and
    learning rate, plus the weighted sum when it is trained, or (``layers=weighted_sum``, MARBLE's ``layer: all``)
    the weighted-sum heads alone, so the record and the selection hold the weighted sum only."""
    probe = ProbeSettings.from_config(probe_cfg)
    only_sum = parse_layers(layers, probe_cfg) == WEIGHTED_SUM_ONLY
    return make_heads([] if only_sum else states, with_sum and bool(probe.weighted_sum), probe.learning_rates)


def _number(value: Any) -> float | None:
    """``value`` as a finite float, or None when it is not one (bools and strings are not numbers here)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not np.isfinite(value):
        return None
    return float(value)


# trainer.batch_unit: what trainer.batch_size counts.
BATCH_UNITS = {
    "rows": "windows (frame-level tasks: frames), the suite's default",
    "tracks": "tracks, each with all its windows (frames): MARBLE v1's batches of files",
}
FP16_PRECISIONS = ("16-mixed", "16")  # Lightning's names of fp16 automatic mixed precision ("16" is the old one)


def _check_choice(key: str, value: Any, choices: dict[str, str]) -> None:
    """Refuse a value outside ``choices`` (None = the key is not set: its default), naming each allowed value."""
    if value is not None and value not in choices:
        allowed = "; ".join(f"{name} = {about}" for name, about in choices.items())
        raise ConfigError(f"{key}={value!r}: must be one of {', '.join(choices)} ({allowed})")


def _check_schedule(trainer_cfg: dict[str, Any]) -> None:
    """The schedule rule's keys: a known rule, a threshold >= 0 that only reduce_on_plateau reads, a boolean."""
    rule = trainer_cfg.get("lr_decay_rule")
    _check_choice("trainer.lr_decay_rule", rule, LR_DECAY_RULES)
    threshold = trainer_cfg.get("lr_decay_threshold")
    if threshold is not None and (_number(threshold) is None or threshold < 0):
        raise ConfigError(f"trainer.lr_decay_threshold={threshold!r}: must be a number >= 0 (torch's default: 1e-4)")
    if threshold and rule in (None, "suite"):
        raise ConfigError(f"trainer.lr_decay_threshold={threshold!r} is read only by "
                          "trainer.lr_decay_rule=reduce_on_plateau (the suite rule counts strictly better scores); "
                          "set both, or lr_decay_threshold=0")
    finite = trainer_cfg.get("stop_on_non_finite")
    if finite is not None and not isinstance(finite, bool):
        raise ConfigError(f"trainer.stop_on_non_finite={finite!r}: must be true or false")


def _probes_on_cpu(trainer_cfg: dict[str, Any]) -> bool:
    """Whether the probes would train on a CPU: ``trainer.accelerator=cpu``, or no CUDA device torch can use."""
    return str(trainer_cfg.get("accelerator", "auto")) == "cpu" or not torch.cuda.is_available()


def check_precision(trainer_cfg: dict[str, Any]) -> None:
    """Refuse fp16 mixed precision where the probes would run on a CPU, before any data is read.

    Why: Lightning refuses it only once the trainer is built, after the features were extracted; and the user
    who sets it is reproducing MARBLE, so the message says what MARBLE did and the CPU choices.
    """
    precision = trainer_cfg.get("precision")
    if str(precision) in FP16_PRECISIONS and _probes_on_cpu(trainer_cfg):
        raise ConfigError(
            f"trainer.precision={precision}: fp16 automatic mixed precision needs a CUDA GPU, and the probes would "
            "run on the CPU here (no CUDA device, or trainer.accelerator=cpu). MARBLE v1 trained in fp16 AMP on "
            "GPU; on a CPU use trainer.precision=bf16-mixed (bfloat16 autocast, the closest) or "
            "trainer.precision=32-true.")


def check_sweep_config(probe_cfg: dict[str, Any], trainer_cfg: dict[str, Any], require_lr: bool = True) -> None:
    """Refuse probe and trainer settings that cannot train, before any feature is computed.

    Why here: ``probe.lr=[]`` used to surface as a torch error deep in the first training step and
    ``trainer.max_epochs=0`` as a record of untrained probes, both after the encoder had run over the dataset.
    ``require_lr=False`` is for :func:`train_sweep`, whose heads carry their learning rates.
    """
    if require_lr or "lr" in probe_cfg:
        lrs = probe_cfg.get("lr")
        items = list(lrs) if isinstance(lrs, (list, tuple)) else [lrs]
        if not items:
            raise ConfigError("probe.lr=[] gives no learning rate to train; set one or more, e.g. "
                              "probe.lr=[1e-3] or probe.lr=[1e-4,1e-3]")
        bad = [x for x in items if _number(x) is None or _number(x) <= 0]
        if bad:
            raise ConfigError(f"probe.lr={lrs!r}: learning rates must be positive numbers, got {bad}; "
                              "e.g. probe.lr=[1e-3]")
        if len(set(map(float, items))) != len(items):
            raise ConfigError(f"probe.lr={lrs!r} lists a learning rate twice; list each once")
    positive_ints = {"max_epochs": "trainer.max_epochs=100", "batch_size": "trainer.batch_size=64"}
    for key, example in positive_ints.items():
        value = trainer_cfg.get(key)
        if value is not None and (_number(value) is None or value != int(value) or value < 1):
            raise ConfigError(f"trainer.{key}={value!r}: must be a whole number >= 1 (e.g. {example})")
    for key in ("patience", "lr_decay_patience"):
        value = trainer_cfg.get(key)
        if value is not None and (_number(value) is None or value != int(value) or value < 0):
            raise ConfigError(f"trainer.{key}={value!r}: must be a whole number >= 0")
    factor = trainer_cfg.get("lr_decay_factor")
    if factor is not None and (_number(factor) is None or not 0 < factor < 1):
        raise ConfigError(f"trainer.lr_decay_factor={factor!r}: must be between 0 and 1 (e.g. 0.5)")
    _check_choice("probe.weighted_sum_layers", probe_cfg.get("weighted_sum_layers"), WEIGHTED_SUM_LAYERS)
    _check_choice("probe.weighted_sum_init", probe_cfg.get("weighted_sum_init"), WEIGHTED_SUM_INITS)
    _check_choice("trainer.batch_unit", trainer_cfg.get("batch_unit"), BATCH_UNITS)
    _check_schedule(trainer_cfg)
    check_precision(trainer_cfg)
    dropout = probe_cfg.get("dropout")
    if dropout is not None and (_number(dropout) is None or not 0 <= dropout < 1):
        raise ConfigError(f"probe.dropout={dropout!r}: must be in [0, 1)")
    hidden = probe_cfg.get("hidden")
    if hidden is not None and (_number(hidden) is None or hidden != int(hidden) or hidden < 0):
        raise ConfigError(f"probe.hidden={hidden!r}: must be a whole number >= 0 (0 = linear, e.g. probe.hidden=512)")


def _train_sampler(train: SplitFeatures, num_rows: int, settings: TrainerSettings, seed: int,
                   ranks: Ranks) -> EpochShuffledBatches:
    """The training batches: ``batch_size`` rows, or ``batch_size`` tracks with all their rows (``batch_unit``)."""
    groups = None
    if settings.batch_unit == "tracks":
        if len(train.window_track) != num_rows:
            raise ValueError(f"{num_rows} training targets for {len(train.window_track)} training rows: "
                             "batch_unit=tracks needs the track of every row")
        groups = track_rows(train.window_track)
    return EpochShuffledBatches(num_rows, int(settings.batch_size), seed, ranks.rank, ranks.world_size, groups)


def train_sweep(
    splits: dict[str, SplitFeatures],
    train_targets: np.ndarray,
    evaluators: dict[str, Evaluator],
    loss: "str | Loss",
    num_outputs: int,
    heads: list[HeadSpec],
    probe_cfg: dict[str, Any],
    trainer_cfg: dict[str, Any],
    seed: int,
    console=None,
    state_ids: list[int] | None = None,
    checkpoint: Path | None = None,
    checkpoint_tag: str = "",
    ranks: Ranks = SINGLE_PROCESS,
    distributed: DistributedSettings | None = None,
    loggers: list[Any] | None = None,
    callbacks: list[L.Callback] | None = None,
) -> tuple[list[HeadResult], LayerSweepProbe]:
    """Train every head together, then score each head's best-on-validation weights on valid and test.

    ``train_targets`` holds one target per training row (window or frame); ``evaluators`` score the ``valid``
    and ``test`` rows; ``loss`` is the kind's loss (or its name). Validation drives early stopping and checkpoints
    (in the direction of the valid evaluator's primary metric); test is scored once, at the end.
    With ``checkpoint``, the sweep is saved there after every epoch and, when a checkpoint with the same
    ``checkpoint_tag`` exists, resumed from it (the result equals an uninterrupted run's: batches and dropout masks
    are seeded per epoch). The caller deletes the checkpoint once the result is safely stored.

    With several processes (``ranks``, inside :func:`benchmark.distributed.launch`) every rank calls this:
    Lightning's DDP trains the heads on each rank's part of every global batch, and validation and test
    predictions are gathered from all ranks before they are scored, so every rank takes the same selection
    decisions and the metrics are those of the whole split.

    ``loggers`` and ``callbacks`` (:mod:`benchmark.loggers`, rank zero only) watch the training; without them the
    trainer logs nothing.
    """
    check_sweep_config(probe_cfg, trainer_cfg, require_lr=False)
    if not heads:
        raise ConfigError("no probe head to train (no layer and no learning rate selected)")
    if any(_number(h.lr) is None or h.lr <= 0 for h in heads):
        raise ConfigError(f"probe heads need positive learning rates, got {sorted({h.lr for h in heads})}")
    probe, settings = ProbeSettings.from_config(probe_cfg), TrainerSettings.from_config(trainer_cfg)
    L.seed_everything(seed, workers=True, verbose=False)
    train, valid = splits["train"], splits["valid"]
    mean, std = feature_statistics(train.features) if probe.standardize else (
        np.zeros(train.features.shape[1:], np.float32), np.ones(train.features.shape[1:], np.float32))
    row_targets = train_targets.astype(get_loss(loss).target_dtype)
    model = LayerSweepProbe(
        heads=heads, num_states=train.features.shape[1], dim=train.features.shape[2], num_outputs=num_outputs,
        loss=loss, evaluator=evaluators["valid"], feature_mean=mean, feature_std=std,
        hidden=int(probe.hidden), dropout=float(probe.dropout), patience=int(settings.patience),
        lr_decay_patience=int(settings.lr_decay_patience), lr_decay_factor=float(settings.lr_decay_factor),
        weight_decay=float(probe.weight_decay), seed=seed, state_ids=state_ids,
        lr_decay_rule=str(settings.lr_decay_rule), lr_decay_threshold=float(settings.lr_decay_threshold),
        stop_on_non_finite=bool(settings.stop_on_non_finite),
        weighted_sum_layers=str(probe.weighted_sum_layers), weighted_sum_init=str(probe.weighted_sum_init),
    )
    train_loader = DataLoader(
        WindowBatches(train.features, row_targets),
        sampler=_train_sampler(train, len(row_targets), settings, seed, ranks), batch_size=None,
    )
    if len(valid.window_track) < ranks.world_size:
        raise ConfigError(f"{len(valid.window_track)} validation rows for {ranks.world_size} processes: every "
                          "process needs at least one; use fewer (trainer.devices, trainer.num_nodes)")
    valid_lo, valid_hi = chunk_bounds(len(valid.window_track), ranks.world_size)[ranks.rank]
    valid_targets_windows = np.zeros(len(valid.window_track), np.float32)  # unused by validation_step
    valid_loader = DataLoader(
        WindowBatches(valid.features, valid_targets_windows),
        sampler=BatchSampler(range(valid_lo, valid_hi), 1024, False), batch_size=None,
    )
    if ranks.world_size > 1:  # join the process group of benchmark.distributed.launch (no new processes)
        layout = distributed or DistributedSettings(devices=ranks.world_size)
        from lightning.pytorch.strategies import DDPStrategy

        placement = {"accelerator": layout.accelerator, "devices": layout.devices,
                     "num_nodes": layout.num_nodes, "use_distributed_sampler": False,
                     "strategy": DDPStrategy(cluster_environment=ranks.cluster_environment)}
    else:
        placement = {"accelerator": settings.accelerator, "devices": 1}
    saver = SweepCheckpoint(checkpoint, checkpoint_tag) if checkpoint is not None else None
    trainer = L.Trainer(
        max_epochs=int(settings.max_epochs),
        **placement,
        precision=settings.precision,
        deterministic=bool(settings.deterministic),
        logger=list(loggers) if loggers else False, enable_checkpointing=False, enable_model_summary=False,
        enable_progress_bar=bool(settings.progress_bar),
        num_sanity_val_steps=0,
        callbacks=([EpochReport(console)] if console is not None and ranks.is_zero else [])
        + ([saver] if saver is not None else []) + list(callbacks or []),
        plugins=[DirectCheckpointIO()],
    )
    if checkpoint is not None and ranks.is_zero:
        remove_dead_temporaries(checkpoint)  # what a killed or failed earlier attempt left
    resume = resumable_checkpoint(checkpoint, checkpoint_tag)
    if resume is not None and console is not None and ranks.is_zero:
        console.print(f"resuming the probe sweep from {resume}")
    with lightning_interrupts(lambda: _stopped_at(trainer, saver)):
        # weights_only=True: the checkpoint holds tensors and plain containers only, so nothing in it can run code.
        trainer.fit(model, train_loader, valid_loader, ckpt_path=resume, weights_only=True)
    model.restore_best()
    model.cpu()
    metrics = {}
    for split in ("valid", "test"):  # each rank predicts its part of the split; all predictions are then scored
        features = splits[split].features
        lo, hi = chunk_bounds(len(features), ranks.world_size)[ranks.rank]
        metrics[split] = evaluators[split](ranks.gather_rows(model.predict_rows(features[lo:hi])))
    results = [HeadResult(head=head, best_epoch=int(model.best_epoch[h]), valid=metrics["valid"][h],
                          test=metrics["test"][h]) for h, head in enumerate(heads)]
    return results, model


@dataclass
class LayerRow:
    """The best learning rate of one layer (or of the weighted sum), chosen on validation."""

    layer: int | None
    lr: float
    best_epoch: int
    valid: dict[str, float]
    test: dict[str, float]

    @property
    def name(self) -> str:
        return "weighted_sum" if self.layer is None else str(self.layer)


def summarise(results: list[HeadResult], primary: "str | Metric") -> tuple[list[LayerRow], LayerRow]:
    """Collapse the learning-rate grid per layer and pick the selected row, both on validation on ``primary``.

    ``primary`` is a :class:`~benchmark.kinds.Metric` or a metric name a registered kind declares (its direction
    is looked up; ``KeyError`` for an unknown name): a lower-is-better metric selects the minimum.
    """
    selection = primary if isinstance(primary, Metric) else metric(primary)
    name = selection.name
    by_layer: dict[int | None, HeadResult] = {}
    for r in results:
        current = by_layer.get(r.head.layer)
        if current is None or selection.better(r.valid[name], current.valid[name]):
            by_layer[r.head.layer] = r
    rows = [LayerRow(r.head.layer, r.head.lr, r.best_epoch, r.valid, r.test) for r in by_layer.values()]
    rows.sort(key=lambda row: (row.layer is None, row.layer or 0))
    selected = selection.best(rows, key=lambda row: row.valid[name])  # the first best: the shallowest on ties
    return rows, selected
