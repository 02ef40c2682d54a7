"""Score runs against qrels (MRR@10, nDCG@10, R@100, R@1000, MAP or any ranx metric), compare them with paired
significance tests, and/or evaluate an encoder with MTEB on local data; writes a "report" artifact (Markdown, JSON,
LaTeX, PNG plots)."""

from __future__ import annotations

from pathlib import Path

import typer

NAME = "score"


def command(
    runs: list[str] = typer.Argument(None, help="Run artifacts (from `retr search`) or TREC run files to score."),
    qrels: str = typer.Option(
        None, help="Qrels: a TREC/BEIR qrels file or a dataset spec. Default: --dataset, else the dataset the runs "
        "were searched on (from their manifests)."
    ),
    dataset: str = typer.Option(
        None, help="Dataset spec (scifact, msmarco-dl19, a BEIR dir ...): its qrels score the runs and --mteb runs on it."
    ),
    split: str = typer.Option(None, help="Qrels split. Default: the split the runs were searched on, else 'test'."),
    name: list[str] = typer.Option(None, "--name", help="Name of each run in the tables, once per run, in order. "
                                   "Default: the artifact's folder name or the file name."),
    metrics: list[str] = typer.Option(
        None, help="ranx metrics, repeated or comma-separated (e.g. ndcg@10,map,precision@5,recall@100-l2). "
        "Default: mrr@10, ndcg@10, recall@100, recall@1000, map."
    ),
    rel_level: int = typer.Option(
        None, help="Grade a judged document needs to count as relevant in binary metrics (MAP, recall, MRR ...). "
        "Default: 2 for TREC Deep Learning qrels (as published), else 1. nDCG always uses the grades."
    ),
    missing: str = typer.Option(
        None, help="A judged query absent from a run: 'zero' scores it 0 (trec_eval -c; default), 'skip' leaves it "
        "out (trec_eval's default; with several runs, means are over the queries all runs have)."
    ),
    test: str = typer.Option(None, help="Paired significance test: student (default), fisher, tukey, or none."),
    correction: str = typer.Option(
        None, help="Multiple-comparison correction over the run pairs of each metric: holm (default), bonferroni, none."
    ),
    alpha: float = typer.Option(None, help="Significance level (default 0.05)."),
    permutations: int = typer.Option(None, help="Random relabelings for --test fisher (default 10000)."),
    seed: int = typer.Option(None, help="Seed of the Fisher randomization test (default 42)."),
    baseline: str = typer.Option(None, help="Run subtracted in the per-query difference plot (default: the first)."),
    mteb: bool = typer.Option(None, "--mteb/--no-mteb", help="Also evaluate --encoder with mteb.evaluate on --dataset."),
    encoder: str = typer.Option(
        None, help="Encoder spec for --mteb: 'default', an HF id or local dir, or a model artifact."
    ),
    batch_size: int = typer.Option(None, help="Encoding batch size for --mteb (default 32)."),
    out: Path = typer.Option(None, help="Report artifact directory (default runs/report)."),
    config: Path = typer.Option(None, "--config", help="YAML file with these options (CLI options win)."),
    overwrite: bool = typer.Option(None, "--overwrite/--no-overwrite", help="Replace an existing report at --out."),
) -> None:
    from retr.cli.common import build_config, friendly_errors
    from retr.evaluation.report import ScoreConfig, score

    with friendly_errors():
        cfg = build_config(
            ScoreConfig, config, section="score", runs=runs or None, qrels=qrels, dataset=dataset, split=split,
            names=name or None, metrics=metrics or None, rel_level=rel_level, missing=missing, test=test,
            correction=correction, alpha=alpha, permutations=permutations, seed=seed, baseline=baseline, mteb=mteb,
            encoder=encoder, batch_size=batch_size, out=out, overwrite=overwrite,
        )  # fmt: skip
        path = score(cfg)
        typer.echo((path / "report.md").read_text())
        typer.echo(f"report: {path}")
