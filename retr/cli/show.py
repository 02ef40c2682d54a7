"""Print an artifact's manifest and its lineage tree (the inputs that made it, recursively)."""

from __future__ import annotations

import json
from pathlib import Path

import typer

NAME = "show"


def command(
    path: Path = typer.Argument(..., help="Artifact directory (the one holding manifest.json)."),
    verify: bool = typer.Option(False, "--verify", help="Also check every output file against its sha256."),
    full: bool = typer.Option(False, "--full", help="Print the whole manifest, outputs included."),
) -> None:
    from retr.cli.common import friendly_errors
    from retr.data.artifacts import lineage, open_artifact

    with friendly_errors():
        artifact = open_artifact(path, verify=verify)
        manifest = dict(artifact.manifest)
        if not full:
            manifest["outputs"] = f"{len(manifest.get('outputs', []))} files (--full lists them)"
        typer.echo(json.dumps(manifest, indent=2, default=str))
        typer.echo("\nlineage:")
        for line in lineage(artifact):
            typer.echo("  " + line)
        if verify:
            typer.echo("\nverified: every output matches its checksum")
