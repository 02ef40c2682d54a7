"""Mine BM25 hard negatives for training queries and write a training-set artifact (train.jsonl, bm25.trec).

The corpus's Lucene index is built once (Pyserini/Anserini) into --bm25-cache and reused. Negatives are sampled,
seeded per query, from a window of BM25 ranks after removing judged positives.
"""

from __future__ import annotations

from typing import Any

import typer

from retr.cli.options import from_config, given
from retr.training.mining import MineConfig

NAME = "mine"


@from_config(MineConfig, NAME)
def command(**options: Any) -> None:
    from retr.cli.common import build_config, friendly_errors
    from retr.training.mining import mine

    with friendly_errors():
        cfg = build_config(MineConfig, options.get("config"), NAME, **given(options))
        typer.echo(str(mine(cfg)))
