"""The Python API: every public name resolves, the README example runs, ad-hoc search returns texts."""

from __future__ import annotations

import contextlib
import io
import re
from pathlib import Path

import pytest

import retr
from retr.data.artifacts import ArtifactError
from retr.retrieval.searcher import as_queries, read_query_file
from tests.reliability.conftest import write_beir

README = Path(__file__).resolve().parents[2] / "README.md"


def test_every_public_name_resolves() -> None:
    for name in retr.__all__:
        assert callable(getattr(retr, name)), name
    with pytest.raises(AttributeError):
        retr.no_such_thing  # noqa: B018


@pytest.fixture
def workdir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    write_beir(tmp_path / "data" / "scifact")
    monkeypatch.setenv("RETR_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.chdir(tmp_path)
    return tmp_path


def test_readme_example_runs(workdir: Path) -> None:
    example = re.search(r"<!-- api-example -->\n```python\n(.*?)```", README.read_text(), re.S).group(1)
    printed = io.StringIO()
    with contextlib.redirect_stdout(printed):
        exec(compile(example, "README.md", "exec"), {})
    lines = printed.getvalue().splitlines()
    assert lines[-1] == "30 documents indexed"
    first = lines[0].split(" ", 3)
    assert first[0] == "1" and "solar panel efficiency" in first[3]


def test_hits_carry_text_and_a_moved_corpus_is_named(workdir: Path) -> None:
    index = retr.build_index(retr.IndexConfig(corpus="scifact", encoder="bm25", out=workdir / "idx"))
    hits = retr.open_index(index).search({"a": "river flood models", "b": "galaxy rotation"}, k=2)
    assert [h.rank for h in hits["a"]] == [1, 2] and all("river flood" in h.text for h in hits["a"])
    assert hits["a"][0].score >= hits["a"][1].score
    (workdir / "data" / "scifact").rename(workdir / "data" / "moved")
    with pytest.raises(ArtifactError, match="gone"):
        retr.open_index(index).search("river", k=1)
    found = retr.open_index(index, corpus=workdir / "data" / "moved").search("river", k=1)
    assert found["q1"][0].text


def test_query_inputs(tmp_path: Path) -> None:
    assert as_queries("x") == {"q1": "x"} and as_queries(["x", "y"]) == {"q1": "x", "q2": "y"}
    with pytest.raises(ValueError):
        as_queries([" "])
    path = tmp_path / "q.txt"
    path.write_text("first question\n\nsecond one\n")
    assert read_query_file(path) == {"q1": "first question", "q2": "second one"}
    path.write_text("a\tfirst\nb\tsecond\n")
    assert read_query_file(path) == {"a": "first", "b": "second"}
    path.write_text("a\tfirst\na\tagain\n")
    with pytest.raises(ValueError, match=":2: duplicate"):
        read_query_file(path)
