"""Hard-negative mining with BM25: a "training-set" artifact (``train.jsonl`` + ``bm25.trec``).

For each training query: BM25 top-k over the corpus (Lucene index built once and cached, see
:func:`retr.indexing.bm25.ensure_bm25_index`), judged positives removed, then ``negatives`` documents sampled
without replacement from the hits ranked ``rank_min``..``rank_max`` (1-based, inclusive; the very top ranks are
skipped because unjudged relevant documents crowd there). The sample uses a random generator seeded by
``(seed, query id)``, so a query's negatives do not depend on which other queries are mined, and the same config
gives a byte-identical ``train.jsonl``.

``max_queries`` mines a seeded random sample of the split's queries (e.g. 800 of NFCorpus' 2,590 train queries, so
that a CPU run sees all its training data); the manifest counts the split's queries and the sampled ones.
Queries are left out (and counted in the manifest metrics) when none of their judged positives is in the corpus,
or when the window holds fewer than ``negatives`` non-positive hits. Where the queries are corpus documents under
the same ids (ArguAna, Quora: the dataset's self-hit rule, as in ``retr search``), a query's own document is dropped
from its candidates before ranking (``bm25.trec`` keeps the raw hits; the manifest counts the drops).
Search runs in batches of queries whose hits go straight to ``bm25.trec``; memory keeps only the sampled
negatives, and one corpus pass fetches their texts.

Two levers on negative quality. ``max_negative_ratio`` is a positive-aware filter (NV-Retriever's TopK-PercPos;
sentence-transformers' ``relative_margin``): a candidate scoring above ``ratio`` x the best-scoring judged positive
of its query is dropped as a likely unjudged positive; queries whose positives are not in the top k have no
positive score and are left unfiltered (counted in the metrics). ``index`` re-mines with a trained dense model:
candidates come from that dense-index artifact (FAISS inner products, written to ``dense.trec``) instead of BM25,
and the index is recorded as an input of the training set.
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

from retr.data.artifacts import Artifact, ArtifactWriter, check_output, config_dict
from retr.data.options import include, included, option
from retr.data.datasets import Dataset, Doc
from retr.data.errors import DataError
from retr.data.trec import positives, write_run
from retr.indexing.bm25 import ensure_bm25_index
from retr.retrieval.bm25_search import BM25Params, BM25Searcher
from retr.retrieval.lucene import engine_info
from retr.retrieval.search import MAX_K

KIND = "training-set"
TRAIN_FILE = "train.jsonl"
RUN_FILE = "bm25.trec"
DENSE_RUN_FILE = "dense.trec"


@dataclass
@include(BM25Params, after="k")
class MineConfig:
    dataset: str = option("scifact", "Dataset spec with corpus, queries and qrels: a name under the data dir, a "
                          "BEIR/MS MARCO dir or irds:<id>")
    split: str = option("train", "Split whose queries and qrels are mined")
    out: Path = option(Path("runs/mine"), "Output training-set artifact directory")
    k: int = option(100, "BM25 hits retrieved per query (also written to bm25.trec)")
    negatives: int = option(8, "Hard negatives sampled per query")
    rank_min: int = option(10, "Best BM25 rank (1-based, inclusive) a negative may have")
    rank_max: int = option(100, "Worst BM25 rank (inclusive, <= k) a negative may have")
    min_relevance: int = option(1, "Smallest qrels grade that counts as a positive")
    max_queries: int | None = option(None, "Mine a seeded random sample (--seed) of this many of the split's "
                                     "queries, kept in the queries file's order. Default: every query")
    max_negative_ratio: float | None = option(None, "Drop candidates scoring above this fraction of the best "
                                              "positive's BM25 score (TopK-PercPos, e.g. 0.95). Default: no filter")
    seed: int = option(0, "Seed of the per-query negative sampling")
    threads: int = option(2, "Lucene indexing and search threads")
    bm25_cache: Path | None = option(None, "Cache folder of BM25 indexes. Default: $RETR_HOME/bm25 or "
                                     "~/.cache/retr/bm25")
    index: Path | None = option(None, "Re-mine with a trained model: a dense-index artifact (built by `retr index` "
                                "with that model over this corpus) searched instead of BM25; hits go to dense.trec")
    overwrite: bool = option(False, "Replace an existing output artifact")

    def __post_init__(self) -> None:
        self.out = Path(self.out)
        self.bm25_cache = None if self.bm25_cache is None else Path(self.bm25_cache)
        self.index = None if self.index is None else Path(self.index)
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
        if self.max_queries is not None and self.max_queries < 1:
            raise ValueError(f"max_queries must be >= 1, got {self.max_queries}")
        if self.negatives > self.rank_max - self.rank_min + 1:
            raise ValueError(
                f"{self.negatives} negatives cannot come from the {self.rank_max - self.rank_min + 1} ranks "
                f"{self.rank_min}..{self.rank_max}; widen the window or ask for fewer"
            )

    @property
    def bm25(self) -> BM25Params:
        return BM25Params(**included(self, BM25Params))


@dataclass(frozen=True)
class Hit:
    id: str
    rank: int
    score: float


@dataclass
class Filtered:
    """What the filters took out of the candidates, counted over all queries (manifest metrics)."""

    drop_self: bool  # drop the query's own document (the dataset's self-hit rule)
    self_hits: int = 0
    by_ratio: int = 0  # window candidates above the positive-aware ceiling
    without_positive_score: int = 0  # queries with no judged positive among the hits (left unfiltered)


def ranked(hits: dict[str, float]) -> list[Hit]:
    """Hits by score descending then docid: the order (and the ranks) of the TREC run file."""
    order = sorted(hits.items(), key=lambda item: (-item[1], item[0]))
    return [Hit(doc_id, rank, score) for rank, (doc_id, score) in enumerate(order, start=1)]


def negative_ceiling(hits: list[Hit], judged: set[str], ratio: float | None) -> float | None:
    """The highest score a negative may have: ``ratio`` x the best judged positive's score among the hits.

    None when there is no filter or no judged positive among the hits (its score is unknown). A negative positive
    score (possible for inner products) would flip the inequality, so the ceiling then uses ``score / ratio``."""
    if ratio is None:
        return None
    scores = [h.score for h in hits if h.id in judged]
    if not scores:
        return None
    best = max(scores)
    return best * ratio if best >= 0 else best / ratio


def sample_negatives(hits: list[Hit], judged: set[str], cfg: MineConfig, query_id: str) -> list[Hit] | None:
    """``cfg.negatives`` hits of the rank window that are not judged positives (and, with ``max_negative_ratio``,
    score at most that fraction of the best positive's score), by rank; None if too few."""
    ceiling = negative_ceiling(hits, judged, cfg.max_negative_ratio)
    window = [
        h for h in hits
        if cfg.rank_min <= h.rank <= cfg.rank_max and h.id not in judged and (ceiling is None or h.score <= ceiling)
    ]
    if len(window) < cfg.negatives:
        return None
    rng = random.Random(f"{cfg.seed}:{query_id}")  # str seeds hash with SHA-512: stable across processes
    return sorted(rng.sample(window, cfg.negatives), key=lambda h: h.rank)


def filter_stats(hits: list[Hit], judged: set[str], cfg: MineConfig) -> tuple[int, bool]:
    """(window candidates the ratio filter drops, whether the query had no positive score to filter with)."""
    if cfg.max_negative_ratio is None:
        return 0, False
    ceiling = negative_ceiling(hits, judged, cfg.max_negative_ratio)
    if ceiling is None:
        return 0, True
    dropped = sum(
        1 for h in hits if cfg.rank_min <= h.rank <= cfg.rank_max and h.id not in judged and h.score > ceiling
    )
    return dropped, False


def mine(cfg: MineConfig) -> Path:
    """Mine BM25 hard negatives for ``cfg.split`` of ``cfg.dataset``; returns the training-set artifact path."""
    check_output(cfg.out, KIND, cfg.overwrite)  # before the BM25 index is built or the search runs
    dataset = Dataset(cfg.dataset)
    queries = dataset.queries(cfg.split)
    split_queries = len(queries)
    queries = sample_queries(queries, cfg.max_queries, cfg.seed)
    judged = {qid: set(docs) for qid, docs in positives(dataset.qrels(cfg.split), cfg.min_relevance).items()}
    config = config_dict(cfg)

    started = time.perf_counter()
    index = ensure_bm25_index(cfg.dataset, cfg.bm25_cache) if cfg.index is None else _dense_index(cfg.index)
    index_seconds = time.perf_counter() - started
    inputs = [index, dataset.as_input(cfg.split)]
    drop_self, self_hit_rule = dataset.self_hit_default(cfg.split)
    filtered = Filtered(drop_self)
    with ArtifactWriter(cfg.out, KIND, config, inputs, overwrite=cfg.overwrite) as writer:
        started = time.perf_counter()
        if cfg.index is None:
            picked, in_top_k = _search_and_sample(index, queries, judged, cfg, writer.dir / RUN_FILE, filtered)
        else:
            picked, in_top_k = _dense_search_and_sample(index, queries, judged, cfg, writer.dir / DENSE_RUN_FILE,
                                                        filtered)
        search_seconds = time.perf_counter() - started
        wanted = {h.id for hits in picked.values() for h in hits or ()}
        wanted |= {doc_id for qid in queries for doc_id in judged.get(qid, ())}
        docs = _collect_docs(dataset, wanted)

        stats: dict[str, Any] = {"queries": len(queries), "split_queries": split_queries}
        stats.update(_write_training_set(writer.dir / TRAIN_FILE, queries, judged, picked, docs))
        if stats["training_queries"] == 0:
            raise DataError(f"{cfg.dataset}: no training query kept ({stats}); check the split's qrels and the "
                            "negative window")
        judged_total = sum(len(judged.get(qid, ())) for qid in queries)
        stats.update(
            negatives_per_query=cfg.negatives,
            judged_positives=judged_total,
            positives_in_top_k=round(in_top_k / judged_total, 4) if judged_total else None,
            candidates="dense" if cfg.index is not None else "bm25",
            run_file=DENSE_RUN_FILE if cfg.index is not None else RUN_FILE,
            max_negative_ratio=cfg.max_negative_ratio,
            negatives_dropped_by_ratio=filtered.by_ratio,
            queries_without_positive_score=filtered.without_positive_score if cfg.max_negative_ratio else None,
            self_hits={"drop": drop_self, "why": self_hit_rule, "dropped": filtered.self_hits},
            engine=engine_info() if cfg.index is None else None,
            index_build_seconds=index.manifest.get("timing", {}).get("seconds"),
        )
        writer.metrics.update(stats)
        writer.timing.update(
            index_seconds=round(index_seconds, 3),
            search_seconds=round(search_seconds, 3),
            search_queries_per_s=round(len(queries) / max(search_seconds, 1e-9), 1),
        )
    return cfg.out


def sample_queries(queries: dict[str, str], n: int | None, seed: int) -> dict[str, str]:
    """``n`` queries drawn with ``random.Random(seed)`` from the sorted ids, in the given order (all when ``n`` is None
    or not smaller). A query's negatives are seeded by its own id, so they do not change with the sample."""
    if n is None or n >= len(queries):
        return queries
    keep = set(random.Random(seed).sample(sorted(queries), n))
    return {qid: text for qid, text in queries.items() if qid in keep}


def _dense_index(path: Path) -> Artifact:
    from retr.data.artifacts import open_artifact

    return open_artifact(path, kind="dense-index")


def _pick(
    qid: str, hits: dict[str, float], judged: set[str], cfg: MineConfig, filtered: Filtered
) -> list[Hit] | None:
    """The negatives of one query. Where the dataset's queries are its documents (ArguAna, Quora: see
    :meth:`Dataset.self_hit_default`), the query's own document is no negative: dropped before ranking, as search
    drops it."""
    if filtered.drop_self and qid in hits:
        hits = {doc: score for doc, score in hits.items() if doc != qid}
        filtered.self_hits += 1
    order = ranked(hits)
    dropped, unknown = filter_stats(order, judged, cfg)
    filtered.by_ratio += dropped
    filtered.without_positive_score += unknown
    return sample_negatives(order, judged, cfg, qid)


def _dense_search_and_sample(
    index: Artifact, queries: dict[str, str], judged: dict[str, set[str]], cfg: MineConfig, run_file: Path,
    filtered: Filtered,
) -> tuple[dict[str, list[Hit] | None], int]:
    """Top-k of the dense index (encoded with its own encoder) per query, written to ``dense.trec`` and sampled."""
    from retr.retrieval.dense_search import search_dense

    run = search_dense(index, queries, k=cfg.k, progress=True)
    write_run(run_file, run, tag="dense")
    picked = {qid: _pick(qid, hits, judged.get(qid, set()), cfg, filtered) for qid, hits in run.items()}
    in_top_k = sum(len(judged.get(qid, set()) & hits.keys()) for qid, hits in run.items())
    return picked, in_top_k


def _search_and_sample(
    index: Artifact, queries: dict[str, str], judged: dict[str, set[str]], cfg: MineConfig, run_file: Path,
    filtered: Filtered,
) -> tuple[dict[str, list[Hit] | None], int]:
    """BM25 in batches of queries: each batch's hits are appended to the TREC run file and sampled, then dropped,
    so memory holds only the sampled negatives. Returns them and the number of judged positives in the top k."""
    picked: dict[str, list[Hit] | None] = {}
    in_top_k = 0
    part = run_file.with_name("_batch.trec")
    searcher = BM25Searcher(index, k1=cfg.bm25.k1, b=cfg.bm25.b, threads=cfg.threads)
    try:
        with open(run_file, "wb") as out:
            for batch in searcher.iter_search(queries, k=cfg.k, progress=True):
                write_run(part, batch, tag="bm25")
                with open(part, "rb") as lines:
                    shutil.copyfileobj(lines, out)
                for qid, hits in batch.items():
                    in_top_k += len(judged.get(qid, set()) & hits.keys())
                    picked[qid] = _pick(qid, hits, judged.get(qid, set()), cfg, filtered)
    finally:
        searcher.close()
        part.unlink(missing_ok=True)
    return picked, in_top_k


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
                    raise DataError(f"{hit.id}: the index returned a document that is not in the corpus; is it this corpus's index?")
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
