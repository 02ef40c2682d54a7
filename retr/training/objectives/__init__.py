"""The objectives of ``retr train``: one module per objective (family), found here and registered by name.

``REGISTRY`` maps a name to its :class:`~retr.training.objectives.base.Objective`; ``OBJECTIVES`` lists the
names. Every module of this package except ``base`` defines ``OBJECTIVES``, a tuple of instances.
"""

from __future__ import annotations

import importlib
import pkgutil

from retr.data.errors import UsageError
from retr.training.objectives.base import Objective


def _discover() -> dict[str, Objective]:
    registry: dict[str, Objective] = {}
    for info in sorted(pkgutil.iter_modules(__path__), key=lambda m: m.name):
        if info.name == "base":
            continue
        for objective in importlib.import_module(f"{__name__}.{info.name}").OBJECTIVES:
            if objective.name in registry:
                raise RuntimeError(f"objective {objective.name!r} is defined twice (module {info.name})")
            registry[objective.name] = objective
    return registry


REGISTRY: dict[str, Objective] = _discover()
OBJECTIVES: tuple[str, ...] = tuple(REGISTRY)


def get(name: str) -> Objective:
    try:
        return REGISTRY[name]
    except KeyError:
        raise UsageError(f"unknown objective {name!r}; choose one of {', '.join(OBJECTIVES)}") from None
