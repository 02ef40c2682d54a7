"""ranx, with the machine code of its numba functions kept on disk so that ``retr score`` compiles them once.

Why: ranx runs on numba. Its metric kernels are ``@njit(cache=True)``, but the functions it calls from Python on
numba's typed containers (``numba.typed.Dict.__contains__``/``__iter__``/``__len__``, ``numba.typed.List``'s
constructor and ``append``) are numba's own ``@njit`` dispatchers without a cache, so every process compiled them
again; that compilation was the largest part of a SciFact-size ``retr score`` (300 queries x 1000 hits), the
rest being imports (measurements: docs/scoring.md, bench/bench_score.py).

:func:`import_ranx` points numba's on-disk cache at ``$RETR_HOME/ranx-kernels`` (``NUMBA_CACHE_DIR``, set here
and nowhere else; a ``NUMBA_CACHE_DIR`` the user set is kept) and turns caching on for every numba dispatcher of
ranx and of ``numba.typed``'s Dict and List, with ``Dispatcher.enable_caching`` — what ``@njit(cache=True)``
does. The code that runs is ranx's and numba's own, compiled by numba; only where its machine code is kept
changes, so the numbers are ranx's. numba checks a cached entry against the source file's hash, the numba
version and the argument types, and recompiles when one differs. Where the folder cannot be written, numba
falls back to its usual cache locations (or compiles in memory).
"""

from __future__ import annotations

import functools
import importlib
import os
import sys
import warnings
from pathlib import Path
from types import ModuleType

from retr.data.artifacts import retr_home

CACHE_SUBDIR = "ranx-kernels"
# numba.typed entry points ranx calls from Python (Dict: in, iteration, len; List: construction, append).
_NUMBA_TYPED = ("numba.typed.typeddict", "numba.typed.typedlist")


def cache_dir() -> Path:
    """Where the compiled kernels live: ``$NUMBA_CACHE_DIR`` when the user set it, else ``$RETR_HOME/ranx-kernels``."""
    return Path(os.environ.get("NUMBA_CACHE_DIR") or retr_home() / CACHE_SUBDIR)


def dispatchers() -> list:
    """The numba dispatchers whose machine code is cached: every one of ranx's modules (as imported so far) and
    numba.typed's Dict/List entry points."""
    from numba.core.dispatcher import Dispatcher

    modules = [module for name, module in list(sys.modules.items()) if name == "ranx" or name.startswith("ranx.")]
    modules += [importlib.import_module(name) for name in _NUMBA_TYPED]
    found = {id(value): value for module in modules for value in list(vars(module).values())
             if isinstance(value, Dispatcher)}  # fmt: skip
    return list(found.values())


@functools.cache
def import_ranx() -> ModuleType:
    """``import ranx`` with numba's disk cache at :func:`cache_dir` for ranx's functions (once per process)."""
    os.environ["NUMBA_CACHE_DIR"] = str(cache_dir())
    from numba.core import config
    from numba.core.errors import NumbaTypeSafetyWarning

    config.reload_config()  # numba may have been imported before the variable was set
    import ranx

    warnings.filterwarnings("ignore", category=NumbaTypeSafetyWarning)  # ranx's int64 -> uint64 index casts
    for dispatcher in dispatchers():
        dispatcher.enable_caching()  # (re)locates the cache under config.CACHE_DIR, as cache=True does
    return ranx
