"""The machine's own limit: measured dense-matmul throughput, and the FLOPs an encoder's forward costs.

Why measured and not read from a datasheet: the datasheet figure assumes boost clocks, every core and the ideal
instruction mix; what bounds this run is the matrix product that torch's own kernels (MKL/oneDNN on a CPU, cuBLAS
on a GPU) reach in this process, with its thread count, its matmul precision settings and whatever else the
machine is doing. Dividing a stage's achieved FLOP rate by that measured figure says how much of the reachable
speed the stage uses: near 1, only a faster machine or a cheaper model helps; far below 1, the time goes to
something other than dense arithmetic (data movement, small kernels, Python, decoding).
"""
from __future__ import annotations

import math
import statistics
import time
from typing import Callable

import torch
from torch.utils.flop_counter import FlopCounterMode

from benchmark.encoders.base import Encoder, window_forward
from benchmark.precision import bf16_supported

# the dtypes whose peak is measured, by the names model configs use (model.dtype)
PEAK_DTYPES: dict[str, torch.dtype] = {"fp32": torch.float32, "bf16": torch.bfloat16}


def dtype_supported(dtype: str, device: torch.device) -> bool:
    """fp32 runs everywhere; bf16 only where :func:`bf16_supported` says so; other names are not measured."""
    if dtype == "fp32":
        return True
    if dtype == "bf16":
        return bf16_supported(device)
    return False


def _synchronize(device: torch.device) -> None:
    """Wait for queued GPU work, so a timer measures the kernels and not just their launch."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def matmul_gflops(size: int, dtype: str, device: torch.device, repeats: int) -> float:
    """GFLOP/s of one square ``size`` x ``size`` matmul (2 n^3 FLOPs): median of ``repeats`` after a warm-up.

    Why median after a warm-up: the first call pays for allocation, kernel selection and (on a GPU) clock ramp-up,
    and a background process can slow any single call; the median is robust to both. On a CPU the product uses
    torch's current thread count, the one the encoder runs with in this process.
    """
    torch_dtype = PEAK_DTYPES[dtype]
    a = torch.randn(size, size, device=device).to(torch_dtype)
    b = torch.randn(size, size, device=device).to(torch_dtype)
    out = torch.empty(size, size, device=device, dtype=torch_dtype)
    torch.mm(a, b, out=out)
    _synchronize(device)
    times = []
    for _ in range(max(1, repeats)):
        start = time.perf_counter()
        torch.mm(a, b, out=out)
        _synchronize(device)
        times.append(time.perf_counter() - start)
    return 2 * size ** 3 / statistics.median(times) / 1e9


def size_sweep(dtype: str, device: torch.device, sizes: list[int], repeats: int) -> dict[int, float] | None:
    """GFLOP/s for each matmul size, or None where ``dtype`` is not native on ``device`` (nothing is run then).

    Why several sizes: small products show call overheads, large ones the arithmetic limit; the peak is the best.
    """
    if not dtype_supported(dtype, device):
        return None
    return {int(n): matmul_gflops(int(n), dtype, device, repeats) for n in sizes}


def peak_gflops(dtype: str, device: torch.device, sizes: list[int], repeats: int) -> float | None:
    """The measured peak: the best dense-matmul GFLOP/s over ``sizes``; None = dtype not supported here."""
    sweep = size_sweep(dtype, device, sizes, repeats)
    return max(sweep.values()) if sweep else None


def _attention_flops(query: tuple[int, ...], key: tuple[int, ...], value: tuple[int, ...], *args: object,
                     out_shape: object = None, **kwargs: object) -> int:
    """FLOPs of one attention call from its shapes: the two products Q K^T and (scores) V, as torch's own
    ``sdpa_flop_count`` counts them, for inputs of any number of batch/head axes (and grouped-query heads)."""
    *batch, queries, width = query
    rows = math.prod(batch)
    return 2 * rows * queries * key[-2] * width + 2 * rows * queries * key[-2] * value[-1]


# Attention ops torch's counter does not know (it counts the CUDA kernels, but on a CPU the fused
# scaled_dot_product_attention runs as one op it cannot decompose, so a transformer's attention would count 0).
# Forward only: enough for the encoders' inference; an attention backward on a CPU is not counted.
ATTENTION_OPS = {torch.ops.aten.scaled_dot_product_attention: _attention_flops,
                 torch.ops.aten._scaled_dot_product_flash_attention_for_cpu: _attention_flops}


def count_flops(fn: Callable[[], object]) -> int:
    """FLOPs of the matmuls, convolutions and attention that ``fn`` dispatches to torch (FlopCounterMode, plus
    :data:`ATTENTION_OPS`).

    Why torch's counter: it counts what actually runs (every layer, any padding), not a formula that drifts from
    the model; elementwise work, and anything computed outside torch (numpy, TensorFlow), counts 0.
    """
    with FlopCounterMode(display=False, custom_mapping=ATTENTION_OPS) as counter:
        fn()
    return int(counter.get_total_flops())


def encoder_flops_per_audio_second(encoder: Encoder, window_seconds: float, batch: int = 1) -> float:
    """FLOPs of one whole ``window_forward(encoder)`` call per second of audio, on random windows of that length.

    Why per second of audio: multiplied by a stage's throughput (seconds of audio per second) it gives the
    stage's achieved FLOP rate, whatever the batch size or window length the stage used.
    """
    samples = int(window_seconds * encoder.sample_rate)
    x = torch.randn(batch, samples).to(encoder.device) * 0.1
    forward = window_forward(encoder)
    with torch.inference_mode():
        flops = count_flops(lambda: forward(x))
    return flops / (batch * window_seconds)
