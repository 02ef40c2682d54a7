"""The ``retr`` command line (Typer).

Each command lives in its own small module under ``retr/cli`` that imports only Typer at the top; the heavy
stage code (torch, Pyserini, FAISS) is imported inside the command, so ``retr --help`` stays fast. The CLI sits
at the end of the import chain (data <- retrieval <- indexing/training <- evaluation <- cli), which is why it is
its own package rather than part of ``retrieval/``.
"""

from __future__ import annotations

import typer

from retr.cli import demo, export, index, mine, run, score, search, show, train

app = typer.Typer(
    name="retr",
    help="Decoder-only LLMs as dense retrievers: mine | train | index | search | score, plus run and demo.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
for module in (mine, train, index, search, score, export, run, demo, show):
    app.command(name=module.NAME, help=module.__doc__)(module.command)


def main() -> None:
    app()
