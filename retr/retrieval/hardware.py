"""What the machine can do fast, detected rather than assumed: native bf16 on this CPU, a CUDA device.

bf16 pays only where the hardware computes it natively (CUDA, or x86 CPUs with AVX512-BF16 or AMX): elsewhere
PyTorch emulates it and it is slower than fp32 (about x6 slower measured on an AVX2-only AMD EPYC here).
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

NATIVE_BF16_FLAGS = ("avx512_bf16", "amx_bf16")
PRECISIONS = ("auto", "bf16", "fp32")


@lru_cache(maxsize=1)
def cpu_flags(cpuinfo: Path = Path("/proc/cpuinfo")) -> frozenset[str]:
    """The feature flags of the first CPU in ``/proc/cpuinfo`` (empty where there is no such file)."""
    try:
        for line in cpuinfo.read_text().splitlines():
            if line.startswith(("flags", "Features")):
                return frozenset(line.split(":", 1)[1].split())
    except OSError:
        pass
    return frozenset()


def cpu_has_native_bf16(flags: frozenset[str] | None = None) -> bool:
    return any(flag in (cpu_flags() if flags is None else flags) for flag in NATIVE_BF16_FLAGS)


def resolve_precision(precision: str, device_type: str, flags: frozenset[str] | None = None) -> str:
    """``auto`` -> ``bf16`` on CUDA or a CPU with native bf16, else ``fp32``; explicit choices pass through."""
    if precision not in PRECISIONS:
        raise ValueError(f"unknown precision {precision!r}; choose one of {', '.join(PRECISIONS)}")
    if precision != "auto":
        return precision
    if device_type == "cuda" or (device_type == "cpu" and cpu_has_native_bf16(flags)):
        return "bf16"
    return "fp32"
