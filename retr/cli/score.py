"""Score runs against qrels (MRR@10, nDCG@10, R@100, R@1000, MAP or any ranx metric), compare them with paired
significance tests, and/or evaluate an encoder with MTEB on local data; writes a "report" artifact (Markdown, JSON,
LaTeX, PNG plots). With --combine, reports of several datasets become one table with their mean."""

from __future__ import annotations

from typing import Any

import typer

from retr.cli.options import from_config, given
from retr.evaluation.report import ScoreConfig

NAME = "score"


@from_config(ScoreConfig, NAME, arguments=("runs",), aliases={"names": "--name"})
def command(**options: Any) -> None:
    from retr.cli.common import build_config, friendly_errors
    from retr.evaluation.report import score

    with friendly_errors():
        cfg = build_config(ScoreConfig, options.get("config"), NAME, **given(options))
        path = score(cfg)
        typer.echo((path / ("summary.md" if cfg.combine else "report.md")).read_text())
        typer.echo(f"report: {path}")
