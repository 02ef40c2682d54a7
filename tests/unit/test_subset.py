"""The CPU sub-corpus keeps every judged document, adds seeded distractors, and is itself a BEIR dataset."""

from __future__ import annotations

import json
from pathlib import Path

from retr.data.artifacts import open_artifact
from retr.data.datasets import Dataset
from retr.data.subset import SubsetConfig, make_subset


def test_subset_keeps_judged_docs_and_is_deterministic(tmp_path: Path) -> None:
    root = tmp_path / "src"
    (root / "qrels").mkdir(parents=True)
    (root / "corpus.jsonl").write_text("".join(json.dumps({"_id": f"d{i}", "text": f"t {i}"}) + "\n" for i in range(50)))
    (root / "queries.jsonl").write_text("".join(json.dumps({"_id": f"q{i}", "text": "x"}) + "\n" for i in range(3)))
    (root / "qrels" / "test.tsv").write_text("query-id\tcorpus-id\tscore\nq0\td7\t1\nq1\td40\t1\nq1\td99\t1\n")
    (root / "qrels" / "train.tsv").write_text("query-id\tcorpus-id\tscore\nq2\td1\t1\n")
    first = make_subset(SubsetConfig(dataset=str(root), out=tmp_path / "a", distractors=5, seed=3))
    second = make_subset(SubsetConfig(dataset=str(root), out=tmp_path / "b", distractors=5, seed=3))
    assert (first / "corpus.jsonl").read_bytes() == (second / "corpus.jsonl").read_bytes()
    subset = Dataset(str(first))
    ids = [d.id for d in subset.corpus()]
    assert {"d7", "d40"} <= set(ids) and len(ids) == 7
    assert set(subset.queries("test")) == {"q0", "q1"}, "only the queries judged in the chosen split"
    assert subset.qrels("test") == {"q0": {"d7": 1}, "q1": {"d40": 1}}  # the judgment of a missing doc is dropped
    assert open_artifact(first, kind="dataset").manifest["metrics"]["judged_docs"] == 2
    other = make_subset(SubsetConfig(dataset=str(root), out=tmp_path / "c", distractors=5, seed=4))
    assert (other / "corpus.jsonl").read_bytes() != (first / "corpus.jsonl").read_bytes()
