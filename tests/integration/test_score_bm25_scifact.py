"""search -> score end to end on SciFact (skipped without the data): `retr score` on the run artifact of
`retr search` finds the qrels through the run's lineage and reproduces Pyserini's published BM25-flat numbers
(nDCG@10 0.6789, R@100 0.9253, from the data README and Pyserini's BEIR regressions)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from retr.data.artifacts import open_artifact
from retr.evaluation.report import ScoreConfig, score

pytestmark = pytest.mark.integration


def test_bm25_search_then_score(data_dir: Path, tmp_path: Path) -> None:
    from retr.indexing.bm25 import ensure_bm25_index
    from retr.retrieval.search import SearchConfig, search

    index = ensure_bm25_index(str(data_dir / "scifact"), tmp_path / "cache")
    run = search(SearchConfig(index=index.path, queries=str(data_dir / "scifact"), split="test", out=tmp_path / "bm25"))
    report_dir = score(ScoreConfig(runs=[str(run)], out=tmp_path / "report"))
    report = json.loads((report_dir / "report.json").read_text())
    scores = report["runs"]["bm25"]["scores"]
    assert round(scores["ndcg@10"], 4) == 0.6789
    assert round(scores["recall@100"], 4) == 0.9253
    assert report["qrels"]["path"] == str((data_dir / "scifact").resolve()) and report["qrels"]["split"] == "test"
    manifest = open_artifact(report_dir, kind="report").manifest
    assert manifest["inputs"][0] == open_artifact(run).as_input()
