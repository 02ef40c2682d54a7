"""Reliability probes: the real CLI, run as a user would, on tiny data made here.

Each probe runs ``python -m retr ...`` in a subprocess (with this clone first on the import path, so the probes
test the code they sit beside) and asserts the exit code, the shape of the message and the state of the file
system afterwards. Helpers: :func:`retr`, :func:`assert_user_error`, :func:`snapshot`, the ``tiny_beir`` fixture.
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]


def retr(*args: object, cwd: Path, timeout: int = 600, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    """Run ``retr ARGS`` in ``cwd``; returns the finished process (text stdout/stderr)."""
    environment = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")]),
                   "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", "COLUMNS": "200", **(env or {})}
    return subprocess.run([sys.executable, "-m", "retr", *map(str, args)], cwd=cwd, capture_output=True,
                          text=True, timeout=timeout, env=environment, stdin=subprocess.DEVNULL)


def assert_user_error(result: subprocess.CompletedProcess, *words: str) -> None:
    """A user mistake: exit 2, no traceback, one error line (the last on stderr; progress bars may precede it)
    containing every word (case-insensitive)."""
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert result.returncode == 2, f"exit {result.returncode}, stderr:\n{result.stderr}"
    assert "Traceback" not in result.stderr, result.stderr
    errors = [line for line in lines if "error:" in line]
    assert len(errors) == 1 and lines[-1] == errors[0], f"expected one error line, last, got:\n{result.stderr}"
    for word in words:
        assert word.lower() in errors[0].lower(), f"{word!r} not in {errors[0]!r}"


def snapshot(root: Path) -> dict[str, str]:
    """Every path under ``root`` (files with their sha256, folders marked), to compare before and after a probe."""
    state = {}
    for path in sorted(root.rglob("*")):
        rel = path.relative_to(root).as_posix()
        state[rel] = hashlib.sha256(path.read_bytes()).hexdigest() if path.is_file() else "<dir>"
    return state


def write_beir(root: Path, docs: int = 30, queries: int = 6) -> Path:
    """A tiny BEIR-layout dataset: ``docs`` documents on a few topics, ``queries`` queries, train and test qrels."""
    topics = ["protein folding in cells", "solar panel efficiency", "river flood models", "vaccine immune response",
              "galaxy rotation curves", "soil carbon storage"]
    root.mkdir(parents=True, exist_ok=True)
    with open(root / "corpus.jsonl", "w") as out:
        for i in range(docs):
            topic = topics[i % len(topics)]
            out.write(json.dumps({"_id": f"d{i}", "title": f"On {topic}", "text": f"A study {i} of {topic} and more."}) + "\n")
    with open(root / "queries.jsonl", "w") as out:
        for q in range(queries):
            out.write(json.dumps({"_id": f"q{q}", "text": f"what about {topics[q % len(topics)]}"}) + "\n")
    (root / "qrels").mkdir(exist_ok=True)
    for split, chosen in (("train", range(0, queries, 2)), ("test", range(1, queries, 2))):
        lines = ["query-id\tcorpus-id\tscore"] + [f"q{q}\td{q % len(topics)}\t1" for q in chosen]
        (root / "qrels" / f"{split}.tsv").write_text("\n".join(lines) + "\n")
    return root


@pytest.fixture
def tiny_beir(tmp_path: Path) -> Path:
    return write_beir(tmp_path / "tiny")
