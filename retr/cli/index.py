"""Encode a corpus into a FAISS index (resumable, shardable over processes/GPUs), or a BM25 index (--encoder bm25)."""

from __future__ import annotations

import inspect
from pathlib import Path
from typing import Any, List, Optional

import typer

from retr.cli.options import from_config, given
from retr.indexing.dense import IndexConfig

NAME = "index"

MERGE = inspect.Parameter(
    "merge", inspect.Parameter.KEYWORD_ONLY, annotation=Optional[List[Path]],
    default=typer.Option(None, help="Merge these dense-shard artifacts (repeat the option, one per shard) into one "
                         "dense-index at --out; no encoding."),
)


@from_config(IndexConfig, NAME, extra=[MERGE])
def command(**options: Any) -> None:
    from retr.cli.common import build_config, friendly_errors

    merge = options.pop("merge", None)
    with friendly_errors():
        if merge:
            from retr.indexing.dense import MergeConfig, merge_shards

            chosen = {k: v for k, v in given(options).items() if k in ("out", "gpu", "overwrite")}
            path = merge_shards(build_config(MergeConfig, None, shards=[str(p) for p in merge], **chosen))
        else:
            from retr.indexing.dense import build_index

            path = build_index(build_config(IndexConfig, options.get("config"), NAME, **given(options)))
    typer.echo(f"index written to {path}")
