"""Printing ad-hoc search hits: a table on a terminal, TSV or JSON lines when piped (or when asked)."""

from __future__ import annotations

import json
import sys
from typing import TextIO

FORMATS = ("auto", "table", "tsv", "json")


def snippet(text: str | None, width: int) -> str:
    """The text on one line, cut at ``width`` characters with an ellipsis."""
    flat = " ".join((text or "").split())
    return flat if len(flat) <= width else flat[: max(0, width - 1)] + "…"


def print_hits(results: dict, queries: dict[str, str], fmt: str = "auto", width: int = 100,
               stream: TextIO | None = None) -> None:
    """``results``: {query id: [Hit]} from :meth:`retr.retrieval.searcher.Index.search`."""
    stream = stream or sys.stdout
    if fmt == "auto":
        fmt = "table" if stream.isatty() else "tsv"
    if fmt == "json":
        for qid, hits in results.items():
            for hit in hits:
                stream.write(json.dumps({"query_id": qid, "query": queries[qid], "rank": hit.rank, "docid": hit.docid,
                                         "score": hit.score, "text": hit.text}, ensure_ascii=False) + "\n")
    elif fmt == "tsv":
        stream.write("query_id\trank\tdocid\tscore\tsnippet\n")
        for qid, hits in results.items():
            for hit in hits:
                stream.write(f"{qid}\t{hit.rank}\t{hit.docid}\t{hit.score:.4f}\t{snippet(hit.text, width)}\n")
    else:
        from rich.console import Console
        from rich.table import Table

        console = Console(file=stream)
        for qid, hits in results.items():
            table = Table(title=f"{qid}: {queries[qid]}", title_justify="left")
            for name, justify in (("rank", "right"), ("docid", "left"), ("score", "right"), ("text", "left")):
                table.add_column(name, justify=justify, overflow="fold" if name == "text" else "ellipsis")
            for hit in hits:
                table.add_row(str(hit.rank), hit.docid, f"{hit.score:.4f}", snippet(hit.text, width))
            console.print(table)
