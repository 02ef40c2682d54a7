"""(not built yet)"""

from retr.cli.common import not_built

NAME = "demo"


def command() -> None:
    not_built(NAME)
