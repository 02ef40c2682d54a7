"""Shared CLI plumbing: YAML config + CLI overrides into a stage's config dataclass, and one-line errors."""

from __future__ import annotations

import dataclasses
import sys
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterator, TypeVar

import typer

T = TypeVar("T")


def load_yaml(path: Path | None, section: str | None = None) -> dict[str, Any]:
    """Read a YAML mapping; with ``section``, take that key when present (a pipeline file names its stages)."""
    if path is None:
        return {}
    import yaml

    try:
        data = yaml.safe_load(Path(path).read_text()) or {}
    except (OSError, yaml.YAMLError) as error:
        raise typer.BadParameter(f"{path}: {error}") from None
    if not isinstance(data, dict):
        raise typer.BadParameter(f"{path}: expected a YAML mapping")
    if section and isinstance(data.get(section), dict):
        data = data[section]
    return data


def build_config(cls: type[T], config_file: Path | None = None, section: str | None = None, **overrides: Any) -> T:
    """Defaults < YAML file < CLI options (options left as None do not override)."""
    names = {f.name for f in dataclasses.fields(cls)}  # type: ignore[arg-type]
    values = load_yaml(config_file, section)
    unknown = sorted(set(values) - names)
    if unknown:
        raise typer.BadParameter(f"{config_file}: unknown option(s) {', '.join(unknown)}; known: {', '.join(sorted(names))}")
    values.update({k: v for k, v in overrides.items() if v is not None})
    return cls(**values)


@contextmanager
def friendly_errors() -> Iterator[None]:
    """Turn the project's expected errors into one red line and exit code 2 (no traceback)."""
    from retr.data.artifacts import ArtifactError
    from retr.data.errors import DataError

    try:
        yield
    except (ArtifactError, DataError, FileNotFoundError) as error:
        typer.secho(f"error: {error}", fg=typer.colors.RED, err=True)
        sys.exit(2)


def not_built(name: str) -> None:
    typer.secho(f"retr {name}: not built yet in this version", fg=typer.colors.YELLOW, err=True)
    raise typer.Exit(2)
