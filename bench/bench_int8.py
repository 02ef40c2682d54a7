"""Dynamic int8 vs fp32 on the CPU: encoding speed and nDCG@10 on a dataset's test split, one run each.

Both sides build a dense index with ``retr index`` code (``build_index``) on the same corpus and options, differing
only in ``quantize``; both are searched with their own encoder and scored with ranx. The baseline is fp32.
A sub-corpus keeps this affordable on a small CPU, e.g. the SciFact subset made by ``retr run``'s subset stage
(every judged test document + seeded distractors); scores on a sub-corpus compare only with each other.

    python bench/bench_int8.py --model minilm --corpus scifact --threads 1
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="minilm")
    parser.add_argument("--corpus", default="scifact", help="dataset spec with test queries and qrels")
    parser.add_argument("--max-passage-length", type=int, default=256)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--work", type=Path, default=None, help="where the two indexes go (default: a tmp dir)")
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args()

    import torch
    from ranx import Qrels, Run, evaluate

    from retr.data.artifacts import open_artifact
    from retr.data.datasets import Dataset
    from retr.indexing.dense import IndexConfig, build_index
    from retr.retrieval.dense_search import search_dense

    torch.set_num_threads(args.threads)
    work = args.work or Path(tempfile.mkdtemp(prefix="bench-int8-"))
    dataset = Dataset(args.corpus)
    queries, qrels = dataset.queries("test"), dataset.qrels("test")
    results = {}
    for quantize in (None, "int8"):
        name = quantize or "fp32"
        out = work / f"{args.model.replace('/', '_')}-{name}"
        if not (out / "manifest.json").is_file():
            build_index(IndexConfig(corpus=args.corpus, out=out, encoder=args.model, quantize=quantize,
                                    max_passage_length=args.max_passage_length, threads=args.threads))
        metrics = open_artifact(out).manifest["metrics"]
        start = time.perf_counter()
        run = search_dense(out, queries, k=100)
        search_seconds = time.perf_counter() - start
        scores = evaluate(Qrels(qrels), Run(run), ["ndcg@10", "recall@100"])
        results[name] = {"passages_per_s": metrics["passages_per_s"], "tokens_per_s": metrics["tokens_per_s"],
                         "encode_seconds": metrics["encode_seconds"], "docs": metrics["docs"],
                         "query_search_seconds": round(search_seconds, 2),
                         **{k: round(v, 4) for k, v in scores.items()}}
    fp32, int8 = results["fp32"], results["int8"]
    print(f"{args.model} on {args.corpus} ({fp32['docs']} docs, {len(queries)} test queries), "
          f"{args.threads} thread(s)")
    for name, r in results.items():
        print(f"{name:>5}: {r['tokens_per_s']:9.1f} tokens/s  {r['passages_per_s']:7.2f} passages/s  "
              f"nDCG@10 {r['ndcg@10']:.4f}  R@100 {r['recall@100']:.4f}  (encode {r['encode_seconds']:.0f}s)")
    print(f"int8 vs fp32 [baseline]: encoding speed x{int8['tokens_per_s'] / fp32['tokens_per_s']:.2f}, "
          f"nDCG@10 {int8['ndcg@10'] - fp32['ndcg@10']:+.4f}")
    if args.json:
        args.json.write_text(json.dumps(results, indent=2) + "\n")


if __name__ == "__main__":
    main()
