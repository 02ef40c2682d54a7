"""Typer options generated from a config dataclass: one definition of each option (name, type, default, help).

Every field made with :func:`retr.data.options.option` becomes ``--field-name`` (booleans ``--x/--no-x``); its
help ends with the real default ("Default: X."), so the text cannot drift from the dataclass. Every option is
``None`` unless given, so defaults < ``--config`` YAML < options, and the one builder
(:func:`retr.data.options.build_config`) checks the result.
"""

from __future__ import annotations

import dataclasses
import inspect
import typing
from pathlib import Path
from typing import Any, Callable, Optional

import typer

from retr.data.options import shown_default

CONFIG = "config"


def _shown(field: dataclasses.Field) -> str | None:
    if field.default is not dataclasses.MISSING:
        return shown_default(field.default)
    if field.default_factory is not dataclasses.MISSING:  # type: ignore[misc]
        return shown_default(field.default_factory())  # type: ignore[misc]
    return None


def option_help(field: dataclasses.Field) -> str:
    """The field's help with its real default appended."""
    text = str(field.metadata.get("help", "")).rstrip(".")
    shown = _shown(field)
    return f"{text}. Default: {shown}." if shown is not None else f"{text}."


def _annotation(hint: Any) -> Any:
    """The option's type: the non-None member of ``X | None`` (lists stay lists)."""
    args = [a for a in typing.get_args(hint) if a is not type(None)]
    if typing.get_origin(hint) in (list, tuple):
        return Optional[hint]
    return Optional[args[0] if args and typing.get_origin(hint) is not list else hint]


def config_params(cls: type, section: str, arguments: tuple[str, ...] = (), aliases: dict[str, str] | None = None) -> list[inspect.Parameter]:
    """One keyword parameter per field of ``cls`` (``arguments`` become positional arguments), plus ``--config``."""
    hints = typing.get_type_hints(cls)
    aliases = aliases or {}
    params = [
        inspect.Parameter(
            CONFIG, inspect.Parameter.KEYWORD_ONLY, annotation=Optional[Path],
            default=typer.Option(None, "--config", help=f"YAML file of these options (its '{section}' section if present)."),
        )
    ]
    for field in dataclasses.fields(cls):
        flag = "--" + field.name.replace("_", "-")
        names = [f"{flag}/--no-{flag[2:]}"] if hints[field.name] in (bool, Optional[bool]) else [flag]
        names += [aliases[field.name]] if field.name in aliases else []
        if field.name in arguments:
            default = typer.Argument(None, help=option_help(field), show_default=False)
        else:
            default = typer.Option(None, *names, help=option_help(field), show_default=False)
        params.append(inspect.Parameter(field.name, inspect.Parameter.KEYWORD_ONLY, default=default,
                                        annotation=_annotation(hints[field.name])))
    return params


def from_config(cls: type, section: str, extra: list[inspect.Parameter] = (), arguments: tuple[str, ...] = (),
                aliases: dict[str, str] | None = None) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Give a ``command(**options)`` function the generated options of ``cls`` (plus ``extra`` parameters)."""

    def decorate(function: Callable[..., Any]) -> Callable[..., Any]:
        params = config_params(cls, section, arguments, aliases) + list(extra)
        positional = [p for p in params if p.name in arguments]
        function.__signature__ = inspect.Signature(positional + [p for p in params if p.name not in arguments])  # type: ignore[attr-defined]
        return function

    return decorate


def given(options: dict[str, Any]) -> dict[str, Any]:
    """The options the user gave (None and empty lists mean 'not given'), without ``--config``."""
    return {k: v for k, v in options.items() if k != CONFIG and v is not None and v != [] and v != ()}
