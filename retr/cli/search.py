"""Search an index (BM25 or dense) with a dataset's queries and write a run artifact (run.trec).

Without --index, searches the BM25 index of the queries' own corpus (built once into --bm25-cache, then reused).
Ad hoc: `--query "text"` (repeatable), or `--queries FILE.txt|FILE.tsv` without --out (one query per line, or
id<TAB>text), prints the top k with each document's text (a table on a terminal, TSV when piped; --format json).
"""

from __future__ import annotations

import inspect
from pathlib import Path
from typing import Any, List, Optional

import typer

from retr.cli.options import from_config, given
from retr.retrieval.search import SearchConfig

NAME = "search"

# Ad hoc search only (nothing is written, so these are not SearchConfig fields).
ADHOC = [
    inspect.Parameter("query", inspect.Parameter.KEYWORD_ONLY, annotation=Optional[List[str]],
                      default=typer.Option(None, help="Ad hoc: a query to search and print (repeat for more). "
                                           "Needs --index.")),
    inspect.Parameter("format", inspect.Parameter.KEYWORD_ONLY, annotation=str,
                      default=typer.Option("auto", help="Ad hoc output: auto (table on a terminal, else tsv), table, "
                                           "tsv, json.")),
    inspect.Parameter("corpus", inspect.Parameter.KEYWORD_ONLY, annotation=Optional[str],
                      default=typer.Option(None, help="Ad hoc: the corpus for hit texts. Default: the one the index "
                                           "records.")),
]


@from_config(SearchConfig, NAME, extra=ADHOC)
def command(**options: Any) -> None:
    from retr.cli.common import build_config, friendly_errors

    query, fmt, corpus = options.pop("query"), options.pop("format"), options.pop("corpus")
    queries, out = options.get("queries"), options.get("out")
    adhoc_file = queries is not None and out is None and Path(queries).suffix in (".txt", ".tsv") \
        and Path(queries).is_file()
    if query or adhoc_file:
        with friendly_errors():
            _adhoc(options.get("index"), query, Path(queries) if adhoc_file else None, options.get("k") or 10, fmt,
                   corpus, options.get("encoder"),
                   {"query_template": options.get("query_template"), "max_query_length": options.get("max_query_length")})
        return
    with friendly_errors():
        from retr.retrieval.search import search

        cfg = build_config(SearchConfig, options.get("config"), NAME, **given(options))
        if cfg.index is None:
            from retr.data.artifacts import check_output
            from retr.data.datasets import Dataset
            from retr.indexing.bm25 import ensure_bm25_index

            check_output(cfg.out, "run", cfg.overwrite)  # a refused --out, and bad queries, before an index is built
            Dataset(cfg.queries).queries(cfg.split)
            cfg.index = ensure_bm25_index(cfg.queries, cfg.bm25_cache).path
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
