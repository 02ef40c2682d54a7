"""One definition per option: a config dataclass field carries its default and its help text.

``option(default, help)`` is the field every stage config uses; the CLI generates each command's options from these
fields (name, type, default, help) and ``retr run`` builds the same dataclasses from YAML, so nothing is retyped.
"""

from __future__ import annotations

import dataclasses
from typing import Any


def option(default: Any, help: str) -> Any:  # noqa: A002 - mirrors typer's keyword
    """A dataclass field with its CLI help; list and dict defaults are copied per instance."""
    if isinstance(default, (list, dict, set)):
        return dataclasses.field(default_factory=lambda: type(default)(default), metadata={"help": help})
    return dataclasses.field(default=default, metadata={"help": help})
