"""Hard-negative mining with BM25: a "training-set" artifact (``train.jsonl`` + ``bm25.trec``).

For each training query: BM25 top-k over the corpus (Lucene index built once and cached, see
:func:`retr.indexing.bm25.ensure_bm25_index`), judged positives removed, then ``negatives`` documents sampled
without replacement from the hits ranked ``rank_min``..``rank_max`` (1-based, inclusive; the very top ranks are
skipped because unjudged relevant documents crowd there). The sample uses a random generator seeded by
``(seed, query id)``, so a query's negatives do not depend on which other queries are mined, and the same config
gives a byte-identical ``train.jsonl``.

``max_negative_ratio`` (NV-Retriever's TopK-PercPos; sentence-transformers' ``relative_margin`` is 1 minus it) drops
candidates scoring above that fraction of the best judged positive's BM25 score (e.g. 0.95): such near-duplicates
of a positive are often unjudged positives. A query whose positives are all outside the top k has no positive
score to compare with; its window is left unfiltered and the manifest counts such queries.

Queries are left out (and counted in the manifest metrics) when none of their judged positives is in the corpus,
or when the window holds fewer than ``negatives`` non-positive hits. Search runs in batches of queries whose hits
go straight to ``bm25.trec``; memory keeps only the sampled negatives, and one corpus pass fetches their texts.
"""

from __future__ import annotations

import json
import random
import shutil
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tqdm import tqdm

from retr.data.options import option
from retr.data.artifacts import Artifact, ArtifactWriter, config_dict
from retr.data.datasets import Dataset, Doc
from retr.data.errors import DataError
from retr.data.trec import positives, write_run
from retr.indexing.bm25 import ensure_bm25_index
from retr.retrieval.bm25_search import BM25Searcher
from retr.retrieval.lucene import engine_info
from retr.retrieval.search import MAX_K

KIND = "training-set"
TRAIN_FILE = "train.jsonl"
RUN_FILE = "bm25.trec"


@dataclass
class MineConfig:
    dataset: str = option("scifact", "Dataset spec with corpus, queries and qrels: a name under the data dir, a "
                          "BEIR/MS MARCO dir or irds:<id>")
    split: str = option("train", "Split whose queries and qrels are mined")
    out: Path = option(Path("runs/mine"), "Output training-set artifact directory")
    k: int = option(100, "BM25 hits retrieved per query (also written to bm25.trec)")
    k1: float = option(0.9, "BM25 k1 (term-frequency saturation)")
    b: float = option(0.4, "BM25 b (document-length normalization)")
    negatives: int = option(8, "Hard negatives sampled per query")
    rank_min: int = option(10, "Best BM25 rank (1-based, inclusive) a negative may have")
    rank_max: int = option(100, "Worst BM25 rank (inclusive, <= k) a negative may have")
    min_relevance: int = option(1, "Smallest qrels grade that counts as a positive")
    max_negative_ratio: float | None = option(None, "Drop candidates scoring above this fraction of the best "
                                              "positive's BM25 score (TopK-PercPos, e.g. 0.95). Default: no filter")
    seed: int = option(0, "Seed of the per-query negative sampling")
    threads: int = option(2, "Lucene indexing and search threads")
    bm25_cache: Path | None = option(None, "Cache folder of BM25 indexes. Default: $RETR_HOME/bm25 or "
                                     "~/.cache/retr/bm25")
    overwrite: bool = option(False, "Replace an existing output artifact")

    def __post_init__(self) -> None:
        self.out = Path(self.out)
        self.bm25_cache = None if self.bm25_cache is None else Path(self.bm25_cache)
        if self.k > MAX_K or self.threads < 1:
            raise ValueError(f"k must be <= {MAX_K} and threads >= 1")
        if not 1 <= self.rank_min <= self.rank_max <= self.k:
            raise ValueError(
                "the negative window needs 1 <= rank_min <= rank_max <= k, "
                f"got {self.rank_min}..{self.rank_max} with k={self.k}"
            )
        if self.max_negative_ratio is not None and not 0 < self.max_negative_ratio <= 1:
            raise ValueError(f"max_negative_ratio must be in (0, 1], got {self.max_negative_ratio}")
        if self.negatives < 1:
            raise ValueError(f"negatives must be >= 1, got {self.negatives}")
        if self.negatives > self.rank_max - self.rank_min + 1:
            raise ValueError(
                f"{self.negatives} negatives cannot come from the {self.rank_max - self.rank_min + 1} ranks "
                f"{self.rank_min}..{self.rank_max}; widen the window or ask for fewer"
            )


@dataclass(frozen=True)
class Hit:
    id: str
    rank: int
    score: float


def ranked(hits: dict[str, float]) -> list[Hit]:
    """Hits by score descending then docid: the order (and the ranks) of the TREC run file."""
    order = sorted(hits.items(), key=lambda item: (-item[1], item[0]))
    return [Hit(doc_id, rank, score) for rank, (doc_id, score) in enumerate(order, start=1)]


def sample_negatives(hits: list[Hit], judged: set[str], cfg: MineConfig, query_id: str) -> list[Hit] | None:
    """``cfg.negatives`` hits of the rank window that are not judged positives (nor, with ``max_negative_ratio``,
    scored above that fraction of the best positive's score), by rank; None if too few."""
    window = [h for h in hits if cfg.rank_min <= h.rank <= cfg.rank_max and h.id not in judged]
    ceiling = negative_ceiling(hits, judged, cfg.max_negative_ratio)
    if ceiling is not None:
        window = [h for h in window if h.score <= ceiling]
    if len(window) < cfg.negatives:
        return None
    rng = random.Random(f"{cfg.seed}:{query_id}")  # str seeds hash with SHA-512: stable across processes
    return sorted(rng.sample(window, cfg.negatives), key=lambda h: h.rank)


def negative_ceiling(hits: list[Hit], judged: set[str], ratio: float | None) -> float | None:
    """The highest score a negative may have: ``ratio`` x the best judged positive's score among the hits."""
    scores = [h.score for h in hits if h.id in judged]
    return ratio * max(scores) if ratio is not None and scores else None


def mine(cfg: MineConfig) -> Path:
    """Mine BM25 hard negatives for ``cfg.split`` of ``cfg.dataset``; returns the training-set artifact path."""
    dataset = Dataset(cfg.dataset)
    queries = dataset.queries(cfg.split)
    judged = {qid: set(docs) for qid, docs in positives(dataset.qrels(cfg.split), cfg.min_relevance).items()}
    config = config_dict(cfg)

    started = time.perf_counter()
    index = ensure_bm25_index(cfg.dataset, cfg.bm25_cache)
    index_seconds = time.perf_counter() - started
    inputs = [index, dataset.as_input(cfg.split)]
    with ArtifactWriter(cfg.out, KIND, config, inputs, overwrite=cfg.overwrite) as writer:
        started = time.perf_counter()
        picked, in_top_k, unfiltered = _search_and_sample(index, queries, judged, cfg, writer.dir / RUN_FILE)
        search_seconds = time.perf_counter() - started
        wanted = {h.id for hits in picked.values() for h in hits or ()}
        wanted |= {doc_id for qid in queries for doc_id in judged.get(qid, ())}
        docs = _collect_docs(dataset, wanted)

        stats: dict[str, Any] = {"queries": len(queries)}
        stats.update(_write_training_set(writer.dir / TRAIN_FILE, queries, judged, picked, docs))
        if stats["training_queries"] == 0:
            raise DataError(f"{cfg.dataset}: no training query kept ({stats}); check the split's qrels and the "
                            "negative window")
        judged_total = sum(len(judged.get(qid, ())) for qid in queries)
        stats.update(
            negatives_per_query=cfg.negatives,
            ratio_filter_without_positive_score=unfiltered if cfg.max_negative_ratio is not None else None,
            judged_positives=judged_total,
            positives_in_bm25_top_k=round(in_top_k / judged_total, 4) if judged_total else None,
            engine=engine_info(),
            index_build_seconds=index.manifest.get("timing", {}).get("seconds"),
        )
        writer.metrics.update(stats)
        writer.timing.update(
            index_seconds=round(index_seconds, 3),
            search_seconds=round(search_seconds, 3),
            search_queries_per_s=round(len(queries) / max(search_seconds, 1e-9), 1),
        )
    return cfg.out


def _search_and_sample(
    index: Artifact, queries: dict[str, str], judged: dict[str, set[str]], cfg: MineConfig, run_file: Path
) -> tuple[dict[str, list[Hit] | None], int, int]:
    """BM25 in batches of queries: each batch's hits are appended to the TREC run file and sampled, then dropped,
    so memory holds only the sampled negatives. Returns them, the number of judged positives in the top k and the
    number of queries the ratio filter could not apply to (no positive in the top k)."""
    picked: dict[str, list[Hit] | None] = {}
    in_top_k = unfiltered = 0
    part = run_file.with_name("_batch.trec")
    searcher = BM25Searcher(index, k1=cfg.k1, b=cfg.b, threads=cfg.threads)
    try:
        with open(run_file, "wb") as out:
            for batch in searcher.iter_search(queries, k=cfg.k, progress=True):
                write_run(part, batch, tag="bm25")
                with open(part, "rb") as lines:
                    shutil.copyfileobj(lines, out)
                for qid, hits in batch.items():
                    found = len(judged.get(qid, set()) & hits.keys())
                    in_top_k += found
                    unfiltered += cfg.max_negative_ratio is not None and not found
                    picked[qid] = sample_negatives(ranked(hits), judged.get(qid, set()), cfg, qid)
    finally:
        searcher.close()
        part.unlink(missing_ok=True)
    return picked, in_top_k, unfiltered


def _collect_docs(dataset: Dataset, wanted: set[str]) -> dict[str, Doc]:
    """One streamed pass over the corpus, keeping only the wanted documents."""
    docs: dict[str, Doc] = {}
    for doc in tqdm(dataset.corpus(), desc="mine corpus", unit=" docs"):
        if doc.id in wanted:
            docs[doc.id] = doc
    return docs


def _write_training_set(
    path: Path,
    queries: dict[str, str],
    judged: dict[str, set[str]],
    picked: dict[str, list[Hit] | None],
    docs: dict[str, Doc],
) -> dict[str, Any]:
    """Write one JSON line per kept query; returns the counts of kept and left-out queries."""
    emitted = without_positive = short = missing_positives = 0
    with open(path, "w", encoding="utf-8") as out:
        for qid, text in queries.items():  # the queries file's order
            judged_ids = sorted(judged.get(qid, ()))
            found = [docs[d] for d in judged_ids if d in docs]
            missing_positives += len(judged_ids) - len(found)
            if not found:
                without_positive += 1
                continue
            if picked[qid] is None:
                short += 1
                continue
            negatives = []
            for hit in picked[qid] or ():
                if hit.id not in docs:
                    raise DataError(f"{hit.id}: BM25 returned a document that is not in the corpus; rebuild the index")
                doc = docs[hit.id]
                negatives.append(
                    {"id": doc.id, "title": doc.title, "text": doc.text, "rank": hit.rank, "score": hit.score}
                )
            record = {
                "query_id": qid,
                "query": text,
                "positives": [{"id": d.id, "title": d.title, "text": d.text} for d in found],
                "negatives": negatives,
            }
            out.write(json.dumps(record, ensure_ascii=False) + "\n")
            emitted += 1
    return {
        "training_queries": emitted,
        "queries_without_positive": without_positive,
        "queries_short_of_negatives": short,
        "positives_missing_from_corpus": missing_positives,
    }
