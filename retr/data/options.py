"""One definition per option: a config dataclass field carries its default and its help text.

``option(default, help)`` is the field every stage config uses; the CLI generates each command's options from these
fields (name, type, default, help) and ``retr run`` builds the same dataclasses from YAML, so nothing is retyped.
Options shared by several configs (the encoder's, BM25's) are defined once in their own dataclass and added to each
config by :func:`include` as flat fields, so CLI options, YAML keys and manifests stay flat.
"""

from __future__ import annotations

import dataclasses
import types
import typing
from pathlib import Path
from typing import Any, Callable, Sequence


def option(default: Any, help: str) -> Any:  # noqa: A002 - mirrors typer's keyword
    """A dataclass field with its CLI help; list and dict defaults are copied per instance."""
    if isinstance(default, (list, dict, set)):
        return dataclasses.field(default_factory=lambda: type(default)(default), metadata={"help": help})
    return dataclasses.field(default=default, metadata={"help": help})


def shown_default(default: Any) -> str | None:
    """A default as help texts show it (None for no default worth showing: None, empty)."""
    if default is None or default == [] or default == "":
        return None
    if isinstance(default, bool):
        return "yes" if default else "no"
    if isinstance(default, list):
        return ", ".join(map(str, default))
    return str(default)


def include(source: type, after: str, only: Sequence[str] | None = None,
            unset: str | None = None) -> Callable[[type], type]:
    """Class decorator (below ``@dataclass``): add the fields of the dataclass ``source`` (or ``only`` those) right
    after the field ``after``, with the source's type, default and help, so each shared option is defined once.

    ``unset``: the added fields default to None instead ("use the model's"), and their help says what None means:
    ``unset`` with ``{default}`` replaced by the source's default, e.g. ``"Default: the model's ({default})"``.
    :func:`included` gives back the added fields' values.
    """

    def decorate(cls: type) -> type:
        hints = typing.get_type_hints(source)
        own = dict(cls.__dict__.get("__annotations__", {}))
        if after not in own:
            raise TypeError(f"{cls.__name__}: no field {after!r} to include {source.__name__}'s fields after")
        added: dict[str, Any] = {}
        for spec in dataclasses.fields(source):
            if only is not None and spec.name not in only:
                continue
            if spec.name in own:
                raise TypeError(f"{cls.__name__}.{spec.name} is defined by {source.__name__}; drop the copy")
            text = str(spec.metadata.get("help", ""))
            if unset is None:
                added[spec.name] = hints[spec.name]
                default = spec.default if spec.default is not dataclasses.MISSING else spec.default_factory()
                setattr(cls, spec.name, option(default, text))
            else:
                added[spec.name] = hints[spec.name] | None
                shown = shown_default(spec.default if spec.default is not dataclasses.MISSING else None)
                note = unset.format(default=shown) if shown is not None else ""
                setattr(cls, spec.name, option(None, f"{text.rstrip('.')}. {note}" if note else text))
        names = list(own)
        at = names.index(after) + 1
        cls.__annotations__ = {**{n: own[n] for n in names[:at]}, **added, **{n: own[n] for n in names[at:]}}
        cls.__included__ = {**getattr(cls, "__included__", {}), source: tuple(added)}
        return cls

    return decorate


def included(config: Any, source: type) -> dict[str, Any]:
    """The values of the fields :func:`include` added to ``config``'s class from ``source``."""
    return {name: getattr(config, name) for name in type(config).__included__[source]}


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
