"""FAISS indexes from any ``index_factory`` string, inner product, on the GPU when faiss-gpu and a GPU are there.

Indexes that need training (IVF, PQ, ...) are trained on a seeded sample. Loading and searching an index is
the reading side, owned by :mod:`retr.retrieval.dense_layout`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from retr.retrieval.dense_layout import faiss_message, to_cpu, to_gpu, use_gpu

ADD_BATCH = 65536


def build_faiss(vectors: np.ndarray, factory: str = "Flat", train_size: int = 65536, seed: int = 0,
                gpu: bool | None = None, progress: bool = False) -> Any:
    """An inner-product index of ``vectors`` (rows may be a memmap); trained on ``train_size`` sampled rows."""
    import faiss
    from tqdm.auto import tqdm

    n, dim = vectors.shape
    try:
        index = faiss.index_factory(dim, factory, faiss.METRIC_INNER_PRODUCT)
    except RuntimeError as error:
        raise ValueError(f"FAISS cannot build index_factory({factory!r}): {faiss_message(error)}") from None
    if use_gpu(gpu):
        index = to_gpu(index)
    if not index.is_trained:
        rows = np.sort(np.random.default_rng(seed).choice(n, size=min(train_size, n), replace=False))
        try:
            index.train(np.ascontiguousarray(vectors[rows], dtype=np.float32))
        except RuntimeError as error:
            raise ValueError(f"FAISS could not train {factory!r} on {len(rows)} vectors: {faiss_message(error)} "
                             "(use fewer clusters, or a larger --train-size/corpus)") from None
    for start in tqdm(range(0, n, ADD_BATCH), desc="faiss add", unit="batch", disable=not progress):
        index.add(np.ascontiguousarray(vectors[start:start + ADD_BATCH], dtype=np.float32))
    return index


def save_faiss(index: Any, path: Path) -> None:
    import faiss

    faiss.write_index(to_cpu(index), str(path))
