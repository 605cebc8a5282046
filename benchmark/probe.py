"""The layer sweep: probes for every requested layer, a learned weighted sum, and a learning-rate grid, trained
as ONE LightningModule.

Every head sees the same batch in the same step; the heads are stacked along a leading axis and computed with
batched matrix products, so a sweep over 25 layers costs about as much as one probe. Selection (early stopping,
best checkpoint, the chosen layer) reads validation only; test predictions are produced once, after training,
from each head's best-on-validation weights. "Best" is in the direction the primary metric's kind declares
(:mod:`benchmark.kinds`): an error is minimised, a score maximised.
"""
from __future__ import annotations

import math
import zlib
from dataclasses import dataclass

import lightning as L
import numpy as np
import torch

from benchmark.distributed import gather_rows
from benchmark.evaluation import Evaluator
from benchmark.kinds.base import Metric, metric
from benchmark.kinds.losses import Loss, get_loss
from benchmark.optim import HeadwiseAdam


@dataclass(frozen=True)
class HeadSpec:
    """One probe: a layer (or ``None`` for the weighted sum of all layers) trained at one learning rate."""

    layer: int | None
    lr: float

    @property
    def name(self) -> str:
        where = "weighted_sum" if self.layer is None else f"layer_{self.layer}"
        return f"{where}@lr={self.lr:g}"


def make_heads(layers: list[int], weighted_sum: bool, lrs: list[float]) -> list[HeadSpec]:
    """Layer heads first (layer-major), then weighted-sum heads: the order the module stacks them in."""
    heads = [HeadSpec(layer, lr) for layer in layers for lr in lrs]
    if weighted_sum:
        heads += [HeadSpec(None, lr) for lr in lrs]
    return heads


def output_activation(loss: "str | Loss", logits: torch.Tensor) -> torch.Tensor:
    """Turn raw head outputs into the scores that evaluators read (the loss's activation: probabilities, or values
    for regression). Looked up at each call, so tests can wrap it."""
    return get_loss(loss).activation(logits)


def head_losses(loss: "str | Loss", logits: torch.Tensor, target: torch.Tensor,
                reduction: str = "mean") -> torch.Tensor:
    """Per-head loss ``[H]`` for logits ``[H, B, C]`` (see :meth:`benchmark.kinds.losses.Loss.head_losses`)."""
    return get_loss(loss).head_losses(logits, target, reduction)


def _head_generator(seed: int, head: HeadSpec, purpose: str = "init",
                    device: torch.device | str = "cpu") -> torch.Generator:
    """A generator that depends on the seed and the head only, so a head initialises and drops out identically
    whatever other heads share the run: a single-layer probe equals its head in a full sweep."""
    return torch.Generator(device=device).manual_seed(zlib.crc32(f"{seed}:{head.name}:{purpose}".encode()))


class LayerSweepProbe(L.LightningModule):
    """All probe heads of a sweep in one module.

    Args:
        heads: the heads to train (see :func:`make_heads`).
        num_states: hidden states per window (layers + 1).
        dim: feature width.
        num_outputs: classes, tags, regression targets or frame-level activations.
        loss: the kind's :class:`~benchmark.kinds.losses.Loss`, or its name (``cross_entropy``, ``bce``, ``mse``).
        evaluator: scores the validation rows of every head each epoch (selection reads nothing else); its
            ``primary`` metric, with the direction its kind declares, drives every head's best epoch, patience and
            learning-rate halving.
        feature_mean, feature_std: ``[num_states, dim]`` training-set statistics used to standardise inputs.
        hidden: MLP hidden width (0 = linear probe).
        dropout: dropout after the hidden layer.
        patience: epochs without validation improvement before a head stops (its best weights are kept).
        lr_decay_patience, lr_decay_factor: a head's rate is multiplied by the factor after this many epochs
            without improvement (0 disables), as ReduceLROnPlateau would do for a lone probe.
        seed: initialisation and dropout seed.
        state_ids: the hidden-state index of each position of the features' layer axis (default ``0..S-1``;
            frame-level caches hold only the requested layers).
    """

    def __init__(
        self,
        heads: list[HeadSpec],
        num_states: int,
        dim: int,
        num_outputs: int,
        loss: "str | Loss",
        evaluator: Evaluator,
        feature_mean: np.ndarray,
        feature_std: np.ndarray,
        hidden: int = 512,
        dropout: float = 0.2,
        patience: int = 10,
        lr_decay_patience: int = 0,
        lr_decay_factor: float = 0.5,
        weight_decay: float = 0.0,
        seed: int = 0,
        state_ids: list[int] | None = None,
    ) -> None:
        super().__init__()
        self.heads = heads
        self.loss, self.evaluator = get_loss(loss), evaluator
        self.primary = evaluator.primary
        # The direction of "best" for every decision below; KeyError for a metric no kind declares (no guessing).
        self.selection: Metric = metric(self.primary)
        self.hidden, self.dropout_p = hidden, dropout
        self.patience, self.lr_decay_patience, self.lr_decay_factor = patience, lr_decay_patience, lr_decay_factor
        self.weight_decay, self.seed = weight_decay, seed
        H = len(heads)
        layer_heads = [h for h in heads if h.layer is not None]
        self.num_layer_heads = len(layer_heads)
        state_ids = list(range(num_states)) if state_ids is None else list(state_ids)
        self.register_buffer("layer_index", torch.tensor([state_ids.index(h.layer) for h in layer_heads],
                                                         dtype=torch.long))
        self.register_buffer("feature_mean", torch.as_tensor(feature_mean, dtype=torch.float32))
        self.register_buffer("feature_std", torch.as_tensor(feature_std, dtype=torch.float32))
        self.mix_logits = torch.nn.Parameter(torch.zeros(H - self.num_layer_heads, num_states))
        sizes = [(dim, hidden), (hidden, num_outputs)] if hidden > 0 else [(dim, num_outputs)]
        self.weights = torch.nn.ParameterList()
        self.biases = torch.nn.ParameterList()
        for fan_in, fan_out in sizes:
            w, b = torch.empty(H, fan_in, fan_out), torch.empty(H, fan_out)
            bound = 1.0 / math.sqrt(fan_in)
            for i, head in enumerate(heads):
                g = _head_generator(seed, head, "init")
                w[i].uniform_(-bound, bound, generator=g)
                b[i].uniform_(-bound, bound, generator=g)
            self.weights.append(torch.nn.Parameter(w))
            self.biases.append(torch.nn.Parameter(b))
        self.head_lr = torch.tensor([h.lr for h in heads], dtype=torch.float32)
        # per-head selection state, all on validation
        self.best_score = np.full(H, self.selection.worst)
        self.best_epoch = np.full(H, -1)
        self.bad_epochs = np.zeros(H, dtype=int)
        self.stopped = np.zeros(H, dtype=bool)
        self.history: list[list[float]] = []
        self._best_params = [p.detach().clone() for p in self._head_params()]
        self._valid_outputs: list[torch.Tensor] = []
        self._dropout_generators: list[torch.Generator] | None = None
        self._batch_part: tuple[int, int] | None = None  # (start, global rows) of the batch part being trained

    # ----------------------------------------------------------------- model
    def _head_params(self) -> list[torch.nn.Parameter]:
        return [*self.weights, *self.biases, self.mix_logits]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``x`` ``[B, S, D]`` -> raw outputs ``[H, B, C]`` of every head."""
        x = (x - self.feature_mean) / self.feature_std
        z_layers = x[:, self.layer_index].transpose(0, 1)  # [H_layers, B, D]
        mix = self.mix_logits.softmax(-1)  # [H_sum, S]
        z_sum = torch.einsum("hs,bsd->hbd", mix, x)
        z = torch.cat([z_layers, z_sum], dim=0)
        for i, (w, b) in enumerate(zip(self.weights, self.biases)):
            z = torch.baddbmm(b.unsqueeze(1), z, w)
            if i < len(self.weights) - 1:
                z = self._dropout(torch.relu(z))
        return z

    def _dropout(self, z: torch.Tensor) -> torch.Tensor:
        """Inverted dropout with one random stream per head, so no head's masks depend on the others."""
        if not self.training or self.dropout_p == 0.0:
            return z
        if self._dropout_generators is None or self._dropout_generators[0].device != z.device:
            # seeded per epoch, so a run resumed from a checkpoint draws the masks an uninterrupted run draws
            epoch = self.current_epoch if self._trainer is not None else 0
            self._dropout_generators = [_head_generator(self.seed, h, f"dropout:{epoch}", z.device)
                                        for h in self.heads]
        keep = 1.0 - self.dropout_p
        # Masks are drawn for the whole global batch and this process keeps its rows, so that a DDP rank drops
        # exactly what a lone process drops for the same rows (start 0 and total = batch rows without DDP).
        start, total = self._batch_part or (0, z.shape[1])
        shape = (total, *z.shape[2:])
        mask = torch.stack([torch.empty(shape, device=z.device).bernoulli_(keep, generator=g)[start:start + z.shape[1]]
                            for g in self._dropout_generators])
        return z * mask / keep

    def layer_weights(self) -> np.ndarray:
        """Softmax layer weights ``[H_sum, S]`` of the weighted-sum heads."""
        return self.mix_logits.detach().softmax(-1).cpu().numpy()

    # -------------------------------------------------------------- training
    def configure_optimizers(self):
        lr_layer_part = self.head_lr
        groups = [{"params": [*self.weights, *self.biases], "head_lr": lr_layer_part}]
        if self.mix_logits.shape[0]:
            groups.append({"params": [self.mix_logits], "head_lr": self.head_lr[self.num_layer_heads:]})
        return HeadwiseAdam(groups, weight_decay=self.weight_decay)

    def on_train_epoch_start(self) -> None:
        self._dropout_generators = None  # re-seeded for this epoch (see _dropout)

    def on_save_checkpoint(self, checkpoint: dict) -> None:
        """Keep the per-head selection state (best scores, epochs and weights, patience counters, stopped flags,
        validation history) so a resumed sweep selects exactly as an uninterrupted one. The optimizer, with each
        head's current (possibly halved or zeroed) learning rate in its param groups, is saved by Lightning."""
        checkpoint["sweep_selection"] = {
            "best_score": torch.as_tensor(self.best_score, dtype=torch.float64),
            "best_epoch": torch.as_tensor(self.best_epoch, dtype=torch.long),
            "bad_epochs": torch.as_tensor(self.bad_epochs, dtype=torch.long),
            "stopped": torch.as_tensor(self.stopped, dtype=torch.bool),
            "history": [list(map(float, h)) for h in self.history],
            "best_params": [b.detach().cpu().clone() for b in self._best_params],
            "heads": [h.name for h in self.heads],
        }

    def on_load_checkpoint(self, checkpoint: dict) -> None:
        state = checkpoint["sweep_selection"]
        if state["heads"] != [h.name for h in self.heads]:
            raise ValueError("the sweep checkpoint holds other probe heads than this run; delete it")
        self.best_score = state["best_score"].numpy().copy()
        self.best_epoch = state["best_epoch"].numpy().copy()
        self.bad_epochs = state["bad_epochs"].numpy().astype(int)
        self.stopped = state["stopped"].numpy().copy()
        self.history = [list(h) for h in state["history"]]
        self._best_params = [b.clone() for b in state["best_params"]]

    def training_step(self, batch, batch_idx):
        x, y, *part = batch
        world = self.trainer.world_size if self._trainer is not None else 1
        if world == 1:
            losses = head_losses(self.loss, self(x), y)
        else:
            # This rank holds rows [start, start + len(x)) of a global batch of `total` rows. DDP averages the
            # ranks' gradients, so each rank's summed loss is scaled by world / total: together they are the
            # gradient of the mean loss over the whole batch, as in a single-process run.
            start, total = (int(v) for v in part[0].tolist())
            self._batch_part = (start, total)
            try:
                losses = head_losses(self.loss, self(x), y, reduction="sum") * (world / total)
            finally:
                self._batch_part = None
        self.log("train_loss", losses.mean(), prog_bar=True, on_step=False, on_epoch=True, batch_size=max(len(x), 1))
        return losses.sum()

    def validation_step(self, batch, batch_idx):
        x, _ = batch
        self._valid_outputs.append(output_activation(self.loss, self(x)).float().cpu())

    def on_validation_epoch_end(self) -> None:
        if self.trainer.sanity_checking:
            self._valid_outputs.clear()
            return
        row_scores = (torch.cat(self._valid_outputs, dim=1) if self._valid_outputs
                      else torch.zeros(len(self.heads), 0, self.weights[-1].shape[-1]))
        self._valid_outputs.clear()
        if self.trainer.world_size > 1:  # every rank scores all validation rows: identical decisions everywhere
            row_scores = gather_rows(row_scores.to(self.device))
        scores = np.array([metrics[self.primary] for metrics in self.evaluator(row_scores)])
        self.history.append(scores.tolist())
        self._update_selection(scores)
        self.log("valid_best", self.selection.best_value(self.best_score), prog_bar=True)
        if self.stopped.all():
            self.trainer.should_stop = True

    def _update_selection(self, scores: np.ndarray) -> None:
        """Per-head early stopping and best checkpoint, on the validation metric only, in its direction."""
        epoch = len(self.history) - 1
        params = self._head_params()
        lrs = self._optimizer_head_lrs()
        for h, score in enumerate(scores):
            if self.stopped[h]:
                continue
            if self.selection.better(score, self.best_score[h]):
                self.best_score[h], self.best_epoch[h], self.bad_epochs[h] = score, epoch, 0
                for best, p in zip(self._best_params, params):
                    idx = self._head_slot(h, p)
                    if idx is not None:
                        best[idx] = p.detach()[idx]
                continue
            self.bad_epochs[h] += 1
            if self.bad_epochs[h] >= self.patience:
                self.stopped[h] = True
                lrs[h] = 0.0
            elif self.lr_decay_patience and self.bad_epochs[h] % self.lr_decay_patience == 0:
                lrs[h] *= self.lr_decay_factor
        self._write_optimizer_head_lrs(lrs)

    def _head_slot(self, h: int, p: torch.Tensor) -> int | None:
        """Index of head ``h`` along the leading axis of ``p`` (``None`` if ``p`` does not hold that head)."""
        if p is self.mix_logits:
            return h - self.num_layer_heads if h >= self.num_layer_heads else None
        return h

    def _optimizer_head_lrs(self) -> np.ndarray:
        opt = self.trainer.optimizers[0] if self._trainer is not None else None
        return opt.param_groups[0]["head_lr"].numpy().copy() if opt is not None else self.head_lr.numpy().copy()

    def _write_optimizer_head_lrs(self, lrs: np.ndarray) -> None:
        if self._trainer is None:
            return
        opt = self.trainer.optimizers[0]
        opt.param_groups[0]["head_lr"] = torch.as_tensor(lrs, dtype=torch.float32)
        if len(opt.param_groups) > 1:
            opt.param_groups[1]["head_lr"] = torch.as_tensor(lrs[self.num_layer_heads:], dtype=torch.float32)

    def restore_best(self) -> None:
        """Load every head's best-on-validation weights (called once training ends)."""
        with torch.no_grad():
            for best, p in zip(self._best_params, self._head_params()):
                p.copy_(best)

    @torch.no_grad()
    def predict_rows(self, features: np.ndarray, batch_size: int = 512) -> torch.Tensor:
        """Activated outputs ``[H, rows, C]`` of every head for feature rows ``[rows, S, D]``, in eval mode."""
        self.eval()
        outs = []
        for start in range(0, len(features), batch_size):
            x = torch.as_tensor(np.asarray(features[start:start + batch_size], dtype=np.float32), device=self.device)
            outs.append(output_activation(self.loss, self(x)).float().cpu())
        if not outs:  # a DDP rank may hold no rows of a tiny split
            return torch.zeros(len(self.heads), 0, self.weights[-1].shape[-1])
        return torch.cat(outs, dim=1)
