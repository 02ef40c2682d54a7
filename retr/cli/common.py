"""Shared CLI plumbing: YAML config + CLI overrides into a stage's config dataclass, and one-line errors."""

from __future__ import annotations

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

    from retr.data.errors import UsageError

    try:
        data = yaml.safe_load(Path(path).read_text()) or {}
    except (OSError, yaml.YAMLError) as error:
        raise UsageError(f"{path}: not a readable YAML file ({' '.join(str(error).split())})") from None
    if not isinstance(data, dict):
        raise UsageError(f"{path}: expected a YAML mapping of options")
    if section and isinstance(data.get(section), dict):
        data = data[section]
    return data


def build_config(cls: type[T], config_file: Path | None = None, section: str | None = None, **overrides: Any) -> T:
    """Defaults < YAML file < CLI options (options left as None do not override); mistakes are UsageErrors."""
    from retr.data.options import build_config as build

    values = load_yaml(config_file, section)
    values.update({k: v for k, v in overrides.items() if v is not None})
    return build(cls, values, str(config_file) if config_file else "options")


@contextmanager
def friendly_errors() -> Iterator[None]:
    """A missing file named on the command line is a user mistake too (the rest is :func:`retr.cli.main`'s)."""
    from retr.data.errors import UsageError

    try:
        yield
    except FileNotFoundError as error:
        raise UsageError(f"{error.filename}: no such file or folder") from None
