"""FAISS indexes from any ``index_factory`` string, inner product, on the GPU when faiss-gpu and a GPU are there.

Indexes that need training (IVF, PQ, SQ8, ...) are trained on a seeded sample. A ``precision`` other than fp32
changes the factory's flat storage (:func:`faiss_factory`). Loading and searching an index is the reading side,
owned by :mod:`retr.retrieval.dense_layout`.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import numpy as np

from retr.data.errors import UsageError
from retr.retrieval.dense_layout import PRECISIONS, binarize, faiss_message, is_binary, storage, to_cpu, to_gpu, use_gpu

ADD_BATCH = 65536
SCALAR_QUANTISER = {"fp16": "SQfp16", "int8": "SQ8"}


def faiss_factory(factory: str, precision: str = "fp32", dim: int | None = None) -> str:
    """The index_factory string that stores ``factory``'s vectors at ``precision``; for a pair that
    makes no sense, a UsageError (a factory with its own encoding, PQ or SQ, at a lower precision; binary but dim % 8).

    fp16 / int8: the flat storage becomes FAISS's scalar quantiser (Flat -> SQfp16 / SQ8, IVF1024,Flat ->
    IVF1024,SQ8, HNSW32 -> HNSW32,SQ8). binary: Flat -> BFlat, IVFn,Flat -> BIVFn, HNSWm -> BHNSWm, for
    :func:`faiss.index_binary_factory` (Hamming distance over sign bits).
    """
    if precision not in PRECISIONS:
        raise UsageError(f"unknown precision {precision!r}; choose one of {', '.join(PRECISIONS)}")
    if precision == "fp32":
        return factory
    plain = factory.replace(" ", "")
    if storage(plain) != "Flat":
        raise UsageError(f"precision {precision} replaces the Flat storage of the factory, but {factory!r} stores "
                         f"{storage(plain)}; use precision fp32 with it, or a Flat/IVFn,Flat/HNSWm factory")
    if precision in SCALAR_QUANTISER:
        code = SCALAR_QUANTISER[precision]
        return plain[:-len("Flat")] + code if plain.endswith("Flat") else f"{plain},{code}"
    if dim is not None and dim % 8:
        raise UsageError(f"precision binary packs 8 dimensions to a byte; the encoder's {dim} is not a multiple of 8")
    match = re.fullmatch(r"(?:(IVF\d+),Flat|(HNSW\d+)|Flat)", plain)
    if not match:
        raise UsageError(f"precision binary takes factory Flat, IVFn,Flat or HNSWm (FAISS binary indexes), "
                         f"not {factory!r}")
    return "B" + (match.group(1) or match.group(2) or "Flat")


def build_faiss(vectors: np.ndarray, factory: str = "Flat", train_size: int = 65536, seed: int = 0,
                gpu: bool | None = None, progress: bool = False, precision: str = "fp32") -> Any:
    """An inner-product index of ``vectors`` (rows may be a memmap) at ``precision`` (see :func:`faiss_factory`);
    trained on ``train_size`` sampled rows. A binary index stays on the CPU."""
    import faiss
    from tqdm.auto import tqdm

    n, dim = vectors.shape
    spec = faiss_factory(factory, precision, dim)
    binary = precision == "binary"
    try:
        index = faiss.index_binary_factory(dim, spec) if binary else \
            faiss.index_factory(dim, spec, faiss.METRIC_INNER_PRODUCT)
    except RuntimeError as error:
        raise ValueError(f"FAISS cannot build index_factory({spec!r}): {faiss_message(error)}") from None
    prepare = binarize if binary else (lambda rows: np.ascontiguousarray(rows, dtype=np.float32))
    if use_gpu(gpu) and not binary:
        index = to_gpu(index)
    if not index.is_trained:
        rows = np.sort(np.random.default_rng(seed).choice(n, size=min(train_size, n), replace=False))
        try:
            index.train(prepare(vectors[rows]))
        except RuntimeError as error:
            raise ValueError(f"FAISS could not train {spec!r} on {len(rows)} vectors: {faiss_message(error)} "
                             "(use fewer clusters, or a larger --train-size/corpus)") from None
    for start in tqdm(range(0, n, ADD_BATCH), desc="faiss add", unit="batch", disable=not progress):
        index.add(prepare(vectors[start:start + ADD_BATCH]))
    return index


def save_faiss(index: Any, path: Path) -> None:
    import faiss

    if is_binary(index):
        faiss.write_index_binary(index, str(path))
    else:
        faiss.write_index(to_cpu(index), str(path))
