"""Train an embedding model: LLaRA adaptation on raw text, or CL / SFT / DPO / KL / GRL fine-tuning on a mined set.

Writes a "model" artifact (LoRA adapter, tokenizer, encoder.json, log, loss plot) that `retr index` takes as
--encoder. Every TrainConfig field is an option (defaults < --config YAML < options). Multi-process:
`torchrun --nproc-per-node N -m retr train ...`.
"""

from __future__ import annotations

from typing import Any

import typer

from retr.cli.options import from_config, given
from retr.training.config import TrainConfig

NAME = "train"


@from_config(TrainConfig, NAME)
def command(**options: Any) -> None:
    from retr.cli.common import build_config, friendly_errors
    from retr.training.train import train

    with friendly_errors():
        cfg = build_config(TrainConfig, options.get("config"), NAME, **given(options))
        typer.echo(str(train(cfg)))
