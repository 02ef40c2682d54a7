"""Train an embedding model: LLaRA adaptation on raw text, or CL / SFT / DPO / KL / GRL fine-tuning on a mined set.

Writes a "model" artifact (LoRA adapter, tokenizer, encoder.json, log, loss plot) that `retr index` takes as
--encoder. Every TrainConfig field is an option (defaults < --config YAML < options). Multi-process:
`torchrun --nproc-per-node N -m retr train ...`.
"""

from __future__ import annotations

import dataclasses
import inspect
import types
import typing
from pathlib import Path
from typing import Any, Optional

import typer

from retr.training.config import TrainConfig

NAME = "train"


def command(**options: Any) -> None:
    from retr.cli.common import build_config, friendly_errors

    config_file = options.pop("config")
    with friendly_errors():
        cfg = build_config(TrainConfig, config_file, section="train", **options)
        from retr.training.train import train

        out = train(cfg)
    typer.echo(str(out))


def _option_type(hint: Any) -> Any:
    """The option's Python type: the non-None member of ``X | None``; ``list[str]`` stays a repeatable option."""
    if typing.get_origin(hint) not in (typing.Union, types.UnionType):
        return hint
    return next(a for a in typing.get_args(hint) if a is not type(None))


def _signature() -> inspect.Signature:
    """One keyword option per TrainConfig field (help from the field metadata, default shown from the dataclass)."""
    hints = typing.get_type_hints(TrainConfig)
    params = [
        inspect.Parameter(
            "config",
            inspect.Parameter.KEYWORD_ONLY,
            default=typer.Option(None, "--config", help="YAML file of TrainConfig fields (or a pipeline file's 'train' section)"),
            annotation=Optional[Path],
        )
    ]
    for field in dataclasses.fields(TrainConfig):
        default = field.default_factory() if field.default is dataclasses.MISSING else field.default  # type: ignore[misc]
        shown = "none" if default is None else repr(default) if isinstance(default, str) else str(default)
        params.append(
            inspect.Parameter(
                field.name,
                inspect.Parameter.KEYWORD_ONLY,
                default=typer.Option(None, help=f"{field.metadata['help']}. Default: {shown}.", show_default=False),
                annotation=Optional[_option_type(hints[field.name])],
            )
        )
    return inspect.Signature(params)


command.__signature__ = _signature()  # type: ignore[attr-defined]
