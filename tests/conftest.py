"""Shared fixtures: the real-data folder (skip when absent) and quiet, offline defaults."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
os.environ.setdefault("RETR_NATIVE_BF16", "0")  # fp32 by default on every CPU: numbers independent of the machine


@pytest.fixture(scope="session")
def data_dir() -> Path:
    from retr.data.datasets import data_root

    root = data_root()
    if not (root / "scifact").is_dir():
        pytest.skip(f"real data not found at {root} (set RETR_DATA_DIR)")
    return root


# ---------------------------------------------------------------- scoring (helper D): a fake encoder
class HashEncoder:
    """Hashed bag-of-words encoder with the Encoder interface (encode_queries/encode_passages -> float32, L2-normed).

    Fast and deterministic: stands in for a real model wherever a test needs "an encoder", not a good one.
    """

    name = "hash-bow"

    def __init__(self, dim: int = 256) -> None:
        self.dim = dim

    def _encode(self, texts: list[str]):
        import re
        import zlib

        import numpy as np

        out = np.zeros((len(texts), self.dim), dtype=np.float32)
        for row, text in enumerate(texts):
            for token in re.findall(r"\w+", text.lower()):
                out[row, zlib.crc32(token.encode()) % self.dim] += 1.0
        norms = np.linalg.norm(out, axis=1, keepdims=True)
        return out / np.where(norms == 0, 1.0, norms)

    def encode_queries(self, texts: list[str], progress: bool = False):
        return self._encode(texts)

    def encode_passages(self, texts: list[str], progress: bool = False):
        return self._encode(texts)

    def identity(self) -> dict:
        return {"kind": "encoder", "path": "hash-bow", "dim": self.dim, "sha256": f"hash-bow-{self.dim}"}


@pytest.fixture
def hash_encoder() -> HashEncoder:
    return HashEncoder()


def _exact_search(encoder, dataset, split: str, k: int = 1000) -> dict:
    """Brute-force inner-product top-k over a Dataset's corpus (what a flat FAISS IP index returns) -> a Run."""
    import numpy as np

    docs = list(dataset.corpus())
    queries = dataset.queries(split)
    scores = encoder.encode_queries(list(queries.values())) @ encoder.encode_passages([d.contents for d in docs]).T
    run = {}
    for row, qid in enumerate(queries):
        top = np.argsort(-scores[row], kind="stable")[:k]
        run[qid] = {docs[j].id: float(scores[row, j]) for j in top}
    return run


@pytest.fixture
def exact_search():
    return _exact_search
