"""issue 9 D20: qrels edited after a search. ``retr score`` compares the qrels file with the sha256 the run's
manifest recorded at search time; a changed file is one line + exit 2 unless --allow-changed-qrels, and the
report's manifest says which it was."""

from __future__ import annotations

import json
from pathlib import Path

from tests.reliability.conftest import assert_user_error, retr, snapshot


def _searched(tiny_beir: Path, tmp_path: Path) -> None:
    assert retr("index", "--corpus", tiny_beir, "--encoder", "bm25", "--out", "idx", cwd=tmp_path).returncode == 0
    done = retr("search", "--index", "idx", "--queries", tiny_beir, "--split", "test", "--out", "run", cwd=tmp_path)
    assert done.returncode == 0, done.stderr


def _manifest(path: Path) -> dict:
    return json.loads((path / "manifest.json").read_text())


def test_changed_qrels_refused_unless_allowed(tiny_beir: Path, tmp_path: Path) -> None:
    _searched(tiny_beir, tmp_path)
    same = retr("score", "run", "--out", "rep-same", cwd=tmp_path)
    assert same.returncode == 0, same.stderr
    assert _manifest(tmp_path / "rep-same")["metrics"]["qrels_since_search"] == {"run": "unchanged"}

    qrels = tiny_beir / "qrels" / "test.tsv"
    qrels.write_text(qrels.read_text() + "q1\td7\t1\n")  # one more judgment after the search
    before = snapshot(tmp_path)
    refused = retr("score", "run", "--out", "rep", cwd=tmp_path)
    assert_user_error(refused, "test.tsv", "changed since run run", "--allow-changed-qrels")
    assert snapshot(tmp_path) == before, "a refused score writes nothing"

    allowed = retr("score", "run", "--out", "rep", "--allow-changed-qrels", cwd=tmp_path)
    assert allowed.returncode == 0, allowed.stderr
    manifest = _manifest(tmp_path / "rep")
    assert manifest["config"]["allow_changed_qrels"] is True
    assert manifest["metrics"]["qrels_since_search"] == {"run": "changed"}

    # a qrels file the user names (not the one searched with) is a choice, recorded as 'other'
    (tmp_path / "mine.tsv").write_text("q1 0 d5 1\nq3 0 d3 1\n")
    done = retr("score", "run", "--qrels", "mine.tsv", "--out", "rep-other", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert _manifest(tmp_path / "rep-other")["metrics"]["qrels_since_search"] == {"run": "other"}
