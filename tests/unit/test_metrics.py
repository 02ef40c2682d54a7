"""ranx metrics made to agree with trec_eval (pytrec_eval): ties, relevance levels, missing and unjudged queries."""

from __future__ import annotations

import random

import numpy as np
import pytest
import pytrec_eval

from retr.data.errors import DataError
from retr.evaluation.metrics import (
    coverage,
    default_rel_level,
    evaluate,
    label,
    query_set,
    resolve_metrics,
    trec_order,
)

PYTREC = {"ndcg@10": "ndcg_cut_10", "map": "map", "recall@5": "recall_5", "recall@20": "recall_20"}


def synthetic(seed: int = 7):
    """Graded qrels (0..3) and a run with many tied scores, a judged query it misses and an unjudged one it has."""
    rng = random.Random(seed)
    qrels, run = {}, {}
    for q in range(30):
        qid = f"q{q}"
        qrels[qid] = {f"d{rng.randrange(60)}": rng.choice([0, 0, 1, 2, 3]) for _ in range(rng.randint(1, 8))}
        if q % 10 != 3:  # q3, q13, q23 are judged but missing from the run
            run[qid] = {f"d{d}": float(rng.randint(0, 4)) for d in rng.sample(range(60), 25)}  # scores 0..4: ties
    qrels["q_zero"] = {"d1": 0, "d2": 0}  # judged, nothing relevant: scores 0 everywhere
    run["q_zero"] = {"d1": 1.0}
    run["q_unjudged"] = {"d1": 1.0, "d2": 0.5}
    return qrels, run


def reference(qrels, run, level: int, missing: str) -> dict[str, float]:
    """pytrec_eval (trec_eval) means; MRR@10 as recip_rank on the run cut at 10 in trec_eval's order."""
    scored = {q: d for q, d in run.items() if q in qrels and d}
    main = pytrec_eval.RelevanceEvaluator(qrels, {"ndcg_cut.10", "map", "recall.5,20"}, relevance_level=level)
    per_query = main.evaluate(scored)
    cut = {q: dict(sorted(d.items(), key=lambda item: (item[1], item[0]), reverse=True)[:10]) for q, d in scored.items()}
    rr = pytrec_eval.RelevanceEvaluator(qrels, {"recip_rank"}, relevance_level=level).evaluate(cut)
    queries = [q for q, d in qrels.items() if d] if missing == "zero" else list(per_query)
    out = {ours: sum(per_query.get(q, {}).get(theirs, 0.0) for q in queries) / len(queries) for ours, theirs in PYTREC.items()}
    out["mrr@10"] = sum(rr.get(q, {}).get("recip_rank", 0.0) for q in queries) / len(queries)
    return out


@pytest.mark.parametrize("level", [1, 2])
@pytest.mark.parametrize("missing", ["zero", "skip"])
def test_agrees_with_pytrec_eval(level: int, missing: str) -> None:
    qrels, run = synthetic()
    metrics = ["ndcg@10", "map", "recall@5", "recall@20", "mrr@10"]
    ours = evaluate(qrels, run, metrics, rel_level=level, missing=missing)
    expected = reference(qrels, run, level, missing)
    for metric in metrics:
        key = metric if metric == "ndcg@10" or level == 1 else f"{metric}-l{level}"
        assert ours[key] == pytest.approx(expected[metric], abs=1e-9), (metric, level, missing)


def test_missing_policy_changes_the_mean_over_which_queries() -> None:
    qrels, run = synthetic()
    zero = evaluate(qrels, run, ["ndcg@10"], missing="zero")["ndcg@10"]
    skip = evaluate(qrels, run, ["ndcg@10"], missing="skip")["ndcg@10"]
    judged, in_run = 31, 28  # 30 + q_zero judged; q3, q13, q23 missing from the run
    assert zero == pytest.approx(skip * in_run / judged)


def test_ties_follow_trec_eval_not_the_rank_column() -> None:
    qrels = {"q": {"a": 1, "z": 0}}
    run = {"q": {"a": 1.0, "z": 1.0}}  # tied: trec_eval puts "z" first (docno descending)
    assert trec_order(run)["q"] == {"z": 2.0, "a": 1.0}
    assert evaluate(qrels, run, ["mrr@10"])["mrr@10"] == pytest.approx(0.5)
    expected = pytrec_eval.RelevanceEvaluator(qrels, {"recip_rank"}).evaluate(run)["q"]["recip_rank"]
    assert expected == pytest.approx(0.5)


def test_resolve_metrics_levels_and_labels() -> None:
    assert resolve_metrics(None) == ["mrr@10", "ndcg@10", "recall@100", "recall@1000", "map"]
    assert resolve_metrics(None, 2) == ["mrr@10-l2", "ndcg@10", "recall@100-l2", "recall@1000-l2", "map-l2"]
    assert resolve_metrics(["map-l3", "precision@5", "ndcg@5"], 2) == ["map-l3", "precision@5-l2", "ndcg@5"]
    assert resolve_metrics(["ndcg@10", "ndcg@10"]) == ["ndcg@10"]
    assert label("recall@100-l2") == "R@100 (rel≥2)" and label("ndcg@10") == "nDCG@10" and label("map") == "MAP"
    with pytest.raises(DataError, match="unknown metric 'ndgc@10'"):
        resolve_metrics(["ndgc@10"])
    with pytest.raises(DataError, match="whole number"):
        resolve_metrics(["map-lx"])


@pytest.mark.parametrize(
    ("name", "level"),
    [
        ("msmarco-dl19", 2),
        ("/data/msmarco-dl20/qrels/test.tsv", 2),
        ("irds:msmarco-passage/trec-dl-2019/judged", 2),
        ("scifact", 1),
        ("/data/model-dl190/qrels.tsv", 1),
        ("cranfield", 1),
    ],
)
def test_default_rel_level(name: str, level: int) -> None:
    assert default_rel_level(name) == level


def test_coverage_counts() -> None:
    qrels, run = synthetic()
    counts = coverage(qrels, run, rel_level=1)
    assert counts["judged_queries"] == 31
    assert counts["judged_missing_from_run"] == 3
    assert counts["run_queries_unjudged"] == 1
    assert counts["run_queries"] == 29
    assert counts["judged_without_relevant"] == sum(
        1 for docs in qrels.values() if not any(r >= 1 for r in docs.values())
    )


def test_run_without_judged_queries() -> None:
    qrels = {"q1": {"d1": 1}}
    run = {"other": {"d1": 1.0}}
    assert evaluate(qrels, run, ["ndcg@10", "map"]) == {"ndcg@10": 0.0, "map": 0.0}
    with pytest.raises(DataError, match="no judged query"):
        evaluate(qrels, run, ["ndcg@10"], missing="skip")
    with pytest.raises(DataError, match="missing="):
        query_set(qrels, [run], "drop")


def test_perfect_and_reversed_runs() -> None:
    qrels = {"q": {"a": 3, "b": 2, "c": 1}}
    perfect = evaluate(qrels, {"q": {"a": 3.0, "b": 2.0, "c": 1.0, "x": 0.5}}, ["ndcg@10", "map", "mrr@10"])
    assert perfect == {"ndcg@10": 1.0, "map": 1.0, "mrr@10": 1.0}
    reversed_ = evaluate(qrels, {"q": {"x": 4.0, "c": 3.0, "b": 2.0, "a": 1.0}}, ["ndcg@10"])["ndcg@10"]
    gains = np.array([0, 1, 2, 3]) / np.log2(np.arange(2, 6))
    ideal = np.array([3, 2, 1]) / np.log2(np.arange(2, 5))
    assert reversed_ == pytest.approx(gains.sum() / ideal.sum())
