from pathlib import Path

import pytest

from retr.retrieval.hardware import cpu_flags, cpu_has_native_bf16, resolve_precision


def test_cpu_flags_read_the_flags_line(tmp_path: Path) -> None:
    info = tmp_path / "cpuinfo"
    info.write_text("processor\t: 0\nmodel name\t: X\nflags\t\t: fpu avx2 avx512_bf16\n\nprocessor\t: 1\nflags : sse\n")
    assert cpu_flags(info) == {"fpu", "avx2", "avx512_bf16"}


def test_cpu_flags_absent_file_is_empty(tmp_path: Path) -> None:
    assert cpu_flags(tmp_path / "missing") == set()


def test_native_bf16_needs_avx512_bf16_or_amx() -> None:
    assert not cpu_has_native_bf16({"avx2", "fma", "avx512f"})
    assert cpu_has_native_bf16({"avx2", "avx512_bf16"})
    assert cpu_has_native_bf16({"amx_bf16"})


@pytest.mark.parametrize(
    "precision,device,flags,expected",
    [
        ("auto", "cuda", set(), "bf16"),
        ("auto", "cpu", {"avx2"}, "fp32"),
        ("auto", "cpu", {"amx_bf16"}, "bf16"),
        ("bf16", "cpu", {"avx2"}, "bf16"),
        ("fp32", "cuda", set(), "fp32"),
    ],
)
def test_resolve_precision(precision: str, device: str, flags: set, expected: str) -> None:
    assert resolve_precision(precision, device, flags) == expected


def test_resolve_precision_rejects_unknown() -> None:
    with pytest.raises(ValueError, match="precision"):
        resolve_precision("fp16", "cpu", set())


@pytest.mark.parametrize("value, expected", [("0", False), ("1", True)])
def test_retr_native_bf16_overrides_detection(monkeypatch, value: str, expected: bool) -> None:
    from retr.retrieval import hardware

    monkeypatch.setattr(hardware, "cpu_flags", lambda *a: {"avx512_bf16"} if not expected else {"avx2"})
    monkeypatch.setenv("RETR_NATIVE_BF16", value)
    assert cpu_has_native_bf16() is expected
    assert cpu_has_native_bf16({"avx512_bf16"}), "explicit flags are not overridden"
