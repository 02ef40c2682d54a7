"""What search needs to read a dense index: the artifact's layout names and FAISS loading and searching.

Retrieval owns the reading side (as :mod:`retr.retrieval.bm25_search` does for BM25); :mod:`retr.indexing.dense`
writes this layout and imports the names from here, so imports run one way: indexing -> retrieval.

A ``dense-index`` holds ``embeddings/`` (the float32 chunks), ``ids.txt`` (document ids in FAISS row order) and
``index.faiss``. FAISS ids are row numbers; ``search_params`` is a FAISS ParameterSpace string ("nprobe=16").

The index stores its vectors at a ``precision``: fp32 (as encoded), fp16 or int8 (FAISS scalar quantiser, in place
of the factory's ``Flat`` storage) or binary (sign bits, a FAISS binary index searched by Hamming distance). The
float32 chunks stay beside it, so a search can *rescore*: take ``k x factor`` candidates from the compact index
and re-rank them by the inner product with the full vectors, read by memory map (:class:`FullVectors`).
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import numpy as np

KIND = "dense-index"
SHARD_KIND = "dense-shard"
EMBEDDINGS = "embeddings"
IDS = "ids.txt"
INDEX = "index.faiss"
CHUNK_GLOB = "[0-9]" * 6 + ".npy"  # embeddings/NNNNNN.npy, in row order

PRECISIONS = ("fp32", "fp16", "int8", "binary")
RESCORED_BY_DEFAULT = ("int8", "binary")  # lossy enough that a search rescores unless told not to
RESCORE_FACTOR = 4  # candidates per kept hit (sentence-transformers' rescore_multiplier default)


def storage(factory: str) -> str:
    """The storage part of an index_factory string: "Flat" for Flat, IVF1024,Flat, PCA64,Flat and HNSW32 (whose
    storage is implicitly flat); the last component otherwise (PQ16, SQ8, ...)."""
    last = factory.replace(" ", "").split(",")[-1]
    return "Flat" if re.fullmatch(r"HNSW\d+(_Flat)?", last) else last


def exact_scores(factory: str, precision: str) -> bool:
    """Whether rescoring would change nothing: fp32 Flat or IVFn,Flat (no transform such as PCA before it) scores
    with the vectors as encoded, and the top k of its k x factor best are its k best. (HNSW may find other
    neighbours when asked for more, so it may be rescored.)"""
    plain = factory.replace(" ", "")
    return precision == "fp32" and bool(re.fullmatch(r"(IVF\d+(_HNSW\d+)?,)?Flat", plain))


def binarize(vectors: np.ndarray) -> np.ndarray:
    """Sign bits (x > 0), packed 8 to a byte: [n, dim / 8] uint8, as FAISS binary indexes take them."""
    return np.packbits(np.asarray(vectors) > 0, axis=1)


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


def is_binary(index: Any) -> bool:
    import faiss

    return isinstance(index, faiss.IndexBinary)


def load_faiss(path: Path, gpu: bool | None = None, search_params: str = "", binary: bool = False) -> Any:
    """A saved index; ``binary`` for one of sign bits (stays on the CPU)."""
    import faiss

    index = faiss.read_index_binary(str(path)) if binary else faiss.read_index(str(path))
    if use_gpu(gpu) and not binary:
        index = to_gpu(index)
    if search_params:
        set_search_params(index, search_params)
    return index


def set_search_params(index: Any, params: str) -> None:
    """Apply a ParameterSpace string such as "nprobe=16" or "efSearch=128,nprobe=8"."""
    import faiss

    if is_binary(index):
        _set_binary_params(index, params)
        return
    space = faiss.GpuParameterSpace() if "Gpu" in type(index).__name__ else faiss.ParameterSpace()
    try:
        space.set_index_parameters(index, params)
    except RuntimeError as error:
        raise ValueError(f"FAISS search parameters {params!r}: {faiss_message(error)}") from None


def _set_binary_params(index: Any, params: str) -> None:
    """nprobe (BIVF) and efSearch (BHNSW): ParameterSpace does not take binary indexes."""
    for item in filter(None, params.replace(" ", "").split(",")):
        name, _, value = item.partition("=")
        target = index.hnsw if name == "efSearch" and hasattr(index, "hnsw") else index
        if name not in ("nprobe", "efSearch") or not hasattr(target, name) or not value.isdigit():
            raise ValueError(f"FAISS search parameters {params!r}: {type(index).__name__} takes nprobe=N or "
                             "efSearch=N only")
        setattr(target, name, int(value))


def search_faiss(index: Any, queries: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """(scores, rows) [n, k], best first; rows are -1 where fewer than ``k`` results exist.

    A binary index compares sign bits: its score is ``dim - 2 x Hamming distance``, the inner product of the
    +-1 vectors, so that higher is better as for every other index."""
    k = max(1, min(k, index.ntotal))
    if is_binary(index):
        distances, rows = index.search(binarize(queries), k)
        return (index.d - 2 * distances).astype(np.float32), rows
    return index.search(np.ascontiguousarray(queries, dtype=np.float32), k)


class FullVectors:
    """The float32 vectors of a dense-index (its ``embeddings/`` chunks), memory-mapped, addressed by FAISS row."""

    def __init__(self, folder: Path, rows: int) -> None:
        paths = sorted(Path(folder).glob(CHUNK_GLOB))
        # plain ndarray views of the maps: indexing an np.memmap subclass costs more than the copy it makes
        self.chunks = [np.load(path, mmap_mode="r").view(np.ndarray) for path in paths]
        sizes = [len(chunk) for chunk in self.chunks]
        if sum(sizes) != rows:
            raise ValueError(f"{folder}: the chunks hold {sum(sizes)} vectors, the index {rows}")
        self.starts = np.cumsum([0] + sizes[:-1])

    def take(self, rows: np.ndarray) -> np.ndarray:
        """float32 [len(rows), dim] in the order of ``rows`` (all >= 0)."""
        rows = np.asarray(rows, dtype=np.int64)
        if len(self.chunks) == 1:
            return self.chunks[0][rows]
        chunk_of = np.searchsorted(self.starts, rows, side="right") - 1
        out = np.empty((len(rows), self.chunks[0].shape[1]), dtype=np.float32)
        for chunk in np.unique(chunk_of):
            mine = np.flatnonzero(chunk_of == chunk)
            out[mine] = self.chunks[chunk][rows[mine] - self.starts[chunk]]
        return out


def rescore(full: FullVectors, queries: np.ndarray, rows: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Re-rank each query's candidate ``rows`` by the inner product with the full vectors; the top ``k``.

    (scores, rows) [n, k] as :func:`search_faiss` gives them (-1 rows where fewer candidates exist)."""
    queries = np.asarray(queries, dtype=np.float32)
    width = min(k, rows.shape[1])
    out_scores = np.full((len(rows), width), -np.inf, dtype=np.float32)
    out_rows = np.full((len(rows), width), -1, dtype=np.int64)
    for i, (query, candidates) in enumerate(zip(queries, rows)):
        candidates = candidates[candidates >= 0]
        if not len(candidates):
            continue
        scores = full.take(candidates) @ query
        if len(scores) > width:  # the best ``width`` first, then only they are sorted
            best = np.argpartition(-scores, width - 1)[:width]
            order = best[np.argsort(-scores[best], kind="stable")]
        else:
            order = np.argsort(-scores, kind="stable")
        out_scores[i, :len(order)], out_rows[i, :len(order)] = scores[order], candidates[order]
    return out_scores, out_rows


def search_vectors(index: Any, queries: np.ndarray, k: int, full: FullVectors | None = None,
                   factor: int = RESCORE_FACTOR) -> tuple[np.ndarray, np.ndarray]:
    """Top ``k`` (scores, rows) of ``queries``; with ``full``, ``k x factor`` candidates rescored to the top ``k``."""
    if full is None:
        return search_faiss(index, queries, k)
    _, rows = search_faiss(index, queries, k * factor)
    return rescore(full, queries, rows, k)
