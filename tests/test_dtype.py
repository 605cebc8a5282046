"""``model.dtype``: ``auto`` resolves to the precision that runs, before the record and cache read the config; CREPE
runs in bf16 close to fp32; encoders that cannot run in a dtype refuse it with the choices."""
from __future__ import annotations

import pytest
import torch

from benchmark import precision, runner
from benchmark.encoders import build_encoder
from benchmark.encoders.registry import encoder_dtype, with_resolved_dtype
from benchmark.errors import ConfigError

CPU = torch.device("cpu")
CREPE_TINY = {"name": "crepe-tiny", "kind": "crepe", "capacity": "tiny", "hop_ms": 20, "context_seconds": 5.0,
              "batch_size": 4}


@pytest.mark.parametrize("native", [True, False])
def test_auto_is_bf16_only_where_native_and_supported(monkeypatch: pytest.MonkeyPatch, native: bool) -> None:
    monkeypatch.setattr(precision, "bf16_supported", lambda device: native)
    assert precision.resolve_dtype("auto", ("fp32", "bf16"), CPU) == ("bf16" if native else "fp32")
    assert precision.resolve_dtype("auto", ("fp32",), CPU) == "fp32"  # the DSP baselines: fp32 whatever the CPU
    assert precision.resolve_dtype("fp32", ("fp32", "bf16"), CPU) == "fp32"
    assert precision.resolve_dtype("bf16", ("fp32", "bf16"), CPU) == "bf16"  # explicit: as asked, even emulated


def test_a_dtype_the_encoder_cannot_run_in_is_refused_with_its_choices() -> None:
    with pytest.raises(ConfigError, match=r"model 'mfcc' runs in fp32 only; use model.dtype=fp32 or model.dtype=auto"):
        encoder_dtype({"name": "mfcc", "kind": "handcrafted", "dtype": "bf16"})
    with pytest.raises(ConfigError, match=r"runs in fp32, bf16 only"):
        encoder_dtype({**CREPE_TINY, "dtype": "fp16"})
    with pytest.raises(ConfigError, match=r"model.dtype='half': must be one of fp32, bf16, fp16, auto"):
        precision.check_dtype_name("half")


def test_registered_dtypes_per_kind(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(precision, "bf16_supported", lambda device: True)
    assert encoder_dtype({"kind": "mert", "dtype": "auto"}) == "bf16"
    assert encoder_dtype({"kind": "mert", "dtype": "fp16"}) == "fp16"
    assert encoder_dtype({**CREPE_TINY, "dtype": "auto"}) == "bf16"
    for kind in ("handcrafted", "musicnn", "basic_pitch"):
        assert encoder_dtype({"kind": kind, "dtype": "auto"}) == "fp32"
    assert with_resolved_dtype({**CREPE_TINY, "dtype": "auto"})["dtype"] == "bf16"


def test_crepe_bf16_is_close_to_fp32_and_has_its_own_cache_identity() -> None:
    fp32 = build_encoder({**CREPE_TINY, "dtype": "fp32"})
    bf16 = build_encoder({**CREPE_TINY, "dtype": "bf16"})
    assert next(bf16.net.parameters()).dtype == torch.bfloat16
    x = torch.randn(2, 8000)
    ref, lengths = fp32.hidden_states(x)
    out, lengths_bf16 = bf16.hidden_states(x)
    assert out.dtype == torch.float32 and torch.equal(lengths, lengths_bf16)
    for layer in range(ref.shape[0]):
        rel = float((out[layer] - ref[layer]).norm() / ref[layer].norm())
        assert 1e-4 < rel < 3e-2, (layer, rel)  # bf16 rounding (8 mantissa bits), not fp32, not broken
    # fp32's identity is what it was before CREPE had a dtype (old caches stay valid); bf16 adds the dtype
    assert "dtype" not in fp32.identity()
    assert bf16.identity() == {**fp32.identity(), "dtype": "bf16"}


@pytest.mark.parametrize("native", [True, False])
def test_the_run_config_names_the_resolved_dtype(monkeypatch: pytest.MonkeyPatch, compose_config,
                                                 native: bool) -> None:
    """What every later step reads (record path, checksum, cache key, record) is the dtype that runs, not auto."""
    monkeypatch.setattr(precision, "bf16_supported", lambda device: native)
    config = compose_config("task=synth_key", "model=crepe-tiny", "model.dtype=auto", "device=cpu")
    seen = runner._in_processes(lambda ranks, cfg, console, encoder: cfg, config, None, None)
    assert seen["model"]["dtype"] == ("bf16" if native else "fp32")
    assert config["model"]["dtype"] == "auto"  # the caller's config is left as given
