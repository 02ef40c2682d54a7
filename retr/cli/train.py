"""(not built yet)"""

from retr.cli.common import not_built

NAME = "train"


def command() -> None:
    not_built(NAME)
