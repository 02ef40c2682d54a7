"""Run a YAML pipeline of stages (subset, mine, train, index, search, score); up-to-date stages are skipped."""

from __future__ import annotations

from pathlib import Path

import typer

NAME = "run"


def command(
    config: Path = typer.Argument(..., help="Pipeline YAML (see configs/): workdir, budget and a list of stages."),
    workdir: Path = typer.Option(None, help="Where stage artifacts go (default: the config's workdir)."),
    from_stage: str = typer.Option(None, "--from", help="Re-run this stage and every stage after it."),
) -> None:
    from retr.cli.common import friendly_errors
    from retr.pipeline import Pipeline, run_pipeline

    with friendly_errors():
        pipeline = Pipeline.load(config, workdir)
        run_pipeline(pipeline, force_from=from_stage, log=typer.echo)
