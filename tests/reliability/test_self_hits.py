"""issue 9: BEIR's self-hit convention (BEIR ``ignore_identical_ids``, Pyserini ``--remove-query``). In ArguAna and
Quora the queries are corpus documents under the same ids; ``retr search`` drops such a hit by default on BEIR-layout
data, keeps it with --no-drop-self, and records which in the run manifest."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from retr.data.datasets import Dataset
from tests.reliability.conftest import retr, write_beir


def _run(path: Path) -> tuple[dict, dict[str, list[str]]]:
    manifest = json.loads((path / "manifest.json").read_text())
    ranked: dict[str, list[str]] = {}
    for line in (path / "run.trec").read_text().splitlines():
        qid, _, doc, *_ = line.split()
        ranked.setdefault(qid, []).append(doc)
    return manifest, ranked


def test_self_hits_dropped_by_default_on_beir_data(tmp_path: Path) -> None:
    data = write_beir(tmp_path / "quora-like")
    queries = [json.loads(line) for line in (data / "queries.jsonl").read_text().splitlines()]
    with open(data / "corpus.jsonl", "a") as out:  # every query is also a document, under its own id (as Quora)
        for query in queries:
            out.write(json.dumps({"_id": query["_id"], "title": "", "text": query["text"]}) + "\n")
    assert retr("index", "--corpus", data, "--encoder", "bm25", "--out", "idx", cwd=tmp_path).returncode == 0
    for out, flag in (("default", []), ("kept", ["--no-drop-self"])):
        done = retr("search", "--index", "idx", "--queries", data, "--split", "test", "--k", "5", "--out", out,
                    *flag, cwd=tmp_path)
        assert done.returncode == 0, done.stderr

    manifest, ranked = _run(tmp_path / "default")
    assert set(ranked) == {"q1", "q3", "q5"}
    assert all(qid not in docs for qid, docs in ranked.items()), ranked
    assert all(len(docs) == 4 for docs in ranked.values())  # k searched, the self-hit removed after (as Pyserini)
    assert manifest["config"]["drop_self"] is True
    assert manifest["metrics"]["self_hits"] == {"drop": True, "found": 3, "dropped": 3,
                                                "why": manifest["metrics"]["self_hits"]["why"]}

    manifest, ranked = _run(tmp_path / "kept")
    assert all(docs[0] == qid for qid, docs in ranked.items()), ranked  # the query finds itself first
    assert manifest["config"]["drop_self"] is False
    assert manifest["metrics"]["self_hits"]["dropped"] == 0 and manifest["metrics"]["self_hits"]["found"] == 3


def test_default_off_where_qrels_pair_a_query_with_its_own_id(tmp_path: Path) -> None:
    """Cranfield-like numbering: query 1 and document 1 are unrelated, and a judgment may pair them."""
    data = write_beir(tmp_path / "numbered")
    qrels = data / "qrels" / "test.tsv"
    qrels.write_text(qrels.read_text() + "q1\tq1\t1\n")
    assert Dataset(str(data)).self_hit_default("test")[0] is False
    assert Dataset(str(data)).self_hit_default("train")[0] is True
    assert Dataset(str(data)).self_hit_default(None)[0] is False


@pytest.mark.parametrize("name", ["scifact", "nfcorpus"])
def test_real_beir_sets_have_no_self_hits(data_dir: Path, name: str) -> None:
    """SciFact and NFCorpus runs are unchanged by the default: no query id is a document id there."""
    if not (data_dir / name).is_dir():
        pytest.skip(f"{name} not found under {data_dir}")
    dataset = Dataset(str(data_dir / name))
    assert dataset.self_hit_default("test")[0] is True
    assert not set(dataset.queries(None)) & dataset.corpus_ids()


def test_cranfield_keeps_same_id_hits(data_dir: Path) -> None:
    """Cranfield (BEIR layout here) numbers queries and documents separately, and its qrels judge document 225
    relevant to query 225: dropping same-id hits there would drop a relevant document, so the default is off."""
    if not (data_dir / "cranfield").is_dir():
        pytest.skip(f"cranfield not found under {data_dir}")
    dataset = Dataset(str(data_dir / "cranfield"))
    assert dataset.qrels("test")["225"]["225"] > 0
    assert dataset.self_hit_default("test")[0] is False
