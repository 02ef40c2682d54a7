"""Search an index (BM25 or dense) with a dataset's queries and write a run artifact (run.trec).

Without --index, searches the BM25 index of the queries' own corpus (built once into the cache, then reused).
"""

from __future__ import annotations

from pathlib import Path

import typer

NAME = "search"

INDEX_HELP = "Index artifact: a bm25-index or a dense-index. Default: the cached BM25 index of the --queries corpus."
QUERIES_HELP = (
    "Dataset spec of the queries: a name under the data dir, a BEIR/MS MARCO dir or irds:<id>. Default: scifact."
)
ENCODER_HELP = "Dense indexes only: encoder spec; must be the one that built the index. Default: the index's encoder."


def command(
    index: Path = typer.Option(None, help=INDEX_HELP),
    queries: str = typer.Option(None, help=QUERIES_HELP),
    split: str = typer.Option(None, help="Query split: test, dev, train, or 'all' for every query. Default: test."),
    k: int = typer.Option(None, help="Hits kept per query. Default: 1000."),
    out: Path = typer.Option(None, help="Output run artifact directory. Default: runs/search."),
    encoder: str = typer.Option(None, help=ENCODER_HELP),
    batch_size: int = typer.Option(None, help="Dense indexes only: queries encoded per batch. Default: 64."),
    query_template: str = typer.Option(None, help="Dense indexes only: query template with {text} or a preset "
                                       "(none, e5, llara); the passages stay as indexed. Default: the index's."),
    max_query_length: int = typer.Option(None, help="Dense indexes only: max query tokens, prompt included. "
                                         "Default: the index's."),
    k1: float = typer.Option(None, help="BM25 k1 (term-frequency saturation). Default: 0.9."),
    b: float = typer.Option(None, help="BM25 b (document-length normalization). Default: 0.4."),
    threads: int = typer.Option(None, help="BM25 search threads. Default: 2."),
    overwrite: bool = typer.Option(
        None, "--overwrite/--no-overwrite", help="Replace an existing output artifact. Default: no."
    ),
    cache_dir: Path = typer.Option(
        None, help="Where the default BM25 index is cached. Default: $RETR_HOME/bm25 or ~/.cache/retr/bm25."
    ),
    config: Path = typer.Option(
        None, "--config", help="YAML file with any of these options (a 'search:' section is used if present)."
    ),
) -> None:
    from retr.cli.common import build_config, friendly_errors

    with friendly_errors():
        from retr.retrieval.search import SearchConfig, search

        try:
            cfg = build_config(
                SearchConfig, config, section="search", index=index, queries=queries, split=split, k=k, out=out,
                encoder=encoder, batch_size=batch_size, query_template=query_template, max_query_length=max_query_length, k1=k1, b=b, threads=threads, overwrite=overwrite,
            )
        except ValueError as error:
            raise typer.BadParameter(str(error)) from None
        if cfg.index is None:
            from retr.indexing.bm25 import ensure_bm25_index

            cfg.index = ensure_bm25_index(cfg.queries, cache_dir).path
            typer.echo(f"index: BM25 index of {cfg.queries} at {cfg.index}", err=True)
        path = search(cfg)
        typer.echo(str(path))
