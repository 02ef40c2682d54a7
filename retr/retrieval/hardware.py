"""What the machine can compute fast: native bf16 on this CPU, and the precision ``auto`` resolves to.

bf16 autocast pays only where the hardware has bf16 arithmetic: CUDA, or a CPU with AVX512-BF16 or AMX-BF16.
On a CPU without them (e.g. AVX2-only) PyTorch emulates bf16 and training runs several times *slower* than
fp32, so ``auto`` picks fp32 there. The flags are read from /proc/cpuinfo (Linux); elsewhere we assume none.
``RETR_NATIVE_BF16=0|1`` overrides the detection (the test suite sets 0, so its numbers do not depend on the machine).
"""

from __future__ import annotations

import os
from pathlib import Path

BF16_FLAGS = ("avx512_bf16", "amx_bf16")
PRECISIONS = ("auto", "bf16", "fp32")


def cpu_flags(cpuinfo: Path = Path("/proc/cpuinfo")) -> set[str]:
    """The feature flags of the first CPU listed in ``cpuinfo``; empty when the file is absent or unreadable."""
    try:
        text = cpuinfo.read_text(errors="replace")
    except OSError:
        return set()
    for line in text.splitlines():
        key, _, value = line.partition(":")
        if key.strip() in ("flags", "Features"):
            return set(value.split())
    return set()


def cpu_has_native_bf16(flags: set[str] | None = None) -> bool:
    """True when the CPU computes bf16 in hardware (AVX512-BF16 or AMX-BF16); see RETR_NATIVE_BF16 above."""
    if flags is None and os.environ.get("RETR_NATIVE_BF16") in ("0", "1"):
        return os.environ["RETR_NATIVE_BF16"] == "1"
    flags = cpu_flags() if flags is None else flags
    return any(flag in flags for flag in BF16_FLAGS)


def resolve_precision(precision: str, device_type: str, flags: set[str] | None = None) -> str:
    """``bf16`` or ``fp32``: ``auto`` -> bf16 on CUDA or a native-bf16 CPU, else fp32; explicit values pass."""
    if precision not in PRECISIONS:
        raise ValueError(f"precision must be one of {', '.join(PRECISIONS)}, got {precision!r}")
    if precision != "auto":
        return precision
    if device_type == "cuda":
        return "bf16"
    if device_type == "cpu" and cpu_has_native_bf16(flags):
        return "bf16"
    return "fp32"
