"""One definition per option: a config dataclass field carries its default and its help text.

``option(default, help)`` is the field every stage config uses; the CLI generates each command's options from these
fields (name, type, default, help) and ``retr run`` builds the same dataclasses from YAML, so nothing is retyped.
"""

from __future__ import annotations

import dataclasses
import types
import typing
from pathlib import Path
from typing import Any


def option(default: Any, help: str) -> Any:  # noqa: A002 - mirrors typer's keyword
    """A dataclass field with its CLI help; list and dict defaults are copied per instance."""
    if isinstance(default, (list, dict, set)):
        return dataclasses.field(default_factory=lambda: type(default)(default), metadata={"help": help})
    return dataclasses.field(default=default, metadata={"help": help})


def build_config(cls: type, values: dict[str, Any], source: str = "options") -> Any:
    """``cls(**values)`` with every user mistake as one :class:`UsageError` naming ``source`` and the key: an
    unknown key (the known ones listed), a value of the wrong type, or a value its ``__post_init__`` refuses.

    The one builder of the CLI (YAML file + command-line options) and of ``retr run`` stages.
    """
    from retr.data.errors import UsageError

    if not isinstance(values, dict):
        raise UsageError(f"{source}: expected a mapping of options, got {type(values).__name__}")
    check_names(cls, values, source)
    hints = typing.get_type_hints(cls)
    for key, value in values.items():
        expected = _accepts(hints[key], value)
        if expected:
            raise UsageError(f"{source}: {key} must be {expected}, got {value!r}")
    # one item where a list is expected (YAML `splits: test`) is a list of one, never a string to iterate
    values = {key: [value] if isinstance(value, (str, Path)) and _is_list(hints[key]) else value
              for key, value in values.items()}
    try:
        return cls(**values)
    except (ValueError, TypeError) as error:
        if isinstance(error, UsageError):
            raise
        raise UsageError(f"{source}: {error}") from None


def check_names(cls: type, keys: Any, source: str, exclude: frozenset[str] = frozenset()) -> None:
    """Refuse option names that are not fields of ``cls`` (minus ``exclude``), listing the known ones."""
    from retr.data.errors import UsageError

    names = {f.name for f in dataclasses.fields(cls)} - exclude
    unknown = sorted(map(str, set(keys) - names))
    if unknown:
        raise UsageError(f"{source}: unknown option(s) {', '.join(unknown)}; known: {', '.join(sorted(names))}")


def _is_list(hint: Any) -> bool:
    """Whether the type ``hint`` is a list (or tuple), alone or in a union (``list[str] | None``)."""
    if typing.get_origin(hint) in (typing.Union, types.UnionType):
        return any(_is_list(arg) for arg in typing.get_args(hint))
    return typing.get_origin(hint) in (list, tuple) or hint in (list, tuple)


def _accepts(hint: Any, value: Any) -> str | None:
    """None when ``value`` fits the type ``hint``, else a short name of what was expected."""
    from pathlib import Path

    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if origin in (typing.Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        failures = [_accepts(arg, value) for arg in args if arg is not type(None)]
        return None if any(f is None for f in failures) else " or ".join(f for f in failures if f)
    if origin in (list, tuple):
        if isinstance(value, (str, Path)) and args and _accepts(args[0], value) is None:
            return None  # one item where a list is expected
        if not isinstance(value, (list, tuple)):
            return "a list"
        inner = [_accepts(args[0], item) for item in value] if args else []
        return next((f"a list of {f}" for f in inner if f), None)
    if origin is dict:
        return None if isinstance(value, dict) else "a mapping"
    if hint is bool:
        return None if isinstance(value, bool) else "true or false"
    if hint is int:
        return None if isinstance(value, int) and not isinstance(value, bool) else "an integer"
    if hint is float:
        return None if isinstance(value, (int, float)) and not isinstance(value, bool) else "a number"
    if hint is str:
        return None if isinstance(value, str) else "a string"
    if hint is Path:
        return None if isinstance(value, (str, Path)) else "a path"
    return None  # Any and other types: the config's own validation decides
