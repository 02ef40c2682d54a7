"""Mine BM25 hard negatives for training queries and write a training-set artifact (train.jsonl, bm25.trec).

The corpus's Lucene index is built once (Pyserini/Anserini) into the cache and reused. Negatives are sampled,
seeded per query, from a window of BM25 ranks after removing judged positives.
"""

from __future__ import annotations

from pathlib import Path

import typer

NAME = "mine"

DATASET_HELP = (
    "Dataset spec with corpus, queries and qrels: a name under the data dir, a BEIR/MS MARCO dir or irds:<id>. "
    "Default: scifact."
)


def command(
    dataset: str = typer.Option(None, help=DATASET_HELP),
    split: str = typer.Option(None, help="Split whose queries and qrels are mined. Default: train."),
    out: Path = typer.Option(None, help="Output training-set artifact directory. Default: runs/mine."),
    k: int = typer.Option(None, help="BM25 hits retrieved per query (also written to bm25.trec). Default: 100."),
    k1: float = typer.Option(None, help="BM25 k1 (term-frequency saturation). Default: 0.9."),
    b: float = typer.Option(None, help="BM25 b (document-length normalization). Default: 0.4."),
    negatives: int = typer.Option(None, help="Hard negatives sampled per query. Default: 8."),
    rank_min: int = typer.Option(None, help="Best BM25 rank (1-based, inclusive) a negative may have. Default: 10."),
    rank_max: int = typer.Option(None, help="Worst BM25 rank (inclusive, <= k) a negative may have. Default: 100."),
    min_relevance: int = typer.Option(None, help="Smallest qrels grade that counts as a positive. Default: 1."),
    seed: int = typer.Option(None, help="Seed of the per-query negative sampling. Default: 0."),
    threads: int = typer.Option(None, help="Lucene indexing and search threads. Default: 2."),
    index_cache: Path = typer.Option(
        None, help="Cache folder of BM25 indexes. Default: $RETR_HOME/bm25 or ~/.cache/retr/bm25."
    ),
    max_negative_ratio: float = typer.Option(
        None, help="Drop candidates scoring above this fraction of the query's best positive (e.g. 0.95). Default: off."
    ),
    index: Path = typer.Option(
        None, help="Re-mine with this dense-index artifact (a trained model's `retr index`) instead of BM25."
    ),
    overwrite: bool = typer.Option(
        None, "--overwrite/--no-overwrite", help="Replace an existing output artifact. Default: no."
    ),
    config: Path = typer.Option(
        None, "--config", help="YAML file with any of these options (a 'mine:' section is used if present)."
    ),
) -> None:
    from retr.cli.common import build_config, friendly_errors

    with friendly_errors():
        from retr.training.mining import MineConfig, mine

        try:
            cfg = build_config(
                MineConfig, config, section="mine", dataset=dataset, split=split, out=out, k=k, k1=k1, b=b,
                negatives=negatives, rank_min=rank_min, rank_max=rank_max, min_relevance=min_relevance, seed=seed,
                threads=threads, index_cache=index_cache, max_negative_ratio=max_negative_ratio, index=index,
                overwrite=overwrite,
            )
        except ValueError as error:
            raise typer.BadParameter(str(error)) from None
        path = mine(cfg)
        typer.echo(str(path))
