"""Index precision: nDCG@10 kept, index bytes and search time of fp16, int8 and binary indexes vs fp32.

The vectors of one dense-index artifact (e.g. MiniLM on SciFact, ``retr index --encoder minilm --corpus scifact``)
are indexed at each precision in this process (the corpus is encoded once), through the same code `retr index`
and `retr search` run (:func:`retr.indexing.faiss_index.build_faiss`, :func:`retr.retrieval.dense_layout.
search_vectors`, rescoring from the artifact's float32 chunks by memory map). The test queries are encoded once
with the index's encoder; nDCG@10 and R@100 by ranx against the qrels. fp32 (Flat, exact) is the baseline of the
same run: "kept" = nDCG@10 / fp32's, top-10 = overlap with fp32's top-10. Search time excludes query encoding.

    python bench/bench_index_precision.py --index runs/minilm-scifact --queries scifact --k 1000 --threads 1
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import numpy as np

# (precision, rescore factor or None); fp32 first: the baseline
CHOICES = [("fp32", None), ("fp16", None), ("int8", None), ("int8", 4), ("binary", None), ("binary", 4),
           ("binary", 10)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--index", required=True, help="a dense-index artifact (its float32 vectors are used)")
    parser.add_argument("--queries", default="scifact", help="dataset spec with queries and qrels of --split")
    parser.add_argument("--split", default="test")
    parser.add_argument("--k", type=int, default=1000, help="hits per query, as `retr search --k` (default 1000)")
    parser.add_argument("--repeats", type=int, default=3, help="search time: best of this many runs")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--json", type=Path, default=None, help="also write the rows here")
    args = parser.parse_args()

    import faiss
    import torch
    from ranx import Qrels, Run, evaluate

    from retr.data.artifacts import open_artifact
    from retr.data.datasets import Dataset
    from retr.indexing.dense import load_embeddings
    from retr.indexing.faiss_index import build_faiss, faiss_factory, save_faiss
    from retr.retrieval.dense_layout import EMBEDDINGS, FullVectors, load_faiss, search_vectors
    from retr.retrieval.dense_search import check_encoder, encoder_record
    from retr.retrieval.encoder import load_encoder

    faiss.omp_set_num_threads(args.threads)
    torch.set_num_threads(args.threads)
    try:  # rescoring's matrix-vector products run in NumPy's BLAS: the same thread budget
        from threadpoolctl import threadpool_limits

        threadpool_limits(args.threads)
    except ImportError:
        print("threadpoolctl missing: NumPy's BLAS picks its own thread count")
    artifact = open_artifact(args.index, kind="dense-index")
    ids, docs = load_embeddings(artifact)
    full = FullVectors(artifact.path / EMBEDDINGS, len(ids))
    dataset = Dataset(args.queries)
    queries, qrels = dataset.queries(args.split), dataset.qrels(args.split)
    encoder = load_encoder(check_encoder(artifact), **encoder_record(artifact)["options"])
    qids = list(queries)
    vectors = encoder.encode_queries([queries[q] for q in qids])
    print(f"corpus {len(ids)} x {docs.shape[1]} float32 ({artifact.path}), {len(qids)} {args.split} queries of "
          f"{args.queries}, k={args.k}, threads={args.threads}, search time best of {args.repeats}")

    rows_out, baseline, fp32_top10 = [], None, None
    with tempfile.TemporaryDirectory() as tmp:
        for precision, factor in CHOICES:
            path = Path(tmp) / f"{precision}.faiss"
            if not path.exists():
                start = time.perf_counter()
                built = build_faiss(docs, "Flat", train_size=len(ids), precision=precision)
                build_s = time.perf_counter() - start
                save_faiss(built, path)
            index = load_faiss(path, binary=precision == "binary")
            times = []
            for _ in range(args.repeats):
                start = time.perf_counter()
                scores, rows = search_vectors(index, vectors, args.k, full if factor else None, factor or 1)
                times.append(time.perf_counter() - start)
            run = {qid: {ids[r]: float(s) for s, r in zip(row_scores, row_ids) if r >= 0}
                   for qid, row_scores, row_ids in zip(qids, scores, rows)}
            metrics = evaluate(Qrels(qrels), Run(run), ["ndcg@10", "recall@100"])
            top10 = [set(r[:10]) for r in rows]
            if baseline is None:
                baseline, fp32_top10 = metrics["ndcg@10"], top10
            row = {"precision": precision, "faiss_factory": faiss_factory("Flat", precision),
                   "rescore_factor": factor, "ndcg@10": round(metrics["ndcg@10"], 4),
                   "recall@100": round(metrics["recall@100"], 4),
                   "ndcg_kept": round(metrics["ndcg@10"] / baseline, 4),
                   "top10_overlap_fp32": round(float(np.mean([len(a & b) / 10 for a, b in zip(top10, fp32_top10)])), 4),
                   "index_bytes": path.stat().st_size, "search_ms_per_query": round(min(times) / len(qids) * 1e3, 3),
                   "build_s": round(build_s, 2)}
            rows_out.append(row)
            rescore = f"rescore x{factor}" if factor else "no rescore"
            print(f"{precision:>6} {row['faiss_factory']:<7} {rescore:<11}: nDCG@10 {row['ndcg@10']:.4f} "
                  f"(kept {row['ndcg_kept']:.4f}{' baseline' if len(rows_out) == 1 else ''})  "
                  f"R@100 {row['recall@100']:.4f}  top-10 vs fp32 {row['top10_overlap_fp32']:.3f}  "
                  f"index {row['index_bytes']:>9,} B (x{rows_out[0]['index_bytes'] / row['index_bytes']:.1f} "
                  f"smaller)  search {row['search_ms_per_query']:.3f} ms/query "
                  f"(x{rows_out[0]['search_ms_per_query'] / row['search_ms_per_query']:.2f} vs fp32)")
    print(f"full float32 vectors kept for rescoring: {docs.nbytes:,} B (embeddings/, read by memory map)")
    if args.json:
        args.json.write_text(json.dumps({"index": str(artifact.path), "k": args.k, "threads": args.threads,
                                         "queries": len(qids), "rows": rows_out}, indent=1) + "\n")


if __name__ == "__main__":
    main()
