"""Export a model to the Hugging Face / sentence-transformers world: `SentenceTransformer(OUT)` loads it.

The LoRA adapter is merged and the tokenizer keeps the tokens training added. When sentence-transformers can express
the encoder (prefix prompts; mean, first or weighted-mean pooling; causal attention on a decoder) its configuration
is written too and gives retr's vectors; otherwise retr_encoder.json says why, and `retr.load_encoder(OUT)` or
`retr index --encoder OUT` loads it with its format. --format peft keeps base/ and adapter/ apart.
"""

from __future__ import annotations

from typing import Any

import typer

from retr.cli.options import from_config, given
from retr.retrieval.export import ExportConfig

NAME = "export"


@from_config(ExportConfig, NAME, arguments=("model",))
def command(**options: Any) -> None:
    from retr.cli.common import build_config, friendly_errors
    from retr.retrieval.export import export

    with friendly_errors():
        path = export(build_config(ExportConfig, options.get("config"), NAME, **given(options)))
    typer.echo(f"exported to {path}")
