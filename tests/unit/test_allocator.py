"""retr's glibc malloc settings: applied once per process, and RETR_MALLOC=system keeps glibc's defaults."""

from __future__ import annotations

import os
import platform
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PROBE = "from retr.retrieval.allocator import keep_freed_memory as k; print(k(), k())"


def probe(value: str) -> str:
    env = {**os.environ, "PYTHONPATH": str(ROOT), "RETR_MALLOC": value}
    return subprocess.run([sys.executable, "-c", PROBE], env=env, capture_output=True, text=True,
                          check=True).stdout.strip()


@pytest.mark.skipif(platform.libc_ver()[0] != "glibc", reason="mallopt settings exist on glibc only")
def test_applied_on_glibc_unless_system_is_asked() -> None:
    assert probe("") == "True True"
    assert probe("system") == "False False"
