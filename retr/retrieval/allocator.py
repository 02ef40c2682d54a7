"""Keep freed memory in the process (glibc malloc), so torch's large CPU activations are not page-faulted in anew.

PyTorch's CPU allocator does not cache: every activation above glibc's mmap threshold (32 MiB at most) is a fresh
``mmap`` whose pages fault in on first touch and go back to the kernel on free. Encoding SmolLM2 in batches of 16k
tokens spent a quarter of its CPU time there (10M minor page faults, 28 s of system time for 200 passages). With
mmap off and a high trim threshold, freed blocks are reused from the heap: measured in ``bench/bench_malloc.py``.

``RETR_MALLOC=system`` keeps glibc's defaults. Elsewhere than glibc (macOS, musl) this does nothing.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os

M_TRIM_THRESHOLD = -1  # glibc mallopt parameters (malloc.h)
M_TOP_PAD = -2
M_MMAP_MAX = -4
KEEP_BYTES = 1 << 30  # heap memory kept after a free (trim threshold) and added to each heap growth (top pad)

_applied: bool | None = None


def keep_freed_memory() -> bool:
    """Tune glibc malloc once per process (see the module docstring); True when the settings took effect."""
    global _applied
    if _applied is not None:
        return _applied
    _applied = False
    if os.environ.get("RETR_MALLOC", "").lower() == "system":
        return _applied
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        mallopt = libc.mallopt
    except (OSError, AttributeError):
        return _applied
    mallopt.argtypes, mallopt.restype = [ctypes.c_int, ctypes.c_int], ctypes.c_int
    _applied = all(mallopt(param, value) == 1 for param, value in
                   ((M_MMAP_MAX, 0), (M_TRIM_THRESHOLD, KEEP_BYTES), (M_TOP_PAD, KEEP_BYTES // 4)))
    return _applied
