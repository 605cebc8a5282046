"""The bench's fp32-vs-bf16 comparison (stage 1b of benchmark/bench.py) on the tiny MERT checkpoint: plumbing, the
hidden-state difference and the skips; nothing timed is compared against a speed (the machine's load must not
make these fail)."""
from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import pytest
import torch

from benchmark import bench, peak
from benchmark.audio import WindowSpec
from benchmark.resources import config_file_values
from tests.conftest import FIXTURES, REPO_ROOT

CPU = torch.device("cpu")
MODEL_CONFIGS = REPO_ROOT / "configs" / "model"


@pytest.fixture(autouse=True)
def _isolated_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """No network, and no writes outside tmp (hash sidecar)."""
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("BENCHMARK_HASH_CACHE", str(tmp_path / "sha256.json"))


def model_cfg(name: str, **overrides: Any) -> dict[str, Any]:
    return {**config_file_values(MODEL_CONFIGS / f"{name}.yaml"), **overrides}


def tiny_mert() -> dict[str, Any]:
    return model_cfg("mert-v1-95m", checkpoint=str(FIXTURES / "v1-95m-tiny"))


def compare(cfg: dict[str, Any], **kwargs: Any) -> dict[str, Any]:
    # one 0.5 s window per forward, one repeat: a few tiny forwards in all
    return bench.bf16_comparison(cfg, CPU, WindowSpec(0.5, 0.5), 2, 1.0, 1, **kwargs)


def test_tiny_mert_comparison_reports_both_throughputs_and_a_small_difference(
        monkeypatch: pytest.MonkeyPatch) -> None:
    # forced on: where the CPU lacks native bf16 torch emulates it, which still computes bf16 (only slowly)
    monkeypatch.setattr(peak, "bf16_supported", lambda device: True)
    result = compare(tiny_mert())
    assert result["ran"] is True
    assert result["fp32_audio_s_per_s"] > 0 and result["bf16_audio_s_per_s"] > 0
    assert result["speedup"] == pytest.approx(result["bf16_audio_s_per_s"] / result["fp32_audio_s_per_s"])
    assert result["same_weights"] is True  # the bf16 encoder holds the checkpoint's weights, cast
    diff = result["hidden_rel_diff"]
    assert 0 < diff["max"] < 0.1 and 0 < diff["mean"] <= diff["max"]
    assert all(math.isfinite(d) for d in diff["per_state"])
    assert diff["max"] == max(diff["per_state"]) and len(diff["per_state"]) >= 2


def test_given_fp32_encoder_is_reused(monkeypatch: pytest.MonkeyPatch) -> None:
    from benchmark.encoders import build_encoder

    monkeypatch.setattr(peak, "bf16_supported", lambda device: True)
    cfg = tiny_mert()
    fp32 = build_encoder(cfg)
    built: list[str] = []
    real_build = bench.build_encoder
    monkeypatch.setattr(bench, "build_encoder", lambda c: built.append(c["dtype"]) or real_build(c))
    result = compare(cfg, fp32_encoder=fp32)
    assert result["ran"] is True and built == ["bf16"]


def test_baseline_encoder_is_skipped_with_the_reason(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(peak, "bf16_supported", lambda device: True)
    result = compare(model_cfg("mfcc"))
    assert result["ran"] is False
    assert "mfcc refuses dtype=bf16" in result["reason"] and "fp32 only" in result["reason"]


def test_skipped_where_bf16_is_not_native(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(peak, "bf16_supported", lambda device: False)
    monkeypatch.setattr(bench, "build_encoder", lambda cfg: pytest.fail("nothing is built when bf16 is not native"))
    result = compare(tiny_mert())
    assert result == {"ran": False, "reason": "bf16 is not native on cpu (benchmark.peak.bf16_supported)"}


def test_interleaved_times_alternate_the_functions() -> None:
    calls: list[str] = []
    times = bench.interleaved_median_times({"a": lambda: calls.append("a"), "b": lambda: calls.append("b")}, 3)
    assert calls == ["a", "b", "a", "b", "b", "a", "a", "b"]  # warm-ups, then A B, B A, A B
    assert set(times) == {"a", "b"} and all(t >= 0 for t in times.values())


def test_bench_config_turns_the_stage_on_by_default() -> None:
    assert config_file_values(REPO_ROOT / "configs" / "bench.yaml")["bf16"] is True
