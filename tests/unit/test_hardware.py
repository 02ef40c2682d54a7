"""Precision `auto` follows the hardware: bf16 only where it is native (CUDA, AVX512-BF16 or AMX CPUs)."""

from __future__ import annotations

from pathlib import Path

import pytest

from retr.retrieval.hardware import cpu_flags, cpu_has_native_bf16, resolve_precision

AVX2 = frozenset({"fpu", "avx", "avx2", "fma"})
SAPPHIRE = AVX2 | {"avx512f", "avx512_bf16", "amx_bf16", "amx_tile"}


def test_auto_is_bf16_only_where_it_is_native() -> None:
    assert resolve_precision("auto", "cpu", AVX2) == "fp32"
    assert resolve_precision("auto", "cpu", SAPPHIRE) == "bf16"
    assert resolve_precision("auto", "cpu", frozenset({"amx_bf16"})) == "bf16"
    assert resolve_precision("auto", "cuda", AVX2) == "bf16"


def test_explicit_choices_pass_through_and_unknown_ones_are_refused() -> None:
    assert resolve_precision("bf16", "cpu", AVX2) == "bf16" and resolve_precision("fp32", "cuda") == "fp32"
    with pytest.raises(ValueError, match="choose one of"):
        resolve_precision("fp8", "cpu", AVX2)


def test_flags_are_read_from_cpuinfo(tmp_path: Path) -> None:
    cpuinfo = tmp_path / "cpuinfo"
    cpuinfo.write_text("processor\t: 0\nflags\t\t: fpu avx2 avx512_bf16\n\nprocessor\t: 1\nflags\t\t: fpu\n")
    flags = cpu_flags.__wrapped__(cpuinfo)
    assert flags == {"fpu", "avx2", "avx512_bf16"} and cpu_has_native_bf16(flags)
    assert cpu_flags.__wrapped__(tmp_path / "missing") == frozenset()
