"""What search needs to read a dense index: the artifact's layout names and FAISS loading and searching.

Retrieval owns the reading side (as :mod:`retr.retrieval.bm25_search` does for BM25); :mod:`retr.indexing.dense`
writes this layout and imports the names from here, so imports run one way: indexing -> retrieval.

A ``dense-index`` holds ``embeddings/`` (the float32 chunks), ``ids.txt`` (document ids in FAISS row order) and
``index.faiss``. FAISS ids are row numbers; ``search_params`` is a FAISS ParameterSpace string ("nprobe=16").
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

KIND = "dense-index"
SHARD_KIND = "dense-shard"
EMBEDDINGS = "embeddings"
IDS = "ids.txt"
INDEX = "index.faiss"


def gpu_count() -> int:
    import faiss

    return faiss.get_num_gpus() if hasattr(faiss, "StandardGpuResources") else 0


def use_gpu(gpu: bool | None) -> bool:
    """``None`` = use a GPU when faiss-gpu sees one."""
    available = gpu_count() > 0
    if gpu and not available:
        raise ValueError("a FAISS GPU index was asked for, but faiss-gpu or a GPU is missing")
    return available if gpu is None else bool(gpu)


def to_gpu(index: Any) -> Any:
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


def faiss_message(error: Exception) -> str:
    """The meaningful line of a FAISS C++ exception (which carries a multi-line trace)."""
    lines = [line.strip() for line in str(error).splitlines() if line.strip()]
    useful = [line for line in lines if line.lower().startswith("error") or "Error" in line]
    return (useful or lines or [type(error).__name__])[-1]


def load_faiss(path: Path, gpu: bool | None = None, search_params: str = "") -> Any:
    import faiss

    index = faiss.read_index(str(path))
    if use_gpu(gpu):
        index = to_gpu(index)
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
        raise ValueError(f"FAISS search parameters {params!r}: {faiss_message(error)}") from None


def search_faiss(index: Any, queries: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """(scores, rows) [n, k]; rows are -1 where fewer than ``k`` results exist."""
    k = max(1, min(k, index.ntotal))
    return index.search(np.ascontiguousarray(queries, dtype=np.float32), k)
