"""(not built yet)"""

from retr.cli.common import not_built

NAME = "score"


def command() -> None:
    not_built(NAME)
