"""BM25 retrieval throughput of ``retr mine`` against the ``bm25s`` library, same SciFact train queries, one run.

    .venv/bin/python bench/bench_mine.py [--dataset scifact] [--split train] [--k 100] [--repeats 3]

Measured, each side in this process:

- index build: retr = ``build_bm25_index`` (corpus -> JsonCollection -> Anserini, 2 threads) into a tmp dir;
  bm25s = tokenize (English stopwords; no stemmer, PyStemmer is not installed) + ``BM25.index``.
- retrieval (what ``mine`` spends on BM25): top-k for every query, median wall time of ``--repeats`` runs after
  one warm-up run (the two Lucene contenders interleaved). retr = ``search_bm25`` (Anserini batch search, hits
  handed over as one JSON string per batch); also Pyserini's own ``LuceneSearcher.batch_search`` reading every
  hit's docid and score through its Python proxy objects (the path ``search_bm25`` replaces); bm25s = tokenize
  queries + ``retrieve(n_threads=threads)``.
- quality, so the speeds compare like with like: share of judged positives found in the top k.

Prints a table (wall and CPU seconds) and the ratios retr / bm25s and retr / Pyserini-objects in queries per second.
"""

from __future__ import annotations

import argparse
import logging
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Callable

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout without installing retr


def timed(fns: dict[str, Callable[[], object]], repeats: int) -> dict[str, tuple[float, float, object]]:
    """Median wall time, median CPU time of this process (all its threads, JVM included) and the last result of
    each function; one warm-up call each (JIT, caches), then the timed calls interleaved so that load from other
    processes and JVM warm-up hit every contender alike. CPU time is the steadier figure on a shared machine."""
    results = {name: fn() for name, fn in fns.items()}
    wall: dict[str, list[float]] = {name: [] for name in fns}
    cpu: dict[str, list[float]] = {name: [] for name in fns}
    for _ in range(repeats):
        for name, fn in fns.items():
            started, started_cpu = time.perf_counter(), time.process_time()
            results[name] = fn()
            wall[name].append(time.perf_counter() - started)
            cpu[name].append(time.process_time() - started_cpu)
    return {name: (statistics.median(wall[name]), statistics.median(cpu[name]), results[name]) for name in fns}


def found(run: dict[str, dict[str, float]], judged: dict[str, set[str]]) -> float:
    total = sum(len(docs) for docs in judged.values())
    return sum(1 for qid, docs in judged.items() for d in docs if d in run.get(qid, {})) / max(total, 1)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--dataset", default="scifact", help="dataset spec (default: scifact under the data dir)")
    parser.add_argument("--split", default="train", help="query split (default: train)")
    parser.add_argument("--k", type=int, default=100, help="hits per query (default: 100, as mine)")
    parser.add_argument("--threads", type=int, default=2, help="threads for both libraries (default: 2)")
    parser.add_argument("--repeats", type=int, default=3, help="timed retrieval runs, median reported (default: 3)")
    args = parser.parse_args()

    import bm25s

    logging.getLogger("bm25s").setLevel(logging.WARNING)

    from retr.data.artifacts import open_artifact
    from retr.data.datasets import Dataset
    from retr.data.trec import positives
    from retr.indexing.bm25 import BM25IndexConfig, build_bm25_index
    from retr.retrieval.bm25_search import BM25Searcher
    from retr.retrieval.lucene import engine_info, init_pyserini, jclass

    dataset = Dataset(args.dataset)
    queries = dataset.queries(args.split)
    judged = {q: set(d) for q, d in positives(dataset.qrels(args.split)).items() if q in queries}
    docs = list(dataset.corpus())
    k, n = args.k, len(queries)

    jclass("java.lang.Object")  # start the JVM outside the timed index build
    with tempfile.TemporaryDirectory() as tmp:
        started = time.perf_counter()
        cfg = BM25IndexConfig(corpus=args.dataset, out=Path(tmp) / "bm25", threads=args.threads)
        index = open_artifact(build_bm25_index(cfg))
        retr_index_s = time.perf_counter() - started

        searcher = BM25Searcher(index, threads=args.threads)
        init_pyserini()
        from pyserini.search.lucene import LuceneSearcher  # imports torch & co. (not timed)

        lucene = LuceneSearcher(str(index.path / "lucene"))
        lucene.set_bm25(0.9, 0.4)
        qids, texts = list(queries), list(queries.values())

        def pyserini_objects() -> dict[str, dict[str, float]]:
            hits = lucene.batch_search(texts, qids, k=k, threads=args.threads)
            return {qid: {h.docid: h.score for h in results} for qid, results in hits.items()}

        contenders = {"retr": lambda: searcher.search(queries, k=k), "pyserini": pyserini_objects}
        measured = timed(contenders, args.repeats)
        (retr_s, retr_cpu, retr_run), (pyserini_s, pyserini_cpu, pyserini_run) = measured["retr"], measured["pyserini"]

    started = time.perf_counter()
    corpus_tokens = bm25s.tokenize([d.contents for d in docs], stopwords="en", show_progress=False)
    model = bm25s.BM25(k1=0.9, b=0.4, method="lucene")
    model.index(corpus_tokens, show_progress=False)
    bm25s_index_s = time.perf_counter() - started

    def bm25s_search() -> dict[str, dict[str, float]]:
        tokens = bm25s.tokenize(texts, stopwords="en", return_ids=False, show_progress=False)
        ids, scores = model.retrieve(tokens, k=min(k, len(docs)), n_threads=args.threads, show_progress=False)
        return {qid: {docs[i].id: float(s) for i, s in zip(row_ids, row_scores) if s > 0}
                for qid, row_ids, row_scores in zip(qids, ids, scores)}

    bm25s_s, bm25s_cpu, bm25s_run = timed({"bm25s": bm25s_search}, args.repeats)["bm25s"]

    engine = engine_info()
    print(f"{args.dataset} {args.split}: {n} queries, {len(docs)} docs, k={k}, threads={args.threads}, "
          f"median of {args.repeats} after a warm-up; Pyserini {engine['pyserini']} ({engine['anserini_jar']}, "
          f"Java {engine['java']}), bm25s {bm25s.__version__}")
    print(f"{'system':<44}{'index s':>9}{'search s':>10}{'queries/s':>11}{'cpu s':>8}{'positives@k':>13}")
    rows = [
        ("retr search_bm25 (Anserini, JSON hand-over)", retr_index_s, retr_s, retr_cpu, retr_run),
        ("Pyserini batch_search + Python hit objects", None, pyserini_s, pyserini_cpu, pyserini_run),
        ("bm25s (numpy, no stemmer)", bm25s_index_s, bm25s_s, bm25s_cpu, bm25s_run),
    ]
    for name, index_s, search_s, cpu_s, run in rows:
        index_cell = "(same)" if index_s is None else f"{index_s:.2f}"
        print(f"{name:<44}{index_cell:>9}{search_s:10.3f}{n / search_s:11.1f}{cpu_s:8.2f}{found(run, judged):13.4f}")
    print(f"ratio retr / bm25s, queries/s: {bm25s_s / retr_s:.2f}x wall, {bm25s_cpu / retr_cpu:.2f}x CPU   "
          f"(index build time retr / bm25s: {retr_index_s / bm25s_index_s:.2f}x)")
    print(f"ratio retr / Pyserini hit objects, queries/s: {pyserini_s / retr_s:.2f}x wall, "
          f"{pyserini_cpu / retr_cpu:.2f}x CPU")


if __name__ == "__main__":
    main()
