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
from benchmark.errors import ConfigError
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


# probe.weighted_sum_layers: which hidden states the weighted-sum heads mix.
WEIGHTED_SUM_LAYERS = {
    "all": "every hidden state the features hold (the suite's default)",
    "transformer": "hidden states 1..L only, without the embedding output 0 (MARBLE v1's 'layer: all')",
}
# probe.weighted_sum_init: the mixing logits a weighted-sum head starts from.
WEIGHTED_SUM_INITS = {
    "uniform": "zero logits, equal weights (the suite's default)",
    "randn": "standard normal logits from each head's own seeded generator (MARBLE v1's torch.randn)",
}
# trainer.lr_decay_rule: how epochs without improvement halve a head's learning rate (see ScheduleRule).
LR_DECAY_RULES = {
    "suite": "halve at every multiple of lr_decay_patience epochs without a strictly better score",
    "reduce_on_plateau": "torch ReduceLROnPlateau: halve once more than lr_decay_patience epochs passed without "
                         "beating the best by lr_decay_threshold (relative), then count from 0",
}
# torch ReduceLROnPlateau's eps: a reduction smaller than this is not applied.
PLATEAU_EPS = 1e-8


@dataclass(frozen=True)
class ScheduleRule:
    """When a head stops and when its learning rate is multiplied by ``lr_decay_factor``, from its validation scores.

    Why two rules: the suite counts one run of epochs without a strictly better score and decays the rate at every
    multiple of ``lr_decay_patience``; MARBLE v1 uses Lightning's EarlyStopping (the same count, stop when it
    reaches ``patience``) next to torch's ReduceLROnPlateau, which keeps its own best and count, needs a relative
    improvement of ``lr_decay_threshold``, reduces only once the count *exceeds* its patience and then restarts
    it. ``reduce_on_plateau`` reproduces that scheduler epoch for epoch (``tests/test_marble_probe.py`` replays
    scores through both). ``lr_decay_patience`` 0 never decays under either rule. ``stop_on_non_finite`` stops a
    head at a NaN or infinite score, as Lightning's ``check_finite`` does.
    """

    patience: int = 10
    lr_decay_patience: int = 0
    lr_decay_factor: float = 0.5
    lr_decay_rule: str = "suite"
    lr_decay_threshold: float = 0.0
    stop_on_non_finite: bool = False

    def __post_init__(self) -> None:
        if self.lr_decay_rule not in LR_DECAY_RULES:
            raise ConfigError(f"trainer.lr_decay_rule={self.lr_decay_rule!r}: must be one of "
                              f"{', '.join(LR_DECAY_RULES)}")

    def plateau_better(self, selection: Metric, score: float, best: float) -> bool:
        """torch ReduceLROnPlateau's ``rel`` test: better than ``best`` by the relative threshold, in the metric's
        direction (``best * (1 + t)`` for a score, ``best * (1 - t)`` for an error, literally as torch does)."""
        if selection.higher_is_better:
            return bool(score > best * (1.0 + self.lr_decay_threshold))
        return bool(score < best * (1.0 - self.lr_decay_threshold))


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


def mixed_positions(state_ids: list[int], weighted_sum_layers: str) -> list[int]:
    """Positions of the features' layer axis a weighted-sum head mixes: all, or those of hidden states >= 1.

    Why by state id, not position: frame-level caches hold only the requested states, so position 0 is hidden
    state 0 only when that state was requested.
    """
    if weighted_sum_layers not in WEIGHTED_SUM_LAYERS:
        raise ConfigError(f"probe.weighted_sum_layers={weighted_sum_layers!r}: must be one of "
                          f"{', '.join(WEIGHTED_SUM_LAYERS)}")
    if weighted_sum_layers == "all":
        return list(range(len(state_ids)))
    mixed = [i for i, state in enumerate(state_ids) if state != 0]
    if not mixed:
        raise ConfigError(f"probe.weighted_sum_layers=transformer mixes hidden states 1..L, but the features hold "
                          f"only state(s) {state_ids}; use probe.weighted_sum_layers=all or an encoder with "
                          "transformer layers")
    return mixed


def initial_mix_logits(sum_heads: list[HeadSpec], num_mixed: int, init: str, seed: int) -> torch.Tensor:
    """``[H_sum, M]`` starting logits: zeros (uniform weights), or standard normal draws from each head's own
    generator, so a head starts alike whatever other heads share the run and on every DDP rank."""
    if init not in WEIGHTED_SUM_INITS:
        raise ConfigError(f"probe.weighted_sum_init={init!r}: must be one of {', '.join(WEIGHTED_SUM_INITS)}")
    logits = torch.zeros(len(sum_heads), num_mixed)
    if init == "randn":
        for i, head in enumerate(sum_heads):
            logits[i] = torch.randn(num_mixed, generator=_head_generator(seed, head, "mix"))
    return logits


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
        lr_decay_rule, lr_decay_threshold, stop_on_non_finite: how those epochs are counted (:class:`ScheduleRule`).
        seed: initialisation and dropout seed.
        state_ids: the hidden-state index of each position of the features' layer axis (default ``0..S-1``;
            frame-level caches hold only the requested layers).
        weighted_sum_layers: which states the weighted-sum heads mix (:data:`WEIGHTED_SUM_LAYERS`).
        weighted_sum_init: their initial mixing logits (:data:`WEIGHTED_SUM_INITS`).
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
        lr_decay_rule: str = "suite",
        lr_decay_threshold: float = 0.0,
        stop_on_non_finite: bool = False,
        weighted_sum_layers: str = "all",
        weighted_sum_init: str = "uniform",
    ) -> None:
        super().__init__()
        self.heads = heads
        self.loss, self.evaluator = get_loss(loss), evaluator
        self.primary = evaluator.primary
        # The direction of "best" for every decision below; KeyError for a metric no kind declares (no guessing).
        self.selection: Metric = metric(self.primary)
        self.hidden, self.dropout_p = hidden, dropout
        self.rule = ScheduleRule(patience, lr_decay_patience, lr_decay_factor, lr_decay_rule, lr_decay_threshold,
                                 stop_on_non_finite)
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
        mixed = mixed_positions(state_ids, weighted_sum_layers) if H > self.num_layer_heads else list(range(num_states))
        self.num_states = num_states
        self._mix_all = mixed == list(range(num_states))  # mixing every state needs no gather of the input
        # not persistent: it follows from the settings, and checkpoints keep the keys they always had
        self.register_buffer("mix_index", torch.tensor(mixed, dtype=torch.long), persistent=False)
        self.mix_logits = torch.nn.Parameter(
            initial_mix_logits(heads[self.num_layer_heads:], len(mixed), weighted_sum_init, seed))
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
        # the learning-rate count of lr_decay_rule=reduce_on_plateau: its own best and epochs since (unused by suite)
        self.plateau_best = np.full(H, self.selection.worst)
        self.plateau_bad = np.zeros(H, dtype=int)
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
        mix = self.mix_logits.softmax(-1)  # [H_sum, M]: M = the mixed states (all S, or 1..L)
        z_sum = torch.einsum("hs,bsd->hbd", mix, x if self._mix_all else x[:, self.mix_index])
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
        """Softmax layer weights ``[H_sum, S]`` of the weighted-sum heads, one per position of the features' layer
        axis: a state the heads do not mix (the embedding output with ``weighted_sum_layers=transformer``) has
        weight 0, so records and plots keep reading position k as hidden state k."""
        full = torch.zeros(self.mix_logits.shape[0], self.num_states)
        full[:, self.mix_index.cpu()] = self.mix_logits.detach().float().softmax(-1).cpu()
        return full.numpy()

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
            "plateau_best": torch.as_tensor(self.plateau_best, dtype=torch.float64),
            "plateau_bad": torch.as_tensor(self.plateau_bad, dtype=torch.long),
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
        if "plateau_best" in state:  # absent from checkpoints written before lr_decay_rule (suite rule only)
            self.plateau_best = state["plateau_best"].numpy().copy()
            self.plateau_bad = state["plateau_bad"].numpy().astype(int)
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
        self.record_validation(scores)
        self.log("valid_best", self.selection.best_value(self.best_score), prog_bar=True)
        if self.stopped.all():
            self.trainer.should_stop = True

    def record_validation(self, scores: np.ndarray, lrs: np.ndarray | None = None) -> np.ndarray:
        """Append one epoch's validation scores (one per head) and apply every head's selection and schedule.

        Returns the heads' learning rates for the next epoch. ``lrs`` defaults to the optimizer's (written back);
        passing them lets a test replay a score sequence through the very rule training uses, without a trainer.
        """
        self.history.append(np.asarray(scores, dtype=float).tolist())
        lrs = self._optimizer_head_lrs() if lrs is None else np.array(lrs, dtype=float)
        self._update_selection(np.asarray(scores, dtype=float), lrs)
        self._write_optimizer_head_lrs(lrs)
        return lrs

    def _update_selection(self, scores: np.ndarray, lrs: np.ndarray) -> None:
        """Per-head early stopping, best checkpoint and learning-rate decay (``lrs``, in place), on the validation
        metric only, in its direction."""
        epoch = len(self.history) - 1
        params = self._head_params()
        for h, score in enumerate(scores):
            if self.stopped[h]:
                continue
            improved = self.selection.better(score, self.best_score[h])
            if improved:
                self.best_score[h], self.best_epoch[h], self.bad_epochs[h] = score, epoch, 0
                for best, p in zip(self._best_params, params):
                    idx = self._head_slot(h, p)
                    if idx is not None:
                        best[idx] = p.detach()[idx]
            else:
                self.bad_epochs[h] += 1
            if self._stops(h, score, improved):
                self.stopped[h] = True
                lrs[h] = 0.0
            else:
                lrs[h] = self._next_lr(h, score, improved, lrs[h])

    def _stops(self, h: int, score: float, improved: bool) -> bool:
        """Lightning's EarlyStopping (min_delta 0): ``patience`` epochs in a row without a strictly better score,
        or, with ``stop_on_non_finite``, a NaN or infinite score (checked first, as ``check_finite`` is)."""
        if self.rule.stop_on_non_finite and not np.isfinite(score):
            return True
        return not improved and self.bad_epochs[h] >= self.rule.patience

    def _next_lr(self, h: int, score: float, improved: bool, lr: float) -> float:
        """Head ``h``'s rate after this epoch under the schedule rule (see :class:`ScheduleRule`)."""
        rule = self.rule
        if rule.lr_decay_rule == "suite":
            if not improved and rule.lr_decay_patience and self.bad_epochs[h] % rule.lr_decay_patience == 0:
                return lr * rule.lr_decay_factor
            return lr
        # reduce_on_plateau: torch's own best and count, reset after each reduction
        if rule.plateau_better(self.selection, score, self.plateau_best[h]):
            self.plateau_best[h], self.plateau_bad[h] = score, 0
        else:
            self.plateau_bad[h] += 1
        if rule.lr_decay_patience and self.plateau_bad[h] > rule.lr_decay_patience:
            self.plateau_bad[h] = 0
            if lr - lr * rule.lr_decay_factor > PLATEAU_EPS:
                return lr * rule.lr_decay_factor
        return lr

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
