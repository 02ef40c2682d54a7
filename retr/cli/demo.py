"""The whole pipeline on SciFact with the embedded model on a CPU: LLaRA, BM25 mining, GRL, index, search, report.

Runs configs/demo-cpu.yaml (budgets: steps, lengths, sub-corpus size, all in that file and printed first).
Re-running skips every finished stage; the report (Markdown, JSON, LaTeX, PNG plots) is in <workdir>/report.
"""

from __future__ import annotations

from pathlib import Path

import typer

NAME = "demo"
PROJECT = Path(__file__).resolve().parents[2]


def command(
    config: Path = typer.Option(PROJECT / "configs" / "demo-cpu.yaml", help="The demo pipeline."),
    workdir: Path = typer.Option(Path("runs/demo"), help="Where the stage artifacts and the report go."),
    from_stage: str = typer.Option(None, "--from", help="Re-run this stage and every stage after it."),
) -> None:
    import time

    import yaml

    from retr.cli.common import friendly_errors
    from retr.data.datasets import data_root
    from retr.data.errors import DataError
    from retr.pipeline import Pipeline, run_pipeline

    root = data_root()
    missing = [name for name in ("scifact", "wikipedia") if not (root / name).exists()]
    if missing:
        raise DataError(f"{', '.join(str(root / name) for name in missing)} not found: set RETR_DATA_DIR to the "
                        "folder holding scifact/ and wikipedia/ (see ../shared/data/README.md)")
    with friendly_errors():
        pipeline = Pipeline.load(config, workdir)
        typer.echo(f"retr demo: {len(pipeline.stages)} stages, data from {root}, artifacts in {pipeline.workdir}")
        typer.echo("budget:\n" + yaml.safe_dump(pipeline.budget, sort_keys=False).rstrip())
        started = time.perf_counter()
        outputs = run_pipeline(pipeline, force_from=from_stage, log=typer.echo)
        report = outputs[pipeline.stages[-1].name]
        if (report / "report.md").is_file():
            typer.echo("\n" + (report / "report.md").read_text())
        typer.echo(f"demo finished in {(time.perf_counter() - started) / 60:.1f} min; report: {report}")
