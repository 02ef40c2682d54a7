"""Paired tests and family-wise corrections: checked against textbook definitions computed by brute force."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
from scipy.stats import ttest_rel

from retr.data.errors import DataError
from retr.evaluation.significance import adjust_pvalues, fisher_randomization, pairwise


def holm_by_definition(p: list[float]) -> list[float]:
    """Holm: the adjusted p of test i is max over tests j ranked at or before i of min(1, (m - rank_j + 1) p_j)."""
    m = len(p)
    order = sorted(range(m), key=lambda i: p[i])
    rank = {i: r for r, i in enumerate(order, start=1)}
    return [max(min(1.0, (m - rank[j] + 1) * p[j]) for j in range(m) if rank[j] <= rank[i]) for i in range(m)]


def test_holm_and_bonferroni() -> None:
    rng = np.random.default_rng(3)
    for _ in range(20):
        p = rng.uniform(0, 0.2, size=rng.integers(1, 9)).tolist()
        assert adjust_pvalues(p, "holm") == pytest.approx(holm_by_definition(p))
        assert adjust_pvalues(p, "bonferroni") == pytest.approx([min(1.0, x * len(p)) for x in p])
        assert all(h <= b + 1e-12 for h, b in zip(adjust_pvalues(p, "holm"), adjust_pvalues(p, "bonferroni")))
    assert adjust_pvalues([0.01, 0.04, 0.03, 0.005], "holm") == pytest.approx([0.03, 0.06, 0.06, 0.02])
    assert adjust_pvalues([0.2, 0.01], "none") == [0.2, 0.01]
    assert adjust_pvalues([], "holm") == []
    with pytest.raises(DataError, match="correction"):
        adjust_pvalues([0.1], "fdr")


def test_fisher_is_exact_for_few_queries() -> None:
    """With 2**n <= permutations every relabeling is enumerated: p = share of sign flips with |mean| >= observed."""
    rng = np.random.default_rng(0)
    a = rng.random(10)
    b = a + rng.normal(0.08, 0.1, 10)
    d = a - b
    flips = np.array(list(itertools.product([1, -1], repeat=len(d))))
    null = np.abs((flips * d).mean(axis=1))
    exact = float((null >= abs(d.mean()) - 1e-12).mean())
    assert fisher_randomization(a, b, permutations=5000, seed=1) == pytest.approx(exact, abs=1e-9)


def test_fisher_is_deterministic_and_close_to_t_test() -> None:
    rng = np.random.default_rng(5)
    a = rng.random(60)
    b = np.clip(a + rng.normal(0.03, 0.1, 60), 0, 1)
    first = fisher_randomization(a, b, permutations=4000, seed=9)
    assert fisher_randomization(a, b, permutations=4000, seed=9) == first
    assert first == pytest.approx(ttest_rel(a, b).pvalue, abs=0.03)  # both test the mean difference
    assert fisher_randomization(a, a.copy()) == 1.0
    with pytest.raises(ValueError):
        fisher_randomization(a, b[:-1])


def scores(values: np.ndarray) -> dict[str, np.ndarray]:
    return {"ndcg@10": values}


def test_pairwise_marks_the_better_run_after_correction() -> None:
    rng = np.random.default_rng(11)
    a = rng.random(50)
    per_query = {"a": scores(a), "b": scores(np.clip(a + 0.2, 0, 1)), "c": scores(a.copy())}
    ranx_p = {(x, y): {"ndcg@10": float(ttest_rel(per_query[x]["ndcg@10"], per_query[y]["ndcg@10"]).pvalue)}
              for x in per_query for y in per_query if x != y}  # fmt: skip
    records = pairwise(per_query, ranx_p, ["ndcg@10"], test="student", correction="holm")
    by_pair = {(r["a"], r["b"]): r for r in records}
    assert set(by_pair) == {("a", "b"), ("a", "c"), ("b", "c")}
    assert by_pair[("a", "b")]["better"] == "b" and by_pair[("b", "c")]["better"] == "b"
    assert not by_pair[("a", "c")]["significant"] and by_pair[("a", "c")]["p"] == 1.0  # identical: t is 0/0
    assert all(r["p_adjusted"] >= r["p"] for r in records)
    assert by_pair[("a", "b")]["wins_b"] + by_pair[("a", "b")]["ties"] == 50
    fisher = pairwise(per_query, {}, ["ndcg@10"], test="fisher", correction="bonferroni", permutations=2000)
    assert [r["significant"] for r in fisher] == [r["significant"] for r in records]
    assert pairwise(per_query, ranx_p, ["ndcg@10"], test="none") == []
    with pytest.raises(DataError, match="test"):
        pairwise(per_query, ranx_p, ["ndcg@10"], test="wilcoxon")


def test_named_pairs_are_the_correction_family() -> None:
    """With named pairs only those are tested, and Holm corrects over them alone (not over every pair)."""
    rng = np.random.default_rng(5)
    a = rng.random(40)
    per_query = {"a": scores(a), "b": scores(np.clip(a + rng.normal(0.05, 0.1, 40), 0, 1)),
                 "c": scores(np.clip(a + rng.normal(0.02, 0.1, 40), 0, 1))}
    ranx_p = {(x, y): {"ndcg@10": float(ttest_rel(per_query[x]["ndcg@10"], per_query[y]["ndcg@10"]).pvalue)}
              for x in per_query for y in per_query if x != y}  # fmt: skip
    every = {(r["a"], r["b"]): r for r in pairwise(per_query, ranx_p, ["ndcg@10"], correction="holm")}
    named = pairwise(per_query, ranx_p, ["ndcg@10"], correction="holm", pairs=[("c", "a"), ("a", "b")])
    assert [(r["a"], r["b"]) for r in named] == [("c", "a"), ("a", "b")]
    raw = [r["p"] for r in named]
    assert raw == [ranx_p[("c", "a")]["ndcg@10"], ranx_p[("a", "b")]["ndcg@10"]]
    assert [r["p_adjusted"] for r in named] == pytest.approx(holm_by_definition(raw))
    assert named[1]["p_adjusted"] <= every[("a", "b")]["p_adjusted"]  # a family of 2, not 3
    with pytest.raises(DataError, match="no run named 'd'"):
        pairwise(per_query, ranx_p, ["ndcg@10"], pairs=[("a", "d")])
