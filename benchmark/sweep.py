"""Train a layer sweep with Lightning and turn it into per-layer scores and a validation-only selection."""
from __future__ import annotations

import logging
import warnings
from dataclasses import dataclass
from typing import Any

import lightning as L
import numpy as np
import torch
from torch.utils.data import BatchSampler, DataLoader, Dataset, RandomSampler, SequentialSampler

from benchmark.cache import SplitFeatures
from benchmark.evaluation import Evaluator
from benchmark.probe import HeadSpec, LayerSweepProbe, make_heads

log = logging.getLogger(__name__)
# Lightning's start-up banner (GPU/TPU availability, tips) says nothing a benchmark user needs.
logging.getLogger("lightning.pytorch.utilities.rank_zero").setLevel(logging.WARNING)
logging.getLogger("lightning.pytorch.accelerators.cuda").setLevel(logging.WARNING)
# Lightning 2.6 on torch 2.14 warns about torch's own pytree API at every fit; nothing a user can act on.
warnings.filterwarnings("ignore", message=r".*isinstance\(treespec, LeafSpec\).*")


class _WindowBatches(Dataset):
    """Whole batches read from the (memory-mapped) feature array with one sorted fancy index each."""

    def __init__(self, features: np.ndarray, window_targets: np.ndarray) -> None:
        self.features, self.targets = features, window_targets

    def __len__(self) -> int:
        return len(self.targets)

    def __getitem__(self, indices: list[int]) -> tuple[torch.Tensor, torch.Tensor]:
        idx = np.sort(np.asarray(indices))
        x = torch.from_numpy(np.asarray(self.features[idx], dtype=np.float32))
        return x, torch.from_numpy(self.targets[idx])


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
        best = int(np.argmax(module.best_score))
        self.console.print(
            f"epoch {epoch:3d}: best valid {module.primary} {module.best_score[best]:.4f} "
            f"({module.heads[best].name}); {active}/{len(module.heads)} heads training", highlight=False)


@dataclass
class HeadResult:
    head: HeadSpec
    best_epoch: int
    valid: dict[str, float]
    test: dict[str, float]


def resolve_layers(layers: Any, num_states: int) -> tuple[list[int], bool]:
    """``layers=all`` -> every hidden state plus the weighted sum; an int or list restricts the sweep."""
    if layers in (None, "all"):
        return list(range(num_states)), num_states > 1  # a weighted sum of one state is that state
    chosen = [int(layers)] if isinstance(layers, (int, str)) else [int(x) for x in layers]
    bad = [x for x in chosen if not 0 <= x < num_states]
    if bad:
        raise ValueError(f"layers={bad} out of range: this encoder has hidden states 0..{num_states - 1}")
    return chosen, False


def train_sweep(
    splits: dict[str, SplitFeatures],
    train_targets: np.ndarray,
    evaluators: dict[str, Evaluator],
    loss: str,
    num_outputs: int,
    heads: list[HeadSpec],
    probe_cfg: dict[str, Any],
    trainer_cfg: dict[str, Any],
    seed: int,
    console=None,
    state_ids: list[int] | None = None,
) -> tuple[list[HeadResult], LayerSweepProbe]:
    """Train every head together, then score each head's best-on-validation weights on valid and test.

    ``train_targets`` holds one target per training row (window or frame); ``evaluators`` score the ``valid``
    and ``test`` rows. Validation drives early stopping and checkpoints; test is scored once, at the end.
    """
    L.seed_everything(seed, workers=True, verbose=False)
    train, valid = splits["train"], splits["valid"]
    mean, std = feature_statistics(train.features) if probe_cfg.get("standardize", True) else (
        np.zeros(train.features.shape[1:], np.float32), np.ones(train.features.shape[1:], np.float32))
    row_targets = train_targets.astype(np.int64 if loss == "cross_entropy" else np.float32)
    model = LayerSweepProbe(
        heads=heads, num_states=train.features.shape[1], dim=train.features.shape[2], num_outputs=num_outputs,
        loss=loss, evaluator=evaluators["valid"], feature_mean=mean, feature_std=std,
        hidden=int(probe_cfg.get("hidden", 512)), dropout=float(probe_cfg.get("dropout", 0.2)),
        patience=int(trainer_cfg.get("patience", 10)),
        lr_decay_patience=int(trainer_cfg.get("lr_decay_patience", 0)),
        lr_decay_factor=float(trainer_cfg.get("lr_decay_factor", 0.5)),
        weight_decay=float(probe_cfg.get("weight_decay", 0.0)), seed=seed, state_ids=state_ids,
    )
    batch_size = int(trainer_cfg.get("batch_size", 64))
    generator = torch.Generator().manual_seed(seed)
    train_loader = DataLoader(
        _WindowBatches(train.features, row_targets),
        sampler=BatchSampler(RandomSampler(range(len(row_targets)), generator=generator), batch_size, False),
        batch_size=None,
    )
    valid_targets_windows = np.zeros(len(valid.window_track), np.float32)  # unused by validation_step
    valid_loader = DataLoader(
        _WindowBatches(valid.features, valid_targets_windows),
        sampler=BatchSampler(SequentialSampler(range(len(valid.window_track))), 1024, False), batch_size=None,
    )
    trainer = L.Trainer(
        max_epochs=int(trainer_cfg.get("max_epochs", 100)),
        accelerator=trainer_cfg.get("accelerator", "auto"),
        devices=trainer_cfg.get("devices", 1),
        precision=trainer_cfg.get("precision", "32-true"),
        deterministic=bool(trainer_cfg.get("deterministic", True)),
        logger=False, enable_checkpointing=False, enable_model_summary=False,
        enable_progress_bar=bool(trainer_cfg.get("progress_bar", True)),
        num_sanity_val_steps=0,
        callbacks=[EpochReport(console)] if console is not None else [],
    )
    trainer.fit(model, train_loader, valid_loader)
    model.restore_best()
    model.cpu()
    metrics = {split: evaluators[split](model.predict_rows(splits[split].features)) for split in ("valid", "test")}
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


def summarise(results: list[HeadResult], primary: str) -> tuple[list[LayerRow], LayerRow]:
    """Collapse the learning-rate grid per layer and pick the selected row, both on validation on ``primary``."""
    by_layer: dict[int | None, HeadResult] = {}
    for r in results:
        current = by_layer.get(r.head.layer)
        if current is None or r.valid[primary] > current.valid[primary]:
            by_layer[r.head.layer] = r
    rows = [LayerRow(r.head.layer, r.head.lr, r.best_epoch, r.valid, r.test) for r in by_layer.values()]
    rows.sort(key=lambda row: (row.layer is None, row.layer or 0))
    selected = max(rows, key=lambda row: row.valid[primary])  # first maximum: the shallowest on ties
    return rows, selected
