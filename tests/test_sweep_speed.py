"""Speed without changing results: the Adam step that skips stopped heads updates the others bit for bit as the
whole-stack step did, and bf16 heads (``trainer.precision=bf16-mixed``, a user's choice) select what fp32 heads
select."""
from __future__ import annotations

import torch

from benchmark.evaluation import ClipEvaluator
from benchmark.optim import HeadwiseAdam
from benchmark.probe import make_heads
from benchmark.sweep import summarise, train_sweep
from tests.test_marble_probe import _logit_dtypes
from tests.test_probe import PROBE, TRAINER, _data

def test_adam_skips_stopped_heads_and_steps_the_others_bit_for_bit_as_before() -> None:
    """Heads still training get exactly the update of the step over the whole stack (the earlier code); a stopped
    head's weights and moments are not touched."""
    torch.manual_seed(1)
    init, grads = torch.randn(4, 6, 5), [torch.randn(4, 6, 5) for _ in range(5)]
    lrs = torch.tensor([1e-2, 1e-3, 1e-2, 1e-3])
    skipping = torch.nn.Parameter(init.clone())
    opt = HeadwiseAdam([{"params": [skipping], "head_lr": lrs.clone()}], weight_decay=0.01)
    for step, g in enumerate(grads):
        if step == 2:  # head 3 stops: its rate becomes 0 (what early stopping writes)
            opt.param_groups[0]["head_lr"] = torch.tensor([1e-2, 1e-3, 1e-2, 0.0])
            frozen = skipping.detach()[3].clone()
            moments = opt.state[skipping]["exp_avg"][3].clone()
        skipping.grad = g.clone()
        opt.step()
    assert torch.equal(skipping.detach()[3], frozen) and torch.equal(opt.state[skipping]["exp_avg"][3], moments)

    m, v, p = torch.zeros_like(init), torch.zeros_like(init), init.clone()  # the whole-stack update, written out
    for step, g in enumerate(grads, start=1):
        g = g + 0.01 * p
        m.mul_(0.9).add_(g, alpha=0.1)
        v.mul_(0.999).addcmul_(g, g, value=0.001)
        p.sub_(lrs.reshape(-1, 1, 1) / (1 - 0.9 ** step) * m / (v / (1 - 0.999 ** step)).sqrt_().add_(1e-8))
    assert torch.equal(skipping.detach()[:3], p[:3])


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
