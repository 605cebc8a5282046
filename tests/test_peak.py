"""benchmark/peak.py and the bench's fraction-of-peak figures: counts and plumbing only, nothing timed or compared
against a speed (the machine's load must not make these fail)."""
from __future__ import annotations

import math
from pathlib import Path

import pytest
import torch

from benchmark import bench, peak, precision

CPU = torch.device("cpu")


def test_linear_flops_equal_the_analytic_count() -> None:
    rows, fan_in, fan_out = 5, 7, 3
    layer = torch.nn.Linear(fan_in, fan_out)
    x = torch.randn(rows, fan_in)
    with torch.no_grad():
        assert peak.count_flops(lambda: layer(x)) == 2 * rows * fan_in * fan_out


def test_attention_flops_equal_the_analytic_count() -> None:
    """Q K^T and (scores) V: 2*b*h*q*k*d + 2*b*h*q*k*dv, also on a CPU where torch's counter alone counts 0."""
    b, h, q, k, d, dv = 2, 3, 5, 7, 8, 4
    query, key, value = torch.randn(b, h, q, d), torch.randn(b, h, k, d), torch.randn(b, h, k, dv)
    with torch.inference_mode():
        flops = peak.count_flops(lambda: torch.nn.functional.scaled_dot_product_attention(query, key, value))
    assert flops == 2 * b * h * q * k * d + 2 * b * h * q * k * dv


def test_encoder_flops_are_per_second_of_audio() -> None:
    """A one-Linear 'encoder' over 1-sample frames: 2 * dim FLOPs per sample, so 2 * dim * rate per second."""

    class Frames(torch.nn.Module):
        name, sample_rate, num_layers, dim = "frames", 100, 0, 4
        input_normalization_scope = None

        def __init__(self) -> None:
            super().__init__()
            self.proj = torch.nn.Linear(1, self.dim, bias=False)

        @property
        def device(self) -> torch.device:
            return CPU

        def hidden_states(self, waveforms, lengths=None):
            return self.proj(waveforms.unsqueeze(-1))[None], None

    encoder = Frames()
    assert peak.encoder_flops_per_audio_second(encoder, 0.5, batch=2) == 2 * encoder.dim * encoder.sample_rate


def test_fp32_peak_is_positive_on_tiny_sizes() -> None:
    value = peak.peak_gflops("fp32", CPU, [8, 16], repeats=1)
    assert value is not None and value > 0 and math.isfinite(value)


def test_bf16_peak_is_none_where_the_hardware_check_says_no(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(peak, "bf16_supported", lambda device: False)
    assert peak.peak_gflops("bf16", CPU, [8], repeats=1) is None
    assert peak.size_sweep("bf16", CPU, [8], repeats=1) is None


def test_bf16_peak_is_measured_where_the_hardware_check_says_yes(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(peak, "bf16_supported", lambda device: True)
    value = peak.peak_gflops("bf16", CPU, [8], repeats=1)
    assert value is not None and value > 0


def test_cpu_bf16_check_reads_the_cpuinfo_flags(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    cpuinfo = tmp_path / "cpuinfo"
    monkeypatch.setattr(precision, "CPUINFO", cpuinfo)
    monkeypatch.setattr(torch.backends.mkldnn, "is_available", lambda: True)
    for flags, expected in (("fpu avx2 avx512f", False), ("fpu avx512f avx512_bf16", True), ("amx_bf16", True)):
        cpuinfo.write_text(f"processor\t: 0\nflags\t\t: {flags}\n")
        assert precision.bf16_supported(CPU) is expected
    monkeypatch.setattr(torch.backends.mkldnn, "is_available", lambda: False)
    assert precision.bf16_supported(CPU) is False


def test_cpu_flags_parses_the_first_flags_line(tmp_path: Path) -> None:
    cpuinfo = tmp_path / "cpuinfo"
    cpuinfo.write_text("processor\t: 0\nflags\t\t: fpu avx512_bf16\n\nprocessor\t: 1\nflags\t\t: fpu\n")
    assert precision.cpu_flags(cpuinfo) == {"fpu", "avx512_bf16"}
    assert precision.cpu_flags(tmp_path / "absent") == set()


def test_unknown_dtypes_are_not_measured() -> None:
    assert peak.size_sweep("fp16", CPU, [8], repeats=1) is None


def test_stage_flop_rate_and_fraction_of_peak() -> None:
    rate = bench.stage_flop_rate(50e9, 2.0, 100.0)
    assert rate == {"gflops": 25.0, "fraction_of_peak": 0.25}
    assert bench.stage_flop_rate(50e9, 2.0, None) == {"gflops": 25.0, "fraction_of_peak": None}
    assert bench.stage_flop_rate(0.0, 2.0, 100.0) == {"gflops": None, "fraction_of_peak": None}
    assert "0.25 of the bf16 peak" in bench.describe_rate(rate, "bf16")
    assert "no measured fp16 peak" in bench.describe_rate({"gflops": 1.0, "fraction_of_peak": None}, "fp16")


def test_machine_peaks_records_unsupported_dtypes_as_none(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(peak, "bf16_supported", lambda device: False)
    peaks = bench.machine_peaks(CPU, [8], repeats=1)
    assert peaks["fp32"]["supported"] and peaks["fp32"]["gflops"] > 0 and set(peaks["fp32"]["by_size"]) == {"8"}
    assert peaks["bf16"] == {"supported": False, "gflops": None, "by_size": None}
    assert "bf16 not native here" in bench.describe_peaks(peaks)


def test_probe_flops_of_one_head_are_its_matmuls() -> None:
    """One layer head, no weighted sum: forward 2*D*hidden + 2*hidden*C per row; training 3x that (the
    backward computes both the weight and the input gradient of each product)."""
    dim, hidden, classes = 12, int(bench.PROBE["hidden"]), bench.PROBE_CLASSES
    train, evaluate = bench.probe_flops_per_row(3, dim, [1], False)
    forward = 2 * dim * hidden + 2 * hidden * classes
    assert evaluate == forward
    assert train == 3 * forward
