"""The sweep's speed-ups change nothing but float rounding: the split first product, the fused per-rate Adam that
skips stopped heads, and bf16 heads (``trainer.precision=bf16-mixed``) that select what fp32 heads select."""
from __future__ import annotations

import numpy as np
import torch

from benchmark.evaluation import ClipEvaluator
from benchmark.optim import HeadwiseAdam
from benchmark.probe import LayerSweepProbe, head_losses, make_heads
from benchmark.sweep import summarise, train_sweep
from tests.test_marble_probe import _logit_dtypes
from tests.test_probe import PROBE, TRAINER, _data

S, D, C = 4, 16, 3


def _module(layers: list[int], with_sum: bool, dropout: float = 0.0) -> LayerSweepProbe:
    evaluator = ClipEvaluator("multiclass", list("abc"), np.arange(1), np.zeros(1))
    return LayerSweepProbe(make_heads(layers, with_sum, [1e-3, 1e-2]), S, D, C, "cross_entropy", evaluator,
                           np.zeros((S, D), np.float32), np.ones((S, D), np.float32), hidden=8, dropout=dropout,
                           weighted_sum_init="randn", seed=3)


def test_split_first_product_gives_the_single_products_outputs_and_gradients() -> None:
    """Layer heads and weighted-sum heads multiplied apart equal one product over all heads (what it replaced)."""
    torch.manual_seed(0)
    model = _module(list(range(S)), True)
    x, y = torch.randn(5, S, D), torch.randint(0, C, (5,))
    head_losses(model.loss, model(x), y).sum().backward()
    grads = {name: p.grad.clone() for name, p in model.named_parameters()}
    model.zero_grad()

    z_layers = x[:, model.layer_index].transpose(0, 1)
    z_sum = torch.einsum("hs,bsd->hbd", model.mix_logits.softmax(-1), x)
    z = torch.relu(torch.baddbmm(model.biases[0].unsqueeze(1), torch.cat([z_layers, z_sum]), model.weights[0]))
    out = torch.baddbmm(model.biases[1].unsqueeze(1), z, model.weights[1])
    torch.testing.assert_close(out, model(x), rtol=1e-6, atol=1e-6)
    head_losses(model.loss, out, y).sum().backward()
    assert grads["mix_logits"].abs().sum() > 0  # the sum heads' input gradient still reaches the mixing logits
    for name, p in model.named_parameters():
        torch.testing.assert_close(grads[name], p.grad, rtol=1e-5, atol=1e-7)


def test_fused_adam_skips_stopped_heads_and_matches_torch_adam_for_the_others() -> None:
    torch.manual_seed(1)
    init, grads = torch.randn(4, 6, 5), [torch.randn(4, 6, 5) for _ in range(5)]
    stacked = torch.nn.Parameter(init.clone())
    lrs = torch.tensor([1e-2, 1e-3, 1e-2, 1e-3])
    opt = HeadwiseAdam([{"params": [stacked], "head_lr": lrs}], weight_decay=0.01)
    for step, g in enumerate(grads):
        if step == 2:  # head 3 stops: its rate becomes 0 (what early stopping writes)
            opt.param_groups[0]["head_lr"] = torch.tensor([1e-2, 1e-3, 1e-2, 0.0])
            frozen = stacked.detach()[3].clone()
            moments = opt.state[stacked]["exp_avg"][3].clone()
        stacked.grad = g.clone()
        opt.step()
    assert torch.equal(stacked.detach()[3], frozen)  # a stopped head is not touched at all
    assert torch.equal(opt.state[stacked]["exp_avg"][3], moments)
    assert opt.state[stacked]["step"].tolist() == [5.0, 5.0, 5.0, 2.0]  # bias correction counts per head
    for h in range(3):
        single = torch.nn.Parameter(init[h].clone())
        ref = torch.optim.Adam([single], lr=float(lrs[h]), weight_decay=0.01)
        for g in grads:
            single.grad = g[h].clone()
            ref.step()
        torch.testing.assert_close(stacked.detach()[h], single.detach(), rtol=1e-6, atol=1e-7)


def test_an_earlier_checkpoints_single_step_count_is_read_per_head() -> None:
    p = torch.nn.Parameter(torch.zeros(3, 2))
    opt = HeadwiseAdam([{"params": [p], "head_lr": torch.full((3,), 1e-3)}])
    opt.state[p] = {"step": 7, "exp_avg": torch.zeros(3, 2), "exp_avg_sq": torch.zeros(3, 2)}
    p.grad = torch.ones(3, 2)
    opt.step()
    assert opt.state[p]["step"].tolist() == [8.0, 8.0, 8.0]


def test_bf16_heads_select_what_fp32_heads_select(monkeypatch) -> None:
    """``trainer.precision=bf16-mixed`` (bf16 products where the CPU or GPU has them) picks the same layer and the
    same best epoch per head as fp32 on the planted fixture; its scores differ by bf16 rounding only."""
    splits, labels = _data(test_informative=[0])
    evaluators = {s: ClipEvaluator("multiclass", list("abcd"), splits[s].window_track, labels[s])
                  for s in ("valid", "test")}
    runs, dtypes = {}, _logit_dtypes(monkeypatch)
    for precision in ("32-true", "bf16-mixed"):
        dtypes.clear()
        results, _ = train_sweep(splits, labels["train"], evaluators, "cross_entropy", 4,
                                 make_heads([0, 1, 2], True, [1e-3]), PROBE,
                                 {**TRAINER, "max_epochs": 6, "precision": precision}, seed=0)
        runs[precision] = results
        assert set(dtypes) == {torch.float32 if precision == "32-true" else torch.bfloat16}
    fp32, bf16 = runs["32-true"], runs["bf16-mixed"]
    assert summarise(fp32, "accuracy")[1].layer == summarise(bf16, "accuracy")[1].layer == 0
    assert [r.best_epoch for r in fp32] == [r.best_epoch for r in bf16]
    for a, b in zip(fp32, bf16):
        assert abs(a.valid["accuracy"] - b.valid["accuracy"]) <= 0.05
