"""issue 9: a refused --out is refused before any long work: `retr mine` builds no BM25 index, `retr train` loads
no data or model, `retr index` loads no encoder, `retr search` without --index builds no index."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.reliability.conftest import assert_user_error, retr, snapshot, write_beir


@pytest.fixture
def root(tmp_path: Path) -> Path:
    write_beir(tmp_path / "data")
    (tmp_path / "cache").mkdir()  # the BM25 cache: must stay empty
    (tmp_path / "taken").mkdir()  # an artifact of another kind
    (tmp_path / "taken" / "manifest.json").write_text(json.dumps({"kind": "report"}))
    (tmp_path / "file.txt").write_text("mine")
    return tmp_path


COMMANDS = [
    ["mine", "--dataset", "data", "--bm25-cache", "cache"],
    # a model and data that do not exist: the --out error must come first
    ["train", "--objective", "llara", "--model", "no-such-model", "--data", "no-such-data"],
    ["index", "--corpus", "data", "--encoder", "no-such-model"],
    ["search", "--queries", "data", "--bm25-cache", "cache"],
]


@pytest.mark.parametrize("args", COMMANDS, ids=lambda a: a[0])
@pytest.mark.parametrize("out, words", [("taken", ("--out taken", "already exists")),
                                        ("file.txt", ("--out file.txt", "existing file"))])
def test_refused_out_before_any_work(root: Path, args: list[str], out: str, words: tuple[str, ...]) -> None:
    before = snapshot(root)
    assert_user_error(retr(*args, "--out", out, cwd=root), *words)
    assert snapshot(root) == before, "no index built, nothing written"
