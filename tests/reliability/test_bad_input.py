"""Bad input files through the real CLI: one line naming file:line, exit 2, nothing written (issue 9 D6, D7, D11,
D13)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.reliability.conftest import assert_user_error, retr, snapshot, write_beir

BAD_BYTES = b'{"_id": "d9", "title": "x", "text": "caf\xe9 au lait"}\n'


def probe(args: list[object], root: Path, *words: str) -> None:
    (root / "cache").mkdir(exist_ok=True)  # the BM25 cache folder: the command may use it, not leave things in it
    before = snapshot(root)
    assert_user_error(retr(*args, cwd=root), *words)
    assert snapshot(root) == before, "nothing written, moved or deleted"


@pytest.fixture
def data(tmp_path: Path) -> Path:
    return write_beir(tmp_path / "data")


def test_non_utf8_corpus_in_mine_and_index(data: Path, tmp_path: Path) -> None:
    with open(data / "corpus.jsonl", "ab") as out:
        out.write(BAD_BYTES)
    probe(["mine", "--dataset", data, "--out", "m", "--bm25-cache", "cache"], tmp_path, "corpus.jsonl:31", "utf-8")
    probe(["index", "--corpus", data, "--encoder", "bm25", "--out", "i"], tmp_path, "corpus.jsonl:31", "utf-8")


def test_non_utf8_and_non_object_queries(data: Path, tmp_path: Path) -> None:
    with open(data / "queries.jsonl", "ab") as out:
        out.write(b'{"_id": "q9", "text": "\xff"}\n')
    probe(["search", "--queries", data, "--split", "all", "--out", "r", "--bm25-cache", "cache"], tmp_path,
          "queries.jsonl:7", "utf-8")
    lines = (data / "queries.jsonl").read_bytes().splitlines()[:-1] + [b'["q9", "text"]']
    (data / "queries.jsonl").write_bytes(b"\n".join(lines) + b"\n")
    probe(["search", "--queries", data, "--split", "all", "--out", "r", "--bm25-cache", "cache"], tmp_path,
          "queries.jsonl:7", "json object")


@pytest.mark.parametrize("grade, words", [("inf", ("qrels.tsv:2", "integer")), ("1.7", ("qrels.tsv:2", "integer")),
                                          ("\xff", ("qrels.tsv:2", "utf-8")), ("high", ("qrels.tsv:2", "number"))])
def test_bad_qrels_grades(tmp_path: Path, grade: str, words: tuple[str, ...]) -> None:
    (tmp_path / "run.trec").write_text("q1 Q0 d1 1 2.0 t\n")
    raw = "query-id\tcorpus-id\tscore\nq1\td1\t".encode() + (b"\xff" if grade == "\xff" else grade.encode()) + b"\n"
    (tmp_path / "qrels.tsv").write_bytes(raw)
    probe(["score", "run.trec", "--qrels", "qrels.tsv", "--out", "rep"], tmp_path, *words)


@pytest.mark.parametrize("lines, words", [
    ("q1 Q0 d1 1 nan t\n", ("run.trec:1", "finite")),
    ("q1 Q0 d1 1 inf t\n", ("run.trec:1", "finite")),
    ("q1 Q0 d1 1 2.0 t\nq1 Q0 d1 2 1.0 t\n", ("run.trec:2", "twice")),
    ("q1 Q0 d1 1 2.0\n", ("run.trec:1", "6 fields")),
])
def test_bad_run_files(tmp_path: Path, lines: str, words: tuple[str, ...]) -> None:
    (tmp_path / "run.trec").write_text(lines)
    (tmp_path / "qrels.tsv").write_text("q1 0 d1 1\n")
    probe(["score", "run.trec", "--qrels", "qrels.tsv", "--out", "rep"], tmp_path, *words)


def test_empty_corpus_is_refused_by_index_and_mine(tmp_path: Path) -> None:
    data = write_beir(tmp_path / "empty")
    (data / "corpus.jsonl").write_text("")
    probe(["index", "--corpus", data, "--encoder", "bm25", "--out", "i"], tmp_path, "no documents")
    probe(["mine", "--dataset", data, "--out", "m", "--bm25-cache", "cache"], tmp_path, "no documents")
