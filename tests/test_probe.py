"""The batched layer-sweep probe: optimizer, head independence, and validation-only selection."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from benchmark.cache import SplitFeatures
from benchmark.evaluation import ClipEvaluator
from benchmark.optim import HeadwiseAdam
from benchmark.probe import make_heads
from benchmark.sweep import summarise, train_sweep

PROBE = {"hidden": 32, "dropout": 0.0, "standardize": True, "weight_decay": 0.0}
TRAINER = {"max_epochs": 15, "patience": 5, "batch_size": 32, "accelerator": "cpu", "progress_bar": False}


def _split(rng, n, informative: list[int], labels, num_states=3, dim=8) -> SplitFeatures:
    """Features where only the ``informative`` layers encode the labels (each in its own columns) + noise."""
    x = rng.standard_normal((n, num_states, dim)).astype(np.float16)
    for layer in informative:
        x[np.arange(n), layer, labels + layer] += 3.0
    return SplitFeatures(features=x, window_track=np.arange(n), track_ids=[str(i) for i in range(n)])


def _data(test_informative: list[int], test_labels_seed: int = 0, train_informative=(0, 1)):
    rng = np.random.default_rng(0)
    labels = {s: rng.integers(0, 4, n) for s, n in (("train", 200), ("valid", 80))}
    labels["test"] = np.random.default_rng(test_labels_seed).integers(0, 4, 80)
    splits = {
        "train": _split(rng, 200, list(train_informative), labels["train"]),
        "valid": _split(rng, 80, [0], labels["valid"]),
        "test": _split(np.random.default_rng(test_labels_seed), 80, test_informative, labels["test"]),
    }
    return splits, labels


def _sweep(splits, labels, layers, seed):
    evaluators = {s: ClipEvaluator("multiclass", list("abcd"), splits[s].window_track, labels[s])
                  for s in ("valid", "test")}
    return train_sweep(splits, labels["train"], evaluators, "cross_entropy", 4, make_heads(layers, False, [1e-3]),
                       PROBE, TRAINER, seed=seed)


def test_selection_uses_validation_only():
    # Layers 0 and 1 both carry the labels in train; on valid only layer 0 does, on test only layer 1 does.
    # The test-best layer is therefore 1: a selection peeking at test would pick it.
    splits, labels = _data(test_informative=[1])
    results, _ = _sweep(splits, labels, [0, 1, 2], seed=0)
    rows, selected = summarise(results, "accuracy")
    assert selected.layer == 0
    test_scores = {row.layer: row.test["accuracy"] for row in rows}
    assert test_scores[1] > test_scores[0]  # the test-best layer was not chosen

    # Changing every test feature and label changes nothing that selection produced.
    other_splits, other_labels = _data(test_informative=[2], test_labels_seed=7)
    other_results, _ = _sweep(other_splits, other_labels, [0, 1, 2], seed=0)
    for a, b in zip(results, other_results):
        assert a.best_epoch == b.best_epoch
        assert a.valid == b.valid
    assert summarise(other_results, "accuracy")[1].layer == 0


# dropout 0.0 (~13 s) is the stricter equality but runs under -m slow; 0.3 (same code path, masks drawn per head) by default
@pytest.mark.parametrize("dropout", [pytest.param(0.0, marks=pytest.mark.slow), 0.3])
def test_batched_heads_equal_single_layer_probes(dropout, monkeypatch):
    monkeypatch.setitem(PROBE, "dropout", dropout)
    splits, labels = _data(test_informative=[0])
    sweep, sweep_model = _sweep(splits, labels, [0, 1, 2], seed=3)
    for layer in (0, 2):
        alone, alone_model = _sweep(splits, labels, [layer], seed=3)
        batched = next(r for r in sweep if r.head.layer == layer)
        assert batched.best_epoch == alone[0].best_epoch
        for split in ("valid", "test"):
            assert np.isclose(batched.__dict__[split]["accuracy"], alone[0].__dict__[split]["accuracy"])
        for stacked, single in zip(sweep_model.weights, alone_model.weights):  # the trained weights themselves
            torch.testing.assert_close(stacked.detach()[layer], single.detach()[0], rtol=1e-5, atol=1e-6)


def test_headwise_adam_matches_torch_adam_per_head():
    torch.manual_seed(0)
    init = torch.randn(3, 5, 4)
    grads = [torch.randn(3, 5, 4) for _ in range(6)]
    lrs = torch.tensor([1e-3, 5e-2, 0.0])
    stacked = torch.nn.Parameter(init.clone())
    opt = HeadwiseAdam([{"params": [stacked], "head_lr": lrs}])
    for g in grads:
        stacked.grad = g.clone()
        opt.step()
    for h in range(3):
        single = torch.nn.Parameter(init[h].clone())
        ref = torch.optim.Adam([single], lr=float(lrs[h]))
        for g in grads:
            single.grad = g[h].clone()
            ref.step()
        torch.testing.assert_close(stacked.detach()[h], single.detach(), rtol=1e-6, atol=1e-7)
    assert torch.equal(stacked.detach()[2], init[2])  # a head with rate 0 is frozen exactly
