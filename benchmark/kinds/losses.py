"""Probe losses: each is the training loss of the heads AND the activation that turns head outputs into scores.

They travel together because they must agree: cross-entropy heads are read through a softmax, binary heads
through a sigmoid, regression heads as they are. A kind names one loss (:class:`~benchmark.kinds.base.TaskKind`);
the probe and the sweep only call the methods below, so neither switches on a task type.
"""
from __future__ import annotations

import abc

import numpy as np
import torch
import torch.nn.functional as F


class Loss(abc.ABC):
    """A probe loss: per-row loss of stacked heads, its output activation and the dtype of its targets."""

    name: str
    target_dtype: type

    @abc.abstractmethod
    def activation(self, logits: torch.Tensor) -> torch.Tensor:
        """Raw head outputs ``[..., C]`` -> the scores evaluators read."""

    @abc.abstractmethod
    def per_row(self, logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        """Unreduced loss of logits ``[H, B, C]``: ``[H, B]`` or ``[H, B, C]``."""

    def head_losses(self, logits: torch.Tensor, target: torch.Tensor, reduction: str = "mean") -> torch.Tensor:
        """Per-head loss ``[H]``; summing them trains every head on its own loss.

        ``reduction="mean"`` averages over the batch's rows (and outputs for bce/mse); ``"sum"`` sums over rows
        (still averaging over outputs): DDP ranks sum their part of a batch and divide by the whole batch's rows.
        """
        per_row = self.per_row(logits, target)
        if reduction == "mean":
            return per_row.mean(dim=tuple(range(1, per_row.dim())))
        return (per_row if per_row.dim() == 2 else per_row.mean(dim=2)).sum(dim=1)

    def __repr__(self) -> str:
        return f"<loss {self.name}>"

    def __reduce__(self):  # the registered instance, also across processes
        return get_loss, (self.name,)


class CrossEntropy(Loss):
    """One class per row (multiclass, key): softmax cross-entropy on int64 class indices."""

    name, target_dtype = "cross_entropy", np.int64

    def activation(self, logits: torch.Tensor) -> torch.Tensor:
        return logits.softmax(-1)

    def per_row(self, logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        H, B, C = logits.shape
        return F.cross_entropy(logits.reshape(H * B, C), target.repeat(H), reduction="none").view(H, B)


class CrossEntropyOnLogits(CrossEntropy):
    """Softmax cross-entropy, with the raw logits as the scores evaluators read.

    Why a loss of its own: MARBLE v1's GiantSteps ensemble (the ``key`` kind with ``task.ensemble=marble``) has
    strategies that need each window's logits, not its probabilities (the per-class maximum logit over a song's
    windows is not a function of the windows' softmax outputs). Training is exactly :class:`CrossEntropy`'s; only
    what the evaluator receives differs, and that evaluator takes the softmax itself where a strategy needs it.
    """

    name = "cross_entropy_logits"

    def activation(self, logits: torch.Tensor) -> torch.Tensor:
        return logits


class BinaryCrossEntropy(Loss):
    """Independent binary outputs (tags, beat/downbeat activations) on float targets in [0, 1]."""

    name, target_dtype = "bce", np.float32

    def activation(self, logits: torch.Tensor) -> torch.Tensor:
        return logits.sigmoid()

    def per_row(self, logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        H, B, C = logits.shape
        return F.binary_cross_entropy_with_logits(logits, target.expand(H, B, C), reduction="none")


class MeanSquaredError(Loss):
    """Real-valued outputs (regression) read as they are."""

    name, target_dtype = "mse", np.float32

    def activation(self, logits: torch.Tensor) -> torch.Tensor:
        return logits

    def per_row(self, logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        H, B, C = logits.shape
        return F.mse_loss(logits, target.expand(H, B, C), reduction="none")


CROSS_ENTROPY, BCE, MSE = CrossEntropy(), BinaryCrossEntropy(), MeanSquaredError()
CROSS_ENTROPY_LOGITS = CrossEntropyOnLogits()
LOSSES: dict[str, Loss] = {loss.name: loss for loss in (CROSS_ENTROPY, BCE, MSE, CROSS_ENTROPY_LOGITS)}


def get_loss(loss: "str | Loss") -> Loss:
    """``loss`` itself, or the loss registered under that name (callers such as the tests pass names)."""
    if isinstance(loss, Loss):
        return loss
    try:
        return LOSSES[loss]
    except (KeyError, TypeError):
        raise ValueError(f"unknown probe loss {loss!r}; expected {', '.join(LOSSES)}") from None
