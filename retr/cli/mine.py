"""(not built yet)"""

from retr.cli.common import not_built

NAME = "mine"


def command() -> None:
    not_built(NAME)
