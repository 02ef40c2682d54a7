"""Retrieval metrics with ranx, made to agree with trec_eval (and so with pytrec_eval and published TREC numbers).

Three conventions decide whether two tools give the same number; this module fixes each of them:

- **Ties.** trec_eval ignores the rank column and orders a query's documents by score descending, then by docno
  descending (``strcmp``). ranx sorts by score with an unstable sort, so tied documents come out in an arbitrary
  order. :func:`trec_order` re-scores every run with strictly decreasing values in trec_eval's order before ranx
  sees it (all ranx metrics depend only on the order).
- **Relevance level.** Binary metrics (MAP, recall, MRR, precision ...) count a document as relevant when its grade
  is >= ``rel_level``; graded metrics (nDCG, DCG) use the grades as gains and ignore the level, as trec_eval's
  ``-l`` does. TREC DL passage ranking publishes binary metrics at level 2 (``trec_eval -l 2``), BEIR and MTEB at 1.
  :func:`resolve_metrics` appends ranx's ``-lN`` suffix to binary metrics for a level other than 1.
- **Queries.** Only judged queries (in the qrels with at least one judgment) are scored; run queries without
  judgments are ignored. A judged query that the run misses scores 0 (``missing="zero"``, trec_eval ``-c``, the
  default: leaving a hard query out must not raise the mean); ``missing="skip"`` averages over the judged queries
  the run has (trec_eval's default). Both counts are reported by :func:`coverage`.

MRR@k equals trec_eval's ``recip_rank`` on the run cut at k (``-M k``), recall@k ``recall.k``, ndcg@k ``ndcg_cut.k``.
"""

from __future__ import annotations

import re
import warnings
from dataclasses import dataclass, field
from typing import Iterable, Mapping

import numpy as np

from retr.data.errors import DataError
from retr.data.trec import Qrels, Run
from retr.evaluation.ranx_kernels import import_ranx

DEFAULT_METRICS = ["mrr@10", "ndcg@10", "recall@100", "recall@1000", "map"]
GRADED = {"ndcg", "dcg", "ndcg_burges", "dcg_burges"}
BINARY = {"hits", "hit_rate", "precision", "recall", "f1", "r-precision", "mrr", "map", "bpref", "rbp"}
LABELS = {
    "mrr": "MRR", "ndcg": "nDCG", "recall": "R", "map": "MAP", "precision": "P", "hits": "Hits",
    "hit_rate": "HitRate", "f1": "F1", "r-precision": "R-Prec", "dcg": "DCG", "ndcg_burges": "nDCG(Burges)",
    "dcg_burges": "DCG(Burges)", "bpref": "bpref", "rbp": "RBP",
}  # fmt: skip
MISSING_POLICIES = ("zero", "skip")
# TREC Deep Learning passage/document qrels: binary metrics are published at relevance >= 2.
_TREC_DL = re.compile(
    r"(^|[^a-z0-9])(dl[-_]?(19|20|21|22|23)|trec[-_]?dl|deep[-_]?learning)(?![0-9])", re.IGNORECASE
)


def _split_metric(metric: str) -> tuple[str, str, int | None]:
    """``"recall@100-l2"`` -> ("recall", "@100", 2); the level is None when not given."""
    name, level = metric, None
    if "-l" in metric:
        name, _, raw = metric.rpartition("-l")
        if not raw.isdigit():
            raise DataError(f"metric {metric!r}: the relevance level after '-l' must be a whole number")
        level = int(raw)
    match = re.fullmatch(r"([^@.]+)([@.]\d+)?", name)
    if match is None:
        raise DataError(f"metric {metric!r}: expected NAME, NAME@K or NAME@K-lN (e.g. ndcg@10, map-l2)")
    return match.group(1), match.group(2) or "", level


def resolve_metrics(metrics: Iterable[str] | None, rel_level: int = 1) -> list[str]:
    """ranx metric strings with the binary ones at ``rel_level`` (unless a metric names its own ``-lN``)."""
    resolved: list[str] = []
    for metric in metrics or DEFAULT_METRICS:
        metric = metric.strip()
        base, cut, level = _split_metric(metric)
        if base not in GRADED | BINARY:
            known = ", ".join(sorted(GRADED | BINARY))
            raise DataError(f"unknown metric {metric!r}; ranx knows: {known} (with @k, e.g. ndcg@10, and -lN)")
        if level is None and base in BINARY and rel_level != 1:
            metric = f"{base}{cut}-l{rel_level}"
        if metric not in resolved:
            resolved.append(metric)
    return resolved


def label(metric: str) -> str:
    """Display label: ``"recall@100-l2"`` -> ``"R@100 (rel≥2)"``."""
    base, cut, level = _split_metric(metric)
    text = LABELS.get(base, base) + cut
    return f"{text} (rel≥{level})" if level and level != 1 else text


def default_rel_level(qrels_name: str) -> int:
    """2 for TREC Deep Learning qrels (the track's convention for binary metrics), else 1 (BEIR, MTEB, trec_eval)."""
    return 2 if _TREC_DL.search(qrels_name) else 1


def trec_order(run: Mapping[str, Mapping[str, float]]) -> Run:
    """The run re-scored n, n-1, ..., 1 in trec_eval's order (score desc, then docno desc), so ties cannot move."""
    ordered: Run = {}
    for qid, docs in run.items():
        ranked = sorted(docs.items(), key=lambda item: item[0], reverse=True)
        ranked.sort(key=lambda item: item[1], reverse=True)  # stable: docno-desc order survives among equal scores
        n = len(ranked)
        ordered[qid] = {doc: float(n - i) for i, (doc, _) in enumerate(ranked)}
    return ordered


def coverage(
    qrels: Mapping[str, Mapping[str, int]], run: Mapping[str, Mapping[str, float]], rel_level: int = 1
) -> dict[str, int]:
    """Counts of the query sets that decide what a mean is over (reported with every score)."""
    judged_ids = {q for q, docs in qrels.items() if docs}
    run_ids = {q for q, docs in run.items() if docs}
    return {
        "judged_queries": len(judged_ids),
        "judged_without_relevant": sum(1 for q in judged_ids if not any(r >= rel_level for r in qrels[q].values())),
        "run_queries": len(run_ids),
        "run_queries_unjudged": len(run_ids - judged_ids),  # ignored, as trec_eval does
        "judged_missing_from_run": len(judged_ids - run_ids),  # 0 under missing="zero", dropped under "skip"
    }


def query_set(
    qrels: Mapping[str, Mapping[str, int]], runs: Iterable[Mapping[str, Mapping[str, float]]], missing: str
) -> list[str]:
    """The queries a mean is taken over: all judged ones ("zero"), or the judged ones every run has ("skip")."""
    if missing not in MISSING_POLICIES:
        raise DataError(f"missing={missing!r}: use one of {', '.join(MISSING_POLICIES)}")
    ids = {q for q, docs in qrels.items() if docs}
    if missing == "skip":
        for run in runs:
            ids &= {q for q, docs in run.items() if docs}
    return sorted(ids)


@dataclass
class Scored:
    """Per-query scores of several runs over one query set, with ranx's pairwise p-values."""

    queries: list[str]
    per_query: dict[str, dict[str, np.ndarray]]  # run -> metric -> scores aligned with ``queries``
    ranx_pvalues: dict[tuple[str, str], dict[str, float]] = field(default_factory=dict)

    def means(self) -> dict[str, dict[str, float]]:
        return {name: {m: float(v.mean()) for m, v in scores.items()} for name, scores in self.per_query.items()}


def score_runs(
    qrels: Mapping[str, Mapping[str, int]],
    runs: Mapping[str, Mapping[str, Mapping[str, float]]],
    metrics: list[str],
    queries: list[str],
    stat_test: str = "student",
    alpha: float = 0.05,
) -> Scored:
    """Score runs with ``ranx.compare`` over ``queries`` (a judged query a run lacks scores 0).

    ``metrics`` are resolved ranx strings; ``stat_test`` is passed to ranx ("student" or "tukey", see
    :mod:`retr.evaluation.significance` for why "fisher" is not taken from ranx).
    """
    ranx = import_ranx()  # numba's compiled code cached on disk (see retr.evaluation.ranx_kernels)
    if not queries:
        raise DataError("no judged query to score (the qrels are empty, or the runs share no judged query)")
    wanted = set(queries)
    ranx_qrels = ranx.Qrels({q: dict(qrels[q]) for q in queries})
    ranx_runs = []
    for name, run in runs.items():
        ordered = trec_order({q: docs for q, docs in run.items() if q in wanted and docs})
        ranx_run = ranx.Run(ordered, name=name) if ordered else ranx.Run(name=name)
        ranx_runs.append(ranx_run)
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="Precision loss occurred", category=RuntimeWarning)  # t-test, ties
        report = ranx.compare(
            ranx_qrels,
            ranx_runs,
            metrics,
            stat_test=stat_test if len(ranx_runs) > 1 else "student",
            max_p=alpha,
            threads=1,
            make_comparable=True,  # adds empty results (score 0) for judged queries a run lacks
        )
    per_query = {
        run.name: {m: np.array([float(run.scores[m][q]) for q in queries]) for m in metrics} for run in ranx_runs
    }
    pvalues: dict[tuple[str, str], dict[str, float]] = {}
    for a in per_query:
        for b in per_query:
            if a != b:
                pvalues[(a, b)] = {m: float(report.comparisons[a, b][m]["p_value"]) for m in metrics}
    return Scored(list(queries), per_query, pvalues)


def evaluate(
    qrels: Mapping[str, Mapping[str, int]],
    run: Mapping[str, Mapping[str, float]],
    metrics: list[str] | None = None,
    *,
    rel_level: int = 1,
    missing: str = "zero",
) -> dict[str, float]:
    """Mean of each metric over the judged queries (see the module docstring for ties, levels and missing queries).

    ``metrics`` are ranx strings (``ndcg@10``, ``map``, ``recall@100-l2`` ...); binary ones without their own ``-lN``
    are computed at ``rel_level``. Keys of the result are the resolved metric strings.
    """
    resolved = resolve_metrics(metrics, rel_level)
    queries = query_set(qrels, [run], missing)
    return score_runs(qrels, {"run": run}, resolved, queries).means()["run"]
