"""Dataset readers: formats, streaming, and every bad-input case with file and line in the error."""

from __future__ import annotations

import gzip
import json
import tracemalloc
from pathlib import Path

import pytest

from retr.data.datasets import Dataset
from retr.data.errors import DataError
from retr.data.trec import read_qrels, read_run, write_run


def write_beir(root: Path, corpus_lines: list[str] | None = None) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    docs = corpus_lines or [
        json.dumps({"_id": "d1", "title": "Cats", "text": "cats purr"}),
        json.dumps({"_id": "d2", "title": "", "text": "dogs bark"}),
        json.dumps({"_id": "d3", "title": "", "text": "   "}),
    ]
    (root / "corpus.jsonl").write_text("\n".join(docs) + "\n")
    (root / "queries.jsonl").write_text(
        "\n".join(json.dumps({"_id": q, "text": t}) for q, t in [("q1", "purr?"), ("q2", "bark?"), ("q3", "x")]) + "\n"
    )
    (root / "qrels").mkdir(exist_ok=True)
    (root / "qrels" / "test.tsv").write_text("query-id\tcorpus-id\tscore\nq1\td1\t1\nq2\td2\t2\nq9\td1\t1\nq2\td7\t1\n")
    return root


def test_beir_reader(tmp_path: Path) -> None:
    dataset = Dataset(str(write_beir(tmp_path / "toy")))
    docs = list(dataset.corpus())
    assert [d.id for d in docs] == ["d1", "d2", "d3"]
    assert docs[0].contents == "Cats cats purr" and docs[1].contents == "dogs bark"
    assert dataset.stats == {"docs": 3, "empty_texts": 1}
    assert dataset.queries("test") == {"q1": "purr?", "q2": "bark?"}
    assert dataset.qrels("test")["q2"] == {"d2": 2, "d7": 1}
    report = dataset.qrels_report("test")
    assert report == {"qrels": 4, "judged_queries": 3, "unknown_query_ids": 1, "unknown_doc_ids": 1}
    record = dataset.as_input("test")
    assert record["kind"] == "dataset" and set(record["files"]) == {"corpus.jsonl", "queries.jsonl", "test.tsv"}


@pytest.mark.parametrize(
    "line, message",
    [
        ("{not json", "malformed JSON"),
        ('["a list"]', "expected a JSON object"),
        ('{"title": "no id", "text": "x"}', "no '_id'"),
        ('{"_id": "d1", "text": 5}', "'text' is not a string"),
        ('{"_id": "d1", "text": "dup"}', "duplicate document id 'd1'"),
    ],
)
def test_bad_corpus_lines_name_file_and_line(tmp_path: Path, line: str, message: str) -> None:
    good = json.dumps({"_id": "d1", "text": "fine"})
    root = write_beir(tmp_path / "bad", [good, "", line])
    with pytest.raises(DataError, match=rf"corpus\.jsonl:3: .*{message}"):
        list(Dataset(str(root)).corpus())


def test_msmarco_dir_tsv_and_trec_qrels(tmp_path: Path) -> None:
    root = tmp_path / "msmarco"
    root.mkdir()
    (root / "collection.tsv").write_text("0\tthe first passage\n1\tthe second\n")
    (root / "queries.dev.tsv").write_text("10\twhat is first\n11\tsecond?\n")
    (root / "qrels.dev.tsv").write_text("10 0 0 1\n11 0 1 1\n")
    dataset = Dataset(str(root))
    assert dataset.format == "msmarco"
    assert [d.text for d in dataset.corpus()] == ["the first passage", "the second"]
    assert dataset.queries("dev") == {"10": "what is first", "11": "second?"}
    assert dataset.qrels("dev") == {"10": {"0": 1}, "11": {"1": 1}}
    (root / "collection.tsv").write_text("0\tok\n1 no tab here\n")
    with pytest.raises(DataError, match=r"collection\.tsv:2: "):
        list(Dataset(str(root)).corpus())
    (root / "queries.dev.tsv").write_text("10\tok\n10\tagain\n")
    with pytest.raises(DataError, match=r"queries\.dev\.tsv:2: duplicate query id"):
        Dataset(str(root)).queries("dev")


def test_gzipped_jsonl_corpus_streams_in_constant_memory(tmp_path: Path) -> None:
    path = tmp_path / "passages.jsonl.gz"
    text = "word " * 400
    with gzip.open(path, "wt") as out:
        for i in range(10000):
            out.write(json.dumps({"_id": f"{i // 5}-{i % 5}", "title": "T", "text": text}) + "\n")
    dataset = Dataset(str(path))
    tracemalloc.start()
    count = sum(1 for _ in dataset.corpus())
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert count == 10000
    # The corpus holds ~20 MB of text; streaming keeps only the id set (10k short strings, ~1 MB).
    assert peak < 4_000_000, peak


def test_unknown_specs_and_missing_parts(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RETR_DATA_DIR", str(tmp_path))
    with pytest.raises(DataError, match="no such dataset"):
        Dataset("does-not-exist")
    write_beir(tmp_path / "named")
    assert Dataset("named").format == "beir"  # short names resolve under RETR_DATA_DIR
    with pytest.raises(DataError, match="no qrels for split 'dev'"):
        Dataset("named").qrels("dev")
    (tmp_path / "x.txt").write_text("")
    with pytest.raises(DataError, match="unknown dataset file type"):
        Dataset(str(tmp_path / "x.txt"))


def test_irds_offline_gives_a_clear_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("IR_DATASETS_HOME", str(tmp_path / "irds"))
    with pytest.raises(DataError, match="ir_datasets knows no dataset"):
        list(Dataset("irds:no/such/dataset").corpus())


def test_trec_run_round_trip_and_bad_lines(tmp_path: Path) -> None:
    run = {"q2": {"a": 1.0, "b": 3.0, "c": 1.0}, "q1": {"z": 0.5}}
    write_run(tmp_path / "run.trec", run, tag="t")
    lines = (tmp_path / "run.trec").read_text().splitlines()
    assert lines[0] == "q1 Q0 z 1 0.500000 t"
    assert [line.split()[2] for line in lines[1:]] == ["b", "a", "c"]  # ties broken by doc id
    assert read_run(tmp_path / "run.trec") == run
    (tmp_path / "bad.trec").write_text("q1 Q0 d 1 0.5 t\nq1 Q0 d 1 notanumber t\n")
    with pytest.raises(DataError, match=r"bad\.trec:2: score"):
        read_run(tmp_path / "bad.trec")
    (tmp_path / "bad.qrels").write_text("q1 0 d1 1\nq1 d1\n")
    with pytest.raises(DataError, match=r"bad\.qrels:2: "):
        read_qrels(tmp_path / "bad.qrels")


def test_a_new_format_is_one_registered_class(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Adding a layout touches one class: Dataset finds it through the registry and gives it the shared checks."""
    from retr.data import formats

    class CsvFormat(formats.DatasetFormat):
        name = "csv"

        @classmethod
        def detect(cls, spec: str, path: Path) -> bool:
            return path.is_file() and path.suffix == ".csv"

        def corpus_path(self) -> Path | None:
            return self.root

        def docs(self):
            for where, line in formats.numbered_lines(self.root):
                doc_id, _, text = line.rstrip("\n").partition(",")
                yield where, formats.Doc(doc_id, "", text)

    monkeypatch.setattr(formats, "FORMATS", [*formats.FORMATS])
    formats.register(CsvFormat)
    (tmp_path / "c.csv").write_text("a,first\nb,second\na,again\n")
    dataset = Dataset(str(tmp_path / "c.csv"))
    assert dataset.format == "csv" and dataset.name == "c"
    with pytest.raises(DataError, match=r"c\.csv:3: duplicate document id 'a'"):
        list(dataset.corpus())
    assert dataset.stats == {"docs": 2, "empty_texts": 0}
    assert set(dataset.as_input()["files"]) == {"c.csv"}


def test_crlf_and_byte_order_mark_read_as_plain_lines(tmp_path: Path) -> None:
    root = write_beir(tmp_path / "crlf")
    (root / "corpus.jsonl").write_bytes(b'\xef\xbb\xbf{"_id": "d1", "text": "a"}\r\n{"_id": "d2", "text": "b"}\r\n')
    assert [d.id for d in Dataset(str(root)).corpus()] == ["d1", "d2"]
    (tmp_path / "c.tsv").write_bytes(b"\xef\xbb\xbf1\tfirst\r\n2\tsecond\ttitle\r\n")
    docs = list(Dataset(str(tmp_path / "c.tsv")).corpus())
    assert [(d.id, d.text, d.title) for d in docs] == [("1", "first", ""), ("2", "second", "title")]
    (tmp_path / "msmarco").mkdir()
    (tmp_path / "msmarco" / "queries.dev.tsv").write_bytes(b"10\twhat\r\n")
    assert Dataset(str(tmp_path / "msmarco")).queries("dev") == {"10": "what"}
