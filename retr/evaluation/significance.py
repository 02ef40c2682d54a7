"""Paired significance tests between runs, and corrections for testing many pairs at once.

What ranx 0.3.21 offers and how it is wired (``ranx.compare(stat_test=...)``):

- ``student``: two-sided paired Student's t-test (``scipy.stats.ttest_rel``) — used from ranx as is.
- ``tukey``: Tukey's HSD over all runs (``scipy.stats.tukey_hsd``) — used from ranx as is; it already controls the
  family-wise error over all pairs, so no further correction is applied to it.
- ``fisher``: ranx has a randomization test, but it draws its permutations in numba threads whose generators the
  seed does not reach, so the same seed gives different p-values from call to call (three calls with seed 42 on
  one pair of 43-query score arrays gave 0.019, 0.026 and 0.027). :func:`fisher_randomization` replaces it with
  scipy's seeded ``permutation_test`` (paired: each permutation swaps the two systems' scores on a query with probability 1/2).
- Multiple-comparison corrections: ranx has none; :func:`adjust_pvalues` implements Bonferroni and Holm.

The family for a correction is all pairs of runs on one metric (n runs -> n(n-1)/2 tests per metric), or the pairs
a study names (``pairs``: the comparisons its claims rest on), so that the correction is not diluted by pairs
nobody asked about.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np

from retr.data.errors import DataError

TESTS = ("student", "fisher", "tukey", "none")
CORRECTIONS = ("holm", "bonferroni", "none")
TEST_LABELS = {
    "student": "paired two-sided Student's t-test",
    "fisher": "paired Fisher randomization test",
    "tukey": "Tukey's HSD test",
}
CORRECTION_LABELS = {"holm": "Holm-corrected", "bonferroni": "Bonferroni-corrected", "none": "uncorrected"}


def fisher_randomization(a: np.ndarray, b: np.ndarray, permutations: int = 10_000, seed: int = 42) -> float:
    """Two-sided paired randomization test of mean(a) == mean(b) (Fisher; Smucker et al., CIKM 2007).

    Under the null hypothesis the two systems are exchangeable on every query, so each of the ``permutations``
    random relabelings swaps a query's pair of scores with probability 1/2. Deterministic for a given ``seed``.
    With 2**n <= ``permutations`` (n queries) scipy enumerates all relabelings and the p-value is exact;
    otherwise it is scipy's Monte Carlo estimate (count + 1) / (permutations + 1), never 0.
    """
    from scipy.stats import permutation_test

    a, b = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    if a.shape != b.shape or a.ndim != 1:
        raise ValueError("paired scores must be two 1-D arrays of the same length")
    if np.array_equal(a, b):
        return 1.0

    def mean_difference(x: np.ndarray, y: np.ndarray, axis: int) -> np.ndarray:
        return np.mean(x, axis=axis) - np.mean(y, axis=axis)

    result = permutation_test(
        (a, b),
        mean_difference,
        permutation_type="samples",
        vectorized=True,
        n_resamples=permutations,
        batch=max(1, 4_000_000 // len(a)),  # resamples per vectorized batch: bounds memory to ~100 MB
        alternative="two-sided",
        rng=np.random.default_rng(seed),
    )
    return float(min(1.0, result.pvalue))


def adjust_pvalues(pvalues: Sequence[float], method: str = "holm") -> list[float]:
    """Family-wise error corrections, in the input order.

    ``bonferroni``: min(1, m p). ``holm`` (step-down, uniformly more powerful than Bonferroni, same guarantee):
    sort ascending, p_(i) -> max over j <= i of min(1, (m - j + 1) p_(j)). ``none``: unchanged.
    """
    if method not in CORRECTIONS:
        raise DataError(f"correction {method!r}: use one of {', '.join(CORRECTIONS)}")
    p = np.asarray(pvalues, dtype=float)
    m = len(p)
    if method == "none" or m == 0:
        return p.tolist()
    if method == "bonferroni":
        return np.minimum(1.0, p * m).tolist()
    order = np.argsort(p, kind="stable")
    scaled = np.minimum(1.0, p[order] * (m - np.arange(m)))
    adjusted = np.empty(m)
    adjusted[order] = np.maximum.accumulate(scaled)
    return adjusted.tolist()


def pairwise(
    per_query: dict[str, dict[str, np.ndarray]],
    ranx_pvalues: dict[tuple[str, str], dict[str, float]],
    metrics: list[str],
    test: str = "student",
    correction: str = "holm",
    alpha: float = 0.05,
    permutations: int = 10_000,
    seed: int = 42,
    pairs: Sequence[tuple[str, str]] | None = None,
) -> list[dict]:
    """One record per (pair of runs, metric): raw and corrected p-value, the better run when significant.

    ``ranx_pvalues[(a, b)][metric]`` are the p-values ranx.compare computed (used for student and tukey);
    ``per_query[name][metric]`` are the paired per-query scores (used for fisher and for wins/ties/losses).
    ``pairs``: the (a, b) run names to test, the correction's family; default every pair.
    """
    if test not in TESTS:
        raise DataError(f"test {test!r}: use one of {', '.join(TESTS)}")
    if test == "none":
        return []
    names = list(per_query)
    if pairs is None:
        pairs = [(names[i], names[j]) for i in range(len(names)) for j in range(i + 1, len(names))]
    for a, b in pairs:
        unknown = [n for n in (a, b) if n not in per_query]
        if unknown or a == b:
            raise DataError(f"pair {a}:{b}: " + (f"no run named {unknown[0]!r}" if unknown else "a run with itself")
                            + f"; runs: {', '.join(names)}")
    records: list[dict] = []
    for metric in metrics:
        family = []
        for a, b in pairs:
            x, y = per_query[a][metric], per_query[b][metric]
            if test == "fisher":
                p = fisher_randomization(x, y, permutations, seed)
            else:
                p = ranx_pvalues[(a, b)][metric]
                p = 1.0 if p is None or np.isnan(p) else float(p)  # identical scores: t is 0/0
            family.append(
                {"metric": metric, "a": a, "b": b, "p": p, "mean_a": float(x.mean()), "mean_b": float(y.mean()),
                 "wins_a": int((x > y).sum()), "ties": int((x == y).sum()), "wins_b": int((x < y).sum())}
            )  # fmt: skip
        method = "none" if test == "tukey" else correction
        for record, adjusted in zip(family, adjust_pvalues([r["p"] for r in family], method)):
            significant = adjusted <= alpha and record["mean_a"] != record["mean_b"]
            better = (record["a"] if record["mean_a"] > record["mean_b"] else record["b"]) if significant else None
            record.update(p_adjusted=adjusted, significant=bool(significant), better=better)
        records.extend(family)
    return records
