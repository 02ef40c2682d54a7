"""(not built yet)"""

from retr.cli.common import not_built

NAME = "run"


def command() -> None:
    not_built(NAME)
