"""Export a model to the Hugging Face / sentence-transformers world: `SentenceTransformer(OUT)` loads it.

The LoRA adapter is merged and the tokenizer keeps the tokens training added. When sentence-transformers can express
the encoder (prefix prompts; mean, first or weighted-mean pooling; causal attention on a decoder) its configuration
is written too and gives retr's vectors; otherwise retr_encoder.json says why and `retr.load_encoder(OUT)` or
`retr index --encoder OUT` loads it. --format peft keeps base/ and adapter/ apart.
"""

from __future__ import annotations

from pathlib import Path

import typer

NAME = "export"


def command(
    model: str = typer.Argument(..., help="A `retr train` output, default, minilm or a Hugging Face model dir."),
    out: Path = typer.Option(Path("runs/export"), help="Output folder (an 'export' artifact)."),
    format: str = typer.Option("hf", help="hf (one model dir, LoRA merged) or peft (base/ and adapter/)."),
    overwrite: bool = typer.Option(False, help="Replace an existing export artifact."),
) -> None:
    from retr.cli.common import friendly_errors
    from retr.retrieval.export import ExportConfig, export

    with friendly_errors():
        path = export(ExportConfig(model=model, out=out, format=format, overwrite=overwrite))
    typer.echo(f"exported to {path}")
