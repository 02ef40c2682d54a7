"""The search stage: queries of a dataset against an index artifact -> a "run" artifact holding ``run.trec``.

The index kind picks the searcher: "bm25-index" -> Pyserini BM25 (:mod:`retr.retrieval.bm25_search`),
"dense-index" -> FAISS with the encoder recorded in the index (:mod:`retr.retrieval.dense_search`, imported only
for dense indexes).
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

from retr.data.options import include, included, option
from retr.data.artifacts import Artifact, ArtifactError, ArtifactWriter, config_dict, open_artifact
from retr.data.datasets import Dataset
from retr.data.trec import Run, write_run
from retr.retrieval.bm25_search import BM25Params

RUN_FILE = "run.trec"
MAX_K = 1_000_000  # hits per query; Lucene allocates k slots up front, and no ranked list needs more
INDEX_KINDS = ("bm25-index", "dense-index")


@dataclass
@include(BM25Params, after="rescore_factor")
class SearchConfig:
    index: Path | None = option(None, "Index artifact: a bm25-index or a dense-index. Default: the cached BM25 index "
                                "of the --queries corpus")
    queries: str = option("scifact", "Dataset spec of the queries: a name under the data dir, a BEIR/MS MARCO dir or "
                          "irds:<id>; ad hoc: a .txt (one query a line) or .tsv (id, text) file, without --out")
    split: str | None = option("test", "Query split: test, dev, train, or 'all' for every query")
    k: int = option(1000, "Hits kept per query (ad hoc: 10 unless given)")
    out: Path = option(Path("runs/search"), "Output run artifact directory")
    encoder: str | None = option(None, "Dense indexes only: encoder spec; must be the one that built the index. "
                                 "Default: the index's encoder")
    batch_size: int = option(64, "Dense indexes only: queries encoded per batch")
    query_template: str | None = option(None, "Dense indexes only: query template with {text} or a preset (none, e5, "
                                        "llara); the passages stay as indexed. Default: the index's")
    max_query_length: int | None = option(None, "Dense indexes only: max query tokens, prompt included. "
                                          "Default: the index's")
    rescore: bool | None = option(None, "Dense indexes only: re-rank rescore_factor x k candidates of the index by "
                                  "the inner product with the full float32 vectors (read by memory map). Default: "
                                  "yes for int8 and binary indexes, else no")
    rescore_factor: int = option(4, "Dense indexes only, when rescoring: candidates taken per hit kept")
    threads: int = option(2, "BM25 search threads")
    drop_self: bool | None = option(None, "Drop a hit whose document id is its query's id (BEIR's "
                                    "ignore_identical_ids, Pyserini's --remove-query: in ArguAna and Quora the queries "
                                    "are corpus documents). Default: yes for BEIR-layout data unless its qrels judge "
                                    "such a pair relevant, else no")
    bm25_cache: Path | None = option(None, "Cache folder of BM25 indexes (searched without --index). "
                                     "Default: $RETR_HOME/bm25 or ~/.cache/retr/bm25")
    overwrite: bool = option(False, "Replace an existing output artifact")

    def __post_init__(self) -> None:
        self.index = None if self.index is None else Path(self.index)
        self.out = Path(self.out)
        if self.split in ("", "all"):
            self.split = None  # every query of the queries file
        if not 1 <= self.k <= MAX_K:
            raise ValueError(f"k must be between 1 and {MAX_K}, got {self.k}")
        if self.batch_size < 1 or self.threads < 1 or self.rescore_factor < 1:
            raise ValueError("batch_size, threads and rescore_factor must be >= 1")

    @property
    def bm25(self) -> BM25Params:
        return BM25Params(**included(self, BM25Params))


def search(cfg: SearchConfig) -> Path:
    """Search ``cfg.queries`` (split ``cfg.split``) in ``cfg.index``; writes the run artifact, returns its path."""
    if cfg.index is None:
        raise ArtifactError("search: no index given; pass the path of a bm25-index or dense-index artifact")
    index = open_artifact(cfg.index, kind=INDEX_KINDS)
    dataset = Dataset(cfg.queries)
    queries = dataset.queries(cfg.split)
    drop_self, why = (cfg.drop_self, "set by --drop-self/--no-drop-self") if cfg.drop_self is not None \
        else dataset.self_hit_default(cfg.split)
    config = {**config_dict(cfg), "drop_self": drop_self}  # the manifest holds the value used, not 'default'
    inputs = [index, dataset.as_input(cfg.split)]
    with ArtifactWriter(cfg.out, "run", config, inputs, overwrite=cfg.overwrite) as writer:
        started = time.perf_counter()
        run = _dispatch(index, queries, cfg)
        found = sum(qid in hits for qid, hits in run.items())
        if drop_self:  # as Pyserini's --remove-query: k hits searched, the query's own id filtered out after
            run = {qid: {doc: score for doc, score in hits.items() if doc != qid} for qid, hits in run.items()}
        seconds = time.perf_counter() - started
        writer.metrics["self_hits"] = {"drop": drop_self, "why": why, "found": found,
                                       "dropped": found if drop_self else 0}
        write_run(writer.dir / RUN_FILE, run, tag=f"retr-{index.kind.removesuffix('-index')}")
        writer.metrics.update(
            queries=len(queries),
            queries_without_hits=sum(1 for qid in queries if not run.get(qid)),
            hits=sum(len(hits) for hits in run.values()),
        )
        if index.kind == "bm25-index":
            from retr.retrieval.lucene import engine_info

            writer.metrics["engine"] = engine_info()
        else:
            from retr.retrieval.dense_search import QUERY_SIDE, query_options, rescore_plan

            used = query_options(index, query_side(cfg))
            writer.metrics["query_options"] = {name: used[name] for name in QUERY_SIDE}
            writer.metrics["rescore"] = rescore_plan(index, cfg.rescore, cfg.rescore_factor)
        writer.timing.update(
            search_seconds=round(seconds, 3), queries_per_s=round(len(queries) / max(seconds, 1e-9), 1)
        )
    return cfg.out


def _dispatch(index: Artifact, queries: dict[str, str], cfg: SearchConfig) -> Run:
    if index.kind == "bm25-index":
        if cfg.encoder is not None or cfg.rescore is not None or any(v is not None for v in query_side(cfg).values()):
            raise ArtifactError(f"{index.path}: is a BM25 index, which takes no encoder, query template, query "
                                "length or rescoring; drop those options")
        from retr.retrieval.bm25_search import search_bm25

        return search_bm25(index, queries, k=cfg.k, k1=cfg.bm25.k1, b=cfg.bm25.b, threads=cfg.threads, progress=True)
    from retr.retrieval.dense_search import search_dense

    return search_dense(index, queries, k=cfg.k, encoder=cfg.encoder, batch_size=cfg.batch_size,
                        query_side=query_side(cfg), rescore=cfg.rescore, rescore_factor=cfg.rescore_factor)


def query_side(cfg: SearchConfig) -> dict[str, object]:
    """The query-side encoder options given for this search (None: the index's own)."""
    return {"query_template": cfg.query_template, "max_query_length": cfg.max_query_length}
