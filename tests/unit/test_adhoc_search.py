"""`retr search --query`: typed queries against BM25 and dense indexes, hits printed with their document text."""

from __future__ import annotations

import io
import json
from pathlib import Path

import pytest

import retr
from retr.cli.hits import print_hits, snippet
from retr.retrieval.searcher import Hit
from tests.reliability.conftest import assert_user_error, retr as run_cli, write_beir
from tests.unit.tiny_models import make_tiny_model


@pytest.fixture(scope="module")
def indexes(tmp_path_factory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("adhoc")
    data = write_beir(root / "tiny")
    model = make_tiny_model(root / "llama", "llama")
    return {
        "root": root,
        "bm25": retr.build_index(retr.IndexConfig(corpus=str(data), encoder="bm25", out=root / "bm25")),
        "dense": retr.build_index(retr.IndexConfig(corpus=str(data), encoder=str(model), out=root / "dense",
                                                   max_passage_length=32)),
    }


@pytest.mark.parametrize("kind", ["bm25", "dense"])
def test_query_prints_ranked_hits_with_text(indexes, kind: str) -> None:
    result = run_cli("search", "--index", indexes[kind], "--query", "river flood models", "--query", "galaxy",
                     "--k", "3", cwd=indexes["root"])
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0] == "query_id\trank\tdocid\tscore\tsnippet" and len(lines) == 1 + 2 * 3
    rows = [line.split("\t") for line in lines[1:]]
    assert [r[0] for r in rows] == ["q1"] * 3 + ["q2"] * 3 and [r[1] for r in rows[:3]] == ["1", "2", "3"]
    assert all(r[4].startswith("On ") for r in rows), "each hit carries its document's title and text"
    if kind == "bm25":
        assert "river flood" in rows[0][4]
    assert not list(indexes["root"].glob("runs")), "ad-hoc search writes nothing"


def test_query_file_and_json_output(indexes, tmp_path: Path) -> None:
    queries = tmp_path / "q.tsv"
    queries.write_text("a\tsolar panel efficiency\nb\tsoil carbon storage\n")
    result = run_cli("search", "--index", indexes["bm25"], "--queries", queries, "--k", "2", "--format", "json",
                     cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    hits = [json.loads(line) for line in result.stdout.splitlines()]
    assert [(h["query_id"], h["rank"]) for h in hits] == [("a", 1), ("a", 2), ("b", 1), ("b", 2)]
    assert "solar panel" in hits[0]["text"] and hits[0]["score"] >= hits[1]["score"]


def test_a_moved_corpus_is_one_line(indexes, tmp_path: Path) -> None:
    import shutil

    data = shutil.copytree(indexes["root"] / "tiny", tmp_path / "tiny")
    index = retr.build_index(retr.IndexConfig(corpus=str(data), encoder="bm25", out=tmp_path / "idx"))
    data.rename(tmp_path / "elsewhere")
    assert_user_error(run_cli("search", "--index", index, "--query", "river", cwd=tmp_path), "gone")
    ok = run_cli("search", "--index", index, "--query", "river", "--corpus", tmp_path / "elsewhere", cwd=tmp_path)
    assert ok.returncode == 0 and "river" in ok.stdout


def test_table_on_a_terminal_and_snippets() -> None:
    class Tty(io.StringIO):
        def isatty(self) -> bool:
            return True

    out = Tty()
    print_hits({"q1": [Hit(1, "d7", 12.5, "a long text " * 30)]}, {"q1": "what"}, stream=out, width=40)
    text = out.getvalue()
    assert "q1: what" in text and "d7" in text and "12.5000" in text and "…" in text
    assert snippet("a\n b  c", 10) == "a b c" and snippet("x" * 20, 5) == "xxxx…"
