"""FAISS indexes from any ``index_factory`` string, inner product, on the GPU when faiss-gpu and a GPU are there.

FAISS ids are row numbers of the embedding matrix; the string ids live in a sidecar file (see
:mod:`retr.indexing.dense`). Indexes that need training (IVF, PQ, ...) are trained on a seeded sample.
``search_params`` is a FAISS ParameterSpace string ("nprobe=16", "efSearch=128") applied before searching.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

ADD_BATCH = 65536


def gpu_count() -> int:
    import faiss

    return faiss.get_num_gpus() if hasattr(faiss, "StandardGpuResources") else 0


def use_gpu(gpu: bool | None) -> bool:
    """``None`` = use a GPU when faiss-gpu sees one."""
    available = gpu_count() > 0
    if gpu and not available:
        raise ValueError("a FAISS GPU index was asked for, but faiss-gpu or a GPU is missing")
    return available if gpu is None else bool(gpu)


def _to_gpu(index: Any) -> Any:
    """The GPU version of ``index`` when FAISS has one for its type (HNSW has none: it stays on the CPU)."""
    import faiss

    try:
        options = faiss.GpuMultipleClonerOptions()
        options.shard = True
        return faiss.index_cpu_to_all_gpus(index, co=options)
    except (RuntimeError, AttributeError):
        return index


def to_cpu(index: Any) -> Any:
    import faiss

    return faiss.index_gpu_to_cpu(index) if "Gpu" in type(index).__name__ else index


def build_faiss(vectors: np.ndarray, factory: str = "Flat", train_size: int = 65536, seed: int = 0,
                gpu: bool | None = None, progress: bool = False) -> Any:
    """An inner-product index of ``vectors`` (rows may be a memmap); trained on ``train_size`` sampled rows."""
    import faiss
    from tqdm.auto import tqdm

    n, dim = vectors.shape
    try:
        index = faiss.index_factory(dim, factory, faiss.METRIC_INNER_PRODUCT)
    except RuntimeError as error:
        raise ValueError(f"FAISS cannot build index_factory({factory!r}): {_faiss_message(error)}") from None
    if use_gpu(gpu):
        index = _to_gpu(index)
    if not index.is_trained:
        rows = np.sort(np.random.default_rng(seed).choice(n, size=min(train_size, n), replace=False))
        try:
            index.train(np.ascontiguousarray(vectors[rows], dtype=np.float32))
        except RuntimeError as error:
            raise ValueError(f"FAISS could not train {factory!r} on {len(rows)} vectors: {_faiss_message(error)} "
                             "(use fewer clusters, or a larger --train-size/corpus)") from None
    for start in tqdm(range(0, n, ADD_BATCH), desc="faiss add", unit="batch", disable=not progress):
        index.add(np.ascontiguousarray(vectors[start:start + ADD_BATCH], dtype=np.float32))
    return index


def _faiss_message(error: Exception) -> str:
    """The meaningful line of a FAISS C++ exception (which carries a multi-line trace)."""
    lines = [line.strip() for line in str(error).splitlines() if line.strip()]
    useful = [line for line in lines if line.lower().startswith("error") or "Error" in line]
    return (useful or lines or [type(error).__name__])[-1]


def save_faiss(index: Any, path: Path) -> None:
    import faiss

    faiss.write_index(to_cpu(index), str(path))


def load_faiss(path: Path, gpu: bool | None = None, search_params: str = "") -> Any:
    import faiss

    index = faiss.read_index(str(path))
    if use_gpu(gpu):
        index = _to_gpu(index)
    if search_params:
        set_search_params(index, search_params)
    return index


def set_search_params(index: Any, params: str) -> None:
    """Apply a ParameterSpace string such as "nprobe=16" or "efSearch=128,nprobe=8"."""
    import faiss

    space = faiss.GpuParameterSpace() if "Gpu" in type(index).__name__ else faiss.ParameterSpace()
    try:
        space.set_index_parameters(index, params)
    except RuntimeError as error:
        raise ValueError(f"FAISS search parameters {params!r}: {_faiss_message(error)}") from None


def search_faiss(index: Any, queries: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """(scores, rows) [n, k]; rows are -1 where fewer than ``k`` results exist."""
    k = max(1, min(k, index.ntotal))
    return index.search(np.ascontiguousarray(queries, dtype=np.float32), k)
