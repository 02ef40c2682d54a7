"""(not built yet)"""

from retr.cli.common import not_built

NAME = "search"


def command() -> None:
    not_built(NAME)
