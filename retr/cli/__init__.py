"""The ``retr`` command line (Typer).

Each command lives in its own small module under ``retr/cli`` that imports only Typer at the top; the heavy
stage code (torch, Pyserini, FAISS) is imported inside the command, so ``retr --help`` stays fast. The CLI sits
at the end of the import chain (data <- retrieval <- indexing/training <- evaluation <- cli), which is why it is
its own package rather than part of ``retrieval/``.
"""

from __future__ import annotations

import sys
from typing import Any

import typer
from typer.core import TyperGroup

from retr.cli import demo, export, index, mine, run, score, search, show, train

class OneLineErrors(TyperGroup):
    """The one error policy of every command: a user mistake (a :class:`retr.data.errors.RetrError`, or a bad option
    on the command line) prints one line, ``retr <command>: error: <what to do>``, and exits 2; an internal failure
    keeps its traceback and exits 1. (On the group, so tests that invoke ``app`` see the same policy.)"""

    def main(self, args: Any = None, prog_name: str | None = None, complete_var: str | None = None,
             standalone_mode: bool = True, **extra: Any) -> Any:
        from typer._click.exceptions import ClickException, NoArgsIsHelpError

        from retr.data.errors import RetrError

        args = list(sys.argv[1:] if args is None else args)
        where = f"retr {args[0]}" if args and not args[0].startswith("-") else "retr"
        try:
            result = super().main(args, prog_name or "retr", complete_var, standalone_mode=False, **extra)
        except NoArgsIsHelpError as error:
            typer.echo(error.ctx.get_help() if error.ctx else str(error))
            sys.exit(0)
        except ClickException as error:
            message = error.format_message()
        except RetrError as error:
            message = str(error)
        else:
            # Without standalone mode Click *returns* the code of a typer.Exit (and of Ctrl-C: 130) instead of
            # exiting with it; our commands return None, so an int here is such a code and must become the status.
            if isinstance(result, int) and not isinstance(result, bool):
                sys.exit(result)
            return result
        typer.echo(f"{where}: error: {' '.join(message.split())}", err=True)
        sys.exit(2)


app = typer.Typer(
    cls=OneLineErrors,
    name="retr",
    help="Decoder-only LLMs as dense retrievers: mine | train | index | search | score, plus run and demo.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,  # plain Click help: wraps long words at any width instead of cutting them with '…'
)
for module in (mine, train, index, search, score, export, run, demo, show):
    app.command(name=module.NAME, help=module.__doc__)(module.command)


def main() -> None:
    app()
