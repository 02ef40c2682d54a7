"""BM25 on the real NFCorpus test split (BEIR v1 archive; skipped without the data): the published Pyserini
BM25-flat numbers (title + text, k1 0.9, b 0.4) through ``search(SearchConfig(...))``. NFCorpus judges grades 1-2,
so nDCG@10 uses the grades and R@100 counts every judged document. The index takes a few seconds to build.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from retr.data.trec import read_qrels, read_run
from retr.indexing.bm25 import ensure_bm25_index
from retr.retrieval.search import SearchConfig, search

pytestmark = pytest.mark.integration

# Pyserini's published BM25 flat on BEIR NFCorpus test (also in the data README).
PUBLISHED = {"ndcg@10": 0.3218, "recall@100": 0.2457}
TOLERANCE = {"ndcg@10": 0.002, "recall@100": 0.005}


def test_nfcorpus_bm25_matches_published_pyserini(data_dir: Path, tmp_path: Path) -> None:
    from ranx import Qrels, Run, evaluate

    nfcorpus = data_dir / "nfcorpus"
    if not (nfcorpus / "corpus.jsonl").is_file():
        pytest.skip(f"{nfcorpus}: no NFCorpus data")
    index = ensure_bm25_index(str(nfcorpus), tmp_path / "bm25-cache")
    out = search(SearchConfig(index=index.path, queries=str(nfcorpus), split="test", k=1000, out=tmp_path / "run"))
    run = read_run(out / "run.trec")
    qrels = read_qrels(nfcorpus / "qrels" / "test.tsv")
    assert len(qrels) == 323 and set(run) <= set(qrels)
    scores = evaluate(Qrels(qrels), Run(run), list(PUBLISHED), make_comparable=True)  # no-hit queries score 0
    for metric, published in PUBLISHED.items():
        assert abs(scores[metric] - published) <= TOLERANCE[metric], (metric, scores[metric])
