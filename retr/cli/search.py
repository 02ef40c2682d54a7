"""Search an index (BM25 or dense) with a dataset's queries and write a run artifact (run.trec).

Without --index, searches the BM25 index of the queries' own corpus (built once into the cache, then reused).
Ad hoc: `--query "text"` (repeatable), or `--queries FILE.txt|FILE.tsv` without --out (one query per line, or
id<TAB>text), prints the top k with each document's text (a table on a terminal, TSV when piped; --format json).
"""

from __future__ import annotations

from pathlib import Path
from typing import List

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
    query: List[str] = typer.Option(None, help="Ad hoc: a query to search and print (repeat for more). "
                                    "Needs --index."),
    format: str = typer.Option("auto", help="Ad hoc output: auto (table on a terminal, else tsv), table, tsv, json."),
    corpus: str = typer.Option(None, help="Ad hoc: the corpus for hit texts. Default: the one the index records."),
) -> None:
    from retr.cli.common import build_config, friendly_errors

    adhoc_file = queries is not None and out is None and Path(queries).suffix in (".txt", ".tsv") \
        and Path(queries).is_file()
    if query or adhoc_file:
        with friendly_errors():
            _adhoc(index, query, Path(queries) if adhoc_file else None, k or 10, format, corpus, encoder,
                   {"query_template": query_template, "max_query_length": max_query_length})
        return
    with friendly_errors():
        from retr.retrieval.search import SearchConfig, search

        cfg = build_config(
            SearchConfig, config, section="search", index=index, queries=queries, split=split, k=k, out=out,
            encoder=encoder, batch_size=batch_size, query_template=query_template, max_query_length=max_query_length, k1=k1, b=b, threads=threads, overwrite=overwrite,
        )
        if cfg.index is None:
            from retr.data.datasets import Dataset
            from retr.indexing.bm25 import ensure_bm25_index

            Dataset(cfg.queries).queries(cfg.split)  # bad queries are refused before an index is built for them

            cfg.index = ensure_bm25_index(cfg.queries, cache_dir).path
            typer.echo(f"index: BM25 index of {cfg.queries} at {cfg.index}", err=True)
        path = search(cfg)
        typer.echo(str(path))


def _adhoc(index: Path | None, texts: list[str] | None, file: Path | None, k: int, fmt: str, corpus: str | None,
           encoder: str | None, query_side: dict) -> None:
    """Search typed queries and print the hits (nothing is written)."""
    from retr.cli.hits import FORMATS, print_hits
    from retr.data.errors import UsageError
    from retr.retrieval.searcher import as_queries, open_index, read_query_file

    if index is None:
        raise UsageError("--query / a query file needs --index (a bm25-index or dense-index artifact)")
    if fmt not in FORMATS:
        raise UsageError(f"unknown --format {fmt!r}; choose one of {', '.join(FORMATS)}")
    queries = as_queries(list(texts)) if texts else read_query_file(file)
    searcher = open_index(index, corpus=corpus, encoder=encoder, query_side=query_side)
    print_hits(searcher.search(queries, k=k), queries, fmt)
