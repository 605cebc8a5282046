"""Which floating-point precision an encoder runs in: what the hardware computes natively, and ``dtype=auto``.

Why a module of its own: the encoder registry (to resolve ``model.dtype=auto`` before a model is built), the bench
(to measure a bf16 peak only where it is real) and the runner all ask the same question, and the answer must be
the same everywhere: a cache key or record that says bf16 must mean the encoder really ran in bf16.
"""
from __future__ import annotations

from pathlib import Path

import torch

from benchmark.errors import ConfigError

# model.dtype values -> what they mean (auto is resolved to one of the others before an encoder is built)
DTYPE_CHOICES: dict[str, str] = {
    "fp32": "float32 everywhere (the reference; hidden states are checked against it)",
    "bf16": "bfloat16 weights and activations (native on CPUs with AVX512-BF16/AMX and on recent GPUs)",
    "fp16": "float16 weights and activations (GPUs; MERT only)",
    "auto": "bf16 where the device computes it natively and the encoder supports it, else fp32",
}
# /proc/cpuinfo flags of x86 CPUs with native bf16 dot products (without them torch emulates bf16: slow, no gain)
CPU_BF16_FLAGS = frozenset({"avx512_bf16", "amx_bf16"})
CPUINFO = Path("/proc/cpuinfo")


def cpu_flags(cpuinfo: Path | None = None) -> set[str]:
    """The CPU feature flags the kernel reports in ``cpuinfo`` (default :data:`CPUINFO`); empty where there is no
    such file (macOS, Windows), which reads as "no native bf16".

    Why the file and not a library: it is what the OS saw on this very machine, and needs no extra dependency.
    """
    try:
        text = (cpuinfo or CPUINFO).read_text()
    except OSError:
        return set()
    for line in text.splitlines():
        if line.startswith("flags") and ":" in line:
            return set(line.split(":", 1)[1].split())
    return set()


def bf16_supported(device: torch.device) -> bool:
    """Whether ``device`` computes bf16 matmuls natively.

    Why a check: where bf16 is emulated it is slower than fp32 and only adds rounding, so ``auto`` must not pick it
    and the bench reports no bf16 peak. A CPU needs oneDNN (``torch.backends.mkldnn``) and AVX512-BF16 or AMX-BF16;
    a GPU asks CUDA.
    """
    if device.type == "cuda":
        return bool(torch.cuda.is_bf16_supported())
    if device.type == "cpu":
        return bool(torch.backends.mkldnn.is_available()) and bool(cpu_flags() & CPU_BF16_FLAGS)
    return False


def check_dtype_name(value: object) -> str:
    """``value`` if it is a known ``model.dtype``; else the ConfigError naming every choice."""
    if value not in DTYPE_CHOICES:
        known = "; ".join(f"{name} = {about}" for name, about in DTYPE_CHOICES.items())
        raise ConfigError(f"model.dtype={value!r}: must be one of {', '.join(DTYPE_CHOICES)} ({known})")
    return str(value)


def resolve_dtype(requested: str, supported: tuple[str, ...], device: torch.device, model: str = "") -> str:
    """The dtype an encoder that runs in ``supported`` dtypes runs in on ``device`` for ``model.dtype=requested``.

    ``auto`` is bf16 where both the encoder and the device support it, else fp32. An explicit dtype the encoder
    cannot run in is refused here, before any data work, with the encoder's own choices.
    """
    check_dtype_name(requested)
    if requested == "auto":
        return "bf16" if "bf16" in supported and bf16_supported(device) else "fp32"
    if requested not in supported:
        name = f"model {model!r}" if model else "this encoder"
        raise ConfigError(f"model.dtype={requested}: {name} runs in {', '.join(supported)} only; use "
                          f"model.dtype={supported[0]} or model.dtype=auto (bf16 where it is native and supported)")
    return requested
