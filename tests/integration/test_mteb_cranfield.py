"""MTEB and ranx agree on a real (small) collection: Cranfield, graded qrels with zero grades, a fake encoder."""

from __future__ import annotations

from pathlib import Path

import pytest

from retr.data.datasets import Dataset
from retr.evaluation.metrics import evaluate
from retr.evaluation.mteb_eval import evaluate_mteb

pytestmark = pytest.mark.integration


def test_cranfield_mteb_equals_ranx(data_dir: Path, hash_encoder, exact_search) -> None:
    if not (data_dir / "cranfield").is_dir():
        pytest.skip("cranfield not found")
    dataset = Dataset(str(data_dir / "cranfield"))
    mteb = evaluate_mteb(hash_encoder, str(dataset.root), "test")["scores"]
    ours = evaluate(dataset.qrels("test"), exact_search(hash_encoder, dataset, "test"), ["ndcg@10", "mrr@10"])
    assert ours["ndcg@10"] > 0.05
    assert mteb["ndcg_at_10"] == pytest.approx(ours["ndcg@10"], abs=0.005)
    assert mteb["mrr_at_10"] == pytest.approx(ours["mrr@10"], abs=0.005)
