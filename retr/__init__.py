"""retr: decoder-only LLMs as dense retrievers, end to end, with artifacts that trace every number.

The Python API is the layer the CLI uses, one name per stage (imported on first use, so ``import retr`` is cheap):

>>> import retr
>>> hits = retr.open_index("runs/index").search("what causes fever?", k=5)    # BM25 or dense index artifact
>>> encoder = retr.load_encoder("runs/grl")                                  # a trained model, default, minilm
>>> vectors = encoder.encode_queries(["what causes fever?"])
>>> retr.open_artifact("runs/grl").manifest["metrics"]                       # any artifact's manifest
>>> retr.train(retr.TrainConfig(objective="cl", data="runs/mined", out="runs/cl"))  # and mine, build_index, search, score
"""

from __future__ import annotations

from importlib import import_module
from typing import Any

__version__ = "0.1.0"

# public name -> (module, attribute)
_API = {
    "load_encoder": ("retr.retrieval.encoder", "load_encoder"),
    "open_index": ("retr.retrieval.searcher", "open_index"),
    "open_artifact": ("retr.data.artifacts", "open_artifact"),
    "export_encoder": ("retr.retrieval.export", "export_encoder"),
    "mine": ("retr.training.mining", "mine"),
    "MineConfig": ("retr.training.mining", "MineConfig"),
    "train": ("retr.training.train", "train"),
    "TrainConfig": ("retr.training.config", "TrainConfig"),
    "build_index": ("retr.indexing.dense", "build_index"),
    "IndexConfig": ("retr.indexing.dense", "IndexConfig"),
    "search": ("retr.retrieval.search", "search"),
    "SearchConfig": ("retr.retrieval.search", "SearchConfig"),
    "score": ("retr.evaluation.report", "score"),
    "ScoreConfig": ("retr.evaluation.report", "ScoreConfig"),
}
__all__ = sorted(_API)


def __getattr__(name: str) -> Any:
    if name not in _API:
        raise AttributeError(f"module 'retr' has no attribute {name!r}")
    module, attribute = _API[name]
    return getattr(import_module(module), attribute)


def __dir__() -> list[str]:
    return sorted(list(globals()) + __all__)
