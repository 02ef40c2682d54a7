"""BM25 on the real SciFact (skipped without the data): the published Pyserini BM25-flat numbers through
``search(SearchConfig(...))``, our bulk hit transfer equal to Pyserini's own ``LuceneSearcher.batch_search``, and
``mine`` on the train split. The index is built once into a tmp cache for the module (about 5 s).
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from retr.data.artifacts import Artifact, open_artifact
from retr.data.datasets import Dataset
from retr.data.trec import read_qrels, read_run
from retr.indexing.bm25 import ensure_bm25_index
from retr.retrieval.bm25_search import search_bm25
from retr.retrieval.search import SearchConfig, search
from retr.training.mining import MineConfig, mine, ranked

pytestmark = pytest.mark.integration

# Pyserini's published BM25 "flat" (title + text) results on BEIR SciFact test (also in the data README).
PUBLISHED = {"ndcg@10": 0.6789, "recall@100": 0.9253}
TOLERANCE = {"ndcg@10": 0.002, "recall@100": 0.005}


@pytest.fixture(scope="module")
def scifact(data_dir: Path) -> str:
    return str(data_dir / "scifact")


@pytest.fixture(scope="module")
def scifact_index(scifact: str, tmp_path_factory: pytest.TempPathFactory) -> Artifact:
    return ensure_bm25_index(scifact, tmp_path_factory.mktemp("bm25-cache"))


@pytest.fixture(scope="module")
def mined(scifact: str, scifact_index: Artifact, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    cache = scifact_index.path.parent
    base = tmp_path_factory.mktemp("mine")
    return {
        name: mine(MineConfig(dataset=scifact, split="train", out=base / name, seed=seed, bm25_cache=cache))
        for name, seed in (("a", 0), ("b", 0), ("c", 1))
    }


def test_scifact_bm25_matches_published_pyserini(scifact: str, scifact_index: Artifact, tmp_path: Path) -> None:
    from ranx import Qrels, Run, evaluate

    out = search(SearchConfig(index=scifact_index.path, queries=scifact, split="test", k=1000, out=tmp_path / "run"))
    run = read_run(out / "run.trec")
    qrels = read_qrels(Path(scifact) / "qrels" / "test.tsv")
    assert len(run) == len(qrels) == 300
    scores = evaluate(Qrels(qrels), Run(run), list(PUBLISHED))
    for metric, published in PUBLISHED.items():
        assert abs(scores[metric] - published) <= TOLERANCE[metric], (metric, scores[metric])


def test_bulk_transfer_equals_pyserini_batch_search(scifact: str, scifact_index: Artifact) -> None:
    from retr.retrieval.lucene import init_pyserini

    init_pyserini()
    from pyserini.search.lucene import LuceneSearcher

    queries = Dataset(scifact).queries("test")
    ours = search_bm25(scifact_index, queries, k=100)
    searcher = LuceneSearcher(str(scifact_index.path / "lucene"))
    searcher.set_bm25(0.9, 0.4)
    theirs = searcher.batch_search(list(queries.values()), list(queries), k=100, threads=2)
    assert ours.keys() == theirs.keys()
    for qid, hits in theirs.items():
        assert [h.id for h in ranked(ours[qid])] == [hit.docid for hit in hits]
        assert [ours[qid][hit.docid] for hit in hits] == pytest.approx([hit.score for hit in hits], abs=1e-5)


def test_mine_scifact_train(scifact: str, mined: dict[str, Path]) -> None:
    qrels = read_qrels(Path(scifact) / "qrels" / "train.tsv")
    corpus = {doc.id: doc for doc in Dataset(scifact).corpus()}
    manifest = open_artifact(mined["a"], kind="training-set", verify=True).manifest
    records = [json.loads(line) for line in (mined["a"] / "train.jsonl").read_text().splitlines()]
    metrics = manifest["metrics"]
    assert len(records) == metrics["training_queries"] > 0
    left_out = metrics["queries_without_positive"] + metrics["queries_short_of_negatives"]
    assert metrics["training_queries"] + left_out == len(qrels)
    for record in records:
        judged = {d for d, grade in qrels[record["query_id"]].items() if grade >= 1}
        assert record["positives"] and {p["id"] for p in record["positives"]} <= judged
        assert len(record["negatives"]) == 8
        assert all(n["id"] not in judged and 10 <= n["rank"] <= 100 for n in record["negatives"])
        assert all(n["text"] == corpus[n["id"]].text for n in record["negatives"])


def test_mine_scifact_is_deterministic(mined: dict[str, Path]) -> None:
    first = (mined["a"] / "train.jsonl").read_bytes()
    assert first == (mined["b"] / "train.jsonl").read_bytes()
    assert first != (mined["c"] / "train.jsonl").read_bytes()
