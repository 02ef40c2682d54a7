"""FAISS search vs a NumPy matrix product, and IVF / HNSW recall@10 against exact (Flat) search.

Real embeddings: the vectors of a dense-index artifact (``--index``, e.g. MiniLM on SciFact built by
``retr index --encoder minilm``); queries are encoded with that index's encoder from the dataset's test queries
(``--queries``), or are held-out corpus vectors when ``--queries`` is not given. Every ratio is measured in this
run against the named baseline (NumPy ``Q @ D.T`` + ``argpartition``; FAISS Flat for recall).

    python bench/bench_faiss.py --index runs/minilm-scifact --queries scifact --threads 1
"""

from __future__ import annotations

import argparse
import time

import numpy as np


def numpy_topk(queries: np.ndarray, docs: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    scores = queries @ docs.T
    top = np.argpartition(-scores, k - 1, axis=1)[:, :k]
    top_scores = np.take_along_axis(scores, top, axis=1)
    order = np.argsort(-top_scores, axis=1, kind="stable")
    return np.take_along_axis(top_scores, order, axis=1), np.take_along_axis(top, order, axis=1)


def best_of(repeats: int, fn) -> tuple[float, object]:
    best, result = float("inf"), None
    for _ in range(repeats):
        start = time.perf_counter()
        result = fn()
        best = min(best, time.perf_counter() - start)
    return best, result


def recall_at(found: np.ndarray, exact: np.ndarray, k: int) -> float:
    return float(np.mean([len(set(f[:k]) & set(e[:k])) / k for f, e in zip(found, exact)]))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--index", required=True, help="a dense-index artifact (its embeddings are used)")
    parser.add_argument("--queries", default=None, help="dataset spec whose test queries are encoded")
    parser.add_argument("--k", type=int, default=10)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()

    import faiss
    import torch

    from retr.indexing.dense import load_embeddings
    from retr.indexing.faiss_index import build_faiss
    from retr.retrieval.dense_layout import set_search_params

    faiss.omp_set_num_threads(args.threads)
    torch.set_num_threads(args.threads)
    _, docs = load_embeddings(args.index)
    if args.queries:
        from retr.data.artifacts import open_artifact
        from retr.data.datasets import Dataset
        from retr.retrieval.dense_search import check_encoder, encoder_record
        from retr.retrieval.encoder import load_encoder

        artifact = open_artifact(args.index, kind="dense-index")
        encoder = load_encoder(check_encoder(artifact), **encoder_record(artifact)["options"])
        queries = encoder.encode_queries(list(Dataset(args.queries).queries("test").values()))
    else:
        rng = np.random.default_rng(0)
        queries = docs[rng.choice(len(docs), size=min(300, len(docs)), replace=False)]
    n, dim = docs.shape
    print(f"corpus {n} x {dim} float32, {len(queries)} queries, k={args.k}, threads={args.threads}")

    flat = build_faiss(docs, "Flat")
    t_numpy, (np_scores, np_rows) = best_of(args.repeats, lambda: numpy_topk(queries, docs, args.k))
    t_flat, (flat_scores, flat_rows) = best_of(args.repeats, lambda: flat.search(queries, args.k))
    agree = recall_at(flat_rows, np_rows, args.k)
    print(f"numpy matmul+argpartition: {t_numpy * 1e3:8.2f} ms  ({len(queries) / t_numpy:,.0f} q/s)  [baseline]")
    print(f"faiss Flat (IP)          : {t_flat * 1e3:8.2f} ms  ({len(queries) / t_flat:,.0f} q/s)  "
          f"speed x{t_numpy / t_flat:.2f} vs numpy, top-{args.k} overlap with numpy {agree:.4f}, "
          f"max |score diff| {np.abs(flat_scores - np_scores).max():.2e}")

    nlist = max(4, int(4 * np.sqrt(n)))
    candidates = [(f"IVF{nlist},Flat", [f"nprobe={p}" for p in (1, 4, 16, 64) if p <= nlist]),
                  ("HNSW32", [f"efSearch={e}" for e in (16, 64, 256)]),
                  (f"IVF{nlist},PQ{dim // 8}", ["nprobe=16"])]
    for factory, settings in candidates:
        start = time.perf_counter()
        try:
            index = build_faiss(docs, factory, train_size=n, seed=0)
        except ValueError as error:
            print(f"{factory:>18}: skipped ({error})")
            continue
        build = time.perf_counter() - start
        for params in settings:
            set_search_params(index, params)
            t, (_, rows) = best_of(args.repeats, lambda: index.search(queries, args.k))
            print(f"{factory:>18} {params:<13}: recall@{args.k} vs Flat {recall_at(rows, flat_rows, args.k):.4f}  "
                  f"search {t * 1e3:8.2f} ms (x{t_flat / t:.2f} vs Flat)  build {build:.1f}s")


if __name__ == "__main__":
    main()
