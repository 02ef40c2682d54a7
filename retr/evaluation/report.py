"""``retr score``: score runs against qrels (ranx), compare them with paired tests, optionally run MTEB, and write a
"report" artifact: report.md, report.json, report.tex, per_query.json, metrics.png, per_query.png.

The manifest's inputs are the lineage of everything scored: each run artifact's ``as_input()`` record (a plain run
file gets a record with its sha256), the qrels (dataset record or qrels file), and for MTEB the encoder and dataset.
Its metrics hold every run's means and query coverage (judged queries missing from a run, run queries without
judgments), so a number can always be traced to the query set it is a mean over.
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from retr.data.options import option
from retr.data.artifacts import ArtifactWriter, config_dict
from retr.data.errors import DataError, UsageError
from retr.evaluation import plots, render
from retr.evaluation.metrics import (
    MISSING_POLICIES,
    coverage,
    default_rel_level,
    label,
    query_set,
    resolve_metrics,
    score_runs,
)
from retr.evaluation.significance import CORRECTIONS, TESTS, pairwise
from retr.evaluation.sources import QrelsSource, RunSource, check_qrels, name_runs, open_qrels, open_run


@dataclass
class ScoreConfig:
    """Options of ``retr score`` (defaults < YAML < CLI); list options also accept comma-separated strings."""

    runs: list[str] = option([], "Run artifacts (from `retr search`) or TREC run files to score")
    qrels: str | None = option(None, "Qrels: a TREC/BEIR qrels file or a dataset spec. Default: --dataset, else the "
                               "dataset the runs were searched on (from their manifests)")
    dataset: str | None = option(None, "Dataset spec (scifact, msmarco-dl19, a BEIR dir ...): its qrels score the runs "
                                 "and --mteb runs on it")
    split: str | None = option(None, "Qrels split. Default: the split the runs were searched on, else 'test'")
    out: Path = option(Path("runs/report"), "Report artifact directory")
    names: list[str] = option([], "Name of each run in the tables, once per run, in order. Default: the artifact's "
                              "folder name or the file name")
    metrics: list[str] = option([], "ranx metrics, repeated or comma-separated, e.g. ndcg@10,map or precision@5. "
                                "Default: mrr@10, ndcg@10, recall@100, recall@1000, map")
    rel_level: int | None = option(None, "Grade a judged document needs to count as relevant in binary metrics (MAP, "
                                   "recall, MRR ...). Default: 2 for TREC Deep Learning qrels (as published), else 1. "
                                   "nDCG always uses the grades")
    missing: str = option("zero", "A judged query absent from a run: 'zero' scores it 0 (trec_eval -c), 'skip' leaves "
                          "it out (trec_eval's default; with several runs, means are over the queries all runs have)")
    test: str = option("student", "Paired significance test: student, fisher, tukey, or none")
    correction: str = option("holm", "Multiple-comparison correction over the run pairs of each metric: holm, "
                             "bonferroni, none")
    alpha: float = option(0.05, "Significance level")
    pairs: list[str] = option([], "Run pairs to test, 'A:B' by run name, repeated or comma-separated (e.g. the pairs a "
                              "study's claims rest on); the correction's family is these pairs. Default: every pair")
    permutations: int = option(10_000, "Random relabelings for --test fisher")
    seed: int = option(42, "Seed of the Fisher randomization test")
    baseline: str | None = option(None, "Run subtracted in the per-query difference plot. Default: the first")
    mteb: bool = option(False, "Also evaluate --encoder with mteb.evaluate on --dataset")
    encoder: str | None = option(None, "Encoder spec for --mteb: 'default', an HF id or local dir, or a model artifact")
    batch_size: int = option(32, "Encoding batch size for --mteb")
    allow_changed_qrels: bool = option(False, "Score even when the qrels file a run was searched with has changed "
                                       "since (recorded in the report); by default that is refused")
    combine: list[str] = option([], "Instead of scoring runs: score reports (one per dataset, from `retr score`) "
                                "combined into one table, a column per report (named by --names, else its dataset) "
                                "and their mean (BEIR's average); rows are the run names in every report")
    overwrite: bool = option(False, "Replace an existing report at --out")


def _as_list(values: list[str] | str | None) -> list[str]:
    if values is None:
        return []
    if isinstance(values, str):
        values = [values]
    return [part.strip() for value in values for part in str(value).split(",") if part.strip()]


def _check(config: ScoreConfig) -> None:
    if config.missing not in MISSING_POLICIES:
        raise UsageError(f"--missing {config.missing}: use one of {', '.join(MISSING_POLICIES)}")
    if config.test not in TESTS:
        raise UsageError(f"--test {config.test}: use one of {', '.join(TESTS)}")
    if config.correction not in CORRECTIONS:
        raise UsageError(f"--correction {config.correction}: use one of {', '.join(CORRECTIONS)}")
    if not 0 < config.alpha < 1:
        raise UsageError(f"--alpha {config.alpha}: must be between 0 and 1")
    if config.permutations < 1 or config.batch_size < 1:
        raise UsageError("--permutations and --batch-size must be >= 1")
    if not _as_list(config.runs) and not config.mteb:
        raise DataError("nothing to score: give run artifacts or TREC run files, or --mteb with --encoder")
    if config.mteb and not config.encoder:
        raise DataError("--mteb needs --encoder (an encoder spec: default, an HF id or dir, a model artifact)")


def _rel_level(config: ScoreConfig, qrels: QrelsSource | None) -> tuple[int, str]:
    if config.rel_level is not None:
        return config.rel_level, "set by --rel-level"
    if qrels is not None and default_rel_level(qrels.source) == 2:
        return 2, "TREC Deep Learning convention, as trec_eval -l 2"
    return 1, "BEIR/MTEB and trec_eval default"


def _pairs(values: list[str] | str | None) -> list[tuple[str, str]] | None:
    """'A:B' strings as (A, B); None (every pair) when none is given."""
    pairs = []
    for value in _as_list(values):
        a, sep, b = value.partition(":")
        if not sep or not a.strip() or not b.strip():
            raise DataError(f"--pairs {value!r}: write a pair as A:B (two run names)")
        pairs.append((a.strip(), b.strip()))
    return pairs or None


def _score_runs(config: ScoreConfig, sources: list[RunSource], qrels: QrelsSource, rel_level: int, reason: str) -> dict:
    metrics = resolve_metrics(_as_list(config.metrics) or None, rel_level)
    runs = {source.name: source.load() for source in sources}
    queries = query_set(qrels.qrels, runs.values(), config.missing)
    stat_test = "tukey" if config.test == "tukey" else "student"
    scored = score_runs(qrels.qrels, runs, metrics, queries, stat_test=stat_test, alpha=config.alpha)
    pairs = pairwise(
        scored.per_query, scored.ranx_pvalues, metrics, config.test, config.correction, config.alpha,
        config.permutations, config.seed, _pairs(config.pairs),
    )  # fmt: skip
    means = scored.means()
    return {
        "qrels": {**qrels.record, "source": qrels.source, "split": qrels.split, "rel_level": rel_level,
                  "rel_level_reason": reason},
        "metrics": metrics,
        "labels": {m: label(m) for m in metrics},
        "missing": config.missing,
        "queries": len(queries),
        "runs": {
            source.name: {
                "source": source.record,
                "scores": means[source.name],
                "coverage": coverage(qrels.qrels, runs[source.name], rel_level),
            }
            for source in sources
        },
        "significance": {
            "test": config.test,
            "correction": "none" if config.test == "tukey" else config.correction,
            "family": (f"the {len(named)} named pairs, per metric" if (named := _pairs(config.pairs))
                       else "all pairs of runs, per metric"),
            "alpha": config.alpha,
            "permutations": config.permutations if config.test == "fisher" else None,
            "seed": config.seed if config.test == "fisher" else None,
            "pairs": pairs,
        },
        "_per_query": {"queries": queries, "scores": scored.per_query},
    }  # fmt: skip


def _mteb_dataset(config: ScoreConfig, sources: list[RunSource]) -> tuple[str, str]:
    spec = config.dataset or (config.qrels if config.qrels and not Path(config.qrels).is_file() else None)
    lineage = next((s.dataset for s in sources if s.dataset), None)
    split = config.split or (lineage or {}).get("split") or "test"
    if spec is None and lineage is not None:
        spec = lineage.get("path")
    if spec is None:
        raise DataError("--mteb needs --dataset (a dataset spec or BEIR dir with corpus, queries and qrels)")
    return spec, split


def score(config: ScoreConfig) -> Path:
    """Write the "report" artifact for ``config``; returns its directory."""
    if config.combine:
        return _combine(config)
    _check(config)
    sources = name_runs([open_run(spec) for spec in _as_list(config.runs)], _as_list(config.names))
    qrels = open_qrels(config.qrels, config.dataset, config.split, sources) if sources else None
    qrels_check = check_qrels(sources, qrels, config.allow_changed_qrels) if qrels is not None else {}
    rel_level, reason = _rel_level(config, qrels)
    report: dict[str, Any] = {"metrics": [], "runs": {}, "significance": {"test": "none", "pairs": []}}
    if qrels is not None:
        report = _score_runs(config, sources, qrels, rel_level, reason)
        report["qrels"]["since_search"] = qrels_check
    inputs = [source.record for source in sources] + ([qrels.record] if qrels else [])
    if config.mteb:
        from retr.evaluation.mteb_eval import evaluate_mteb

        spec, split = _mteb_dataset(config, sources)
        report["mteb"] = evaluate_mteb(config.encoder, spec, split, batch_size=config.batch_size, progress=True)
        inputs += [report["mteb"]["identity"], report["mteb"]["dataset"]]
    per_query = report.pop("_per_query", None)
    resolved = dataclasses.replace(
        config, runs=_as_list(config.runs), names=list(report["runs"]) or _as_list(config.names),
        metrics=report["metrics"], rel_level=rel_level, qrels=report.get("qrels", {}).get("source", config.qrels),
        split=(report.get("qrels") or {}).get("split") or config.split,
    )  # fmt: skip
    settings = config_dict(resolved)
    with ArtifactWriter(config.out, "report", settings, inputs, overwrite=config.overwrite) as writer:
        _write(writer.dir, report, per_query, config.baseline)
        writer.metrics = {
            "runs": {name: run["scores"] for name, run in report["runs"].items()},
            "coverage": {name: run["coverage"] for name, run in report["runs"].items()},
            **({"qrels_since_search": qrels_check} if qrels_check else {}),
            **({"mteb": report["mteb"]["scores"]} if "mteb" in report else {}),
        }
    return config.out


def _combine(config: ScoreConfig) -> Path:
    from retr.evaluation.combine import combine_reports

    if _as_list(config.runs) or config.mteb:
        raise UsageError("--combine replaces runs and --mteb: give report artifacts to combine, or runs to score")
    settings = config_dict(dataclasses.replace(config, combine=_as_list(config.combine)))
    return combine_reports(_as_list(config.combine), config.out, _as_list(config.metrics), _as_list(config.names),
                           config.overwrite, settings)


def _write(directory: Path, report: dict[str, Any], per_query: dict[str, Any] | None, baseline: str | None) -> None:
    if "qrels" in report:
        (directory / "report.md").write_text(render.markdown(report))
        (directory / "report.tex").write_text(render.latex(report))
    else:  # MTEB only
        (directory / "report.md").write_text("# Retrieval report\n\n" + render.mteb_section(report["mteb"]) + "\n")
    (directory / "report.json").write_text(json.dumps(report, indent=2, default=float) + "\n")
    if per_query is None:
        return
    queries, scores = per_query["queries"], per_query["scores"]
    table = {name: {m: dict(zip(queries, map(float, v))) for m, v in runs.items()} for name, runs in scores.items()}
    (directory / "per_query.json").write_text(json.dumps(table, indent=1) + "\n")
    metrics = report["metrics"]
    plots.metric_bars({name: run["scores"] for name, run in report["runs"].items()}, metrics, directory / "metrics.png")
    main = "ndcg@10" if "ndcg@10" in metrics else metrics[0]
    plots.per_query(scores, main, directory / "per_query.png", baseline)
