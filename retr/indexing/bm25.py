"""BM25 (Lucene) index of a corpus, built by Anserini's own indexer through Pyserini.

The corpus is streamed once into Anserini's ``JsonCollection`` format (``{"id", "contents"}``, contents = title +
" " + text as in Pyserini's BEIR "flat" indexes) in a scratch folder inside the artifact's tmp dir, one file per
indexing thread, then indexed by ``io.anserini.index.IndexCollection`` with its default analyzer (English, Porter
stemmer, stopwords), positions and document vectors stored, and merged into one segment. The raw text is not
stored (texts are read from the dataset; search stays lighter). Search sorts hits by score then docid, so the
order in which the indexing threads add documents changes no result.
"""

from __future__ import annotations

import json
import shutil
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tqdm import tqdm

from retr.data.artifacts import Artifact, ArtifactError, ArtifactWriter, MANIFEST, config_dict, open_artifact, retr_home
from retr.data.datasets import Dataset
from retr.data.errors import DataError
from retr.retrieval.bm25_search import KIND, LUCENE_DIR, lucene_path
from retr.retrieval.lucene import engine_info, jclass

# What decides the index content; a cached index is reused only when these match.
SETTINGS: dict[str, Any] = {
    "contents": "title + ' ' + text",
    "collection": "JsonCollection",
    "generator": "DefaultLuceneDocumentGenerator",
    "analyzer": "anserini-default (English, Porter stemmer, stopwords)",
    "store_positions": True,
    "store_docvectors": True,
    "store_raw": False,
    "optimize": True,  # merged into one segment: each hit's stored-docid lookup at search time is cheaper
}


@dataclass
class BM25IndexConfig:
    corpus: str = "scifact"
    out: Path = Path("runs/bm25-index")
    threads: int = 2
    overwrite: bool = False

    def __post_init__(self) -> None:
        self.out = Path(self.out)
        if self.threads < 1:
            raise ValueError(f"threads must be >= 1, got {self.threads}")


def build_bm25_index(cfg: BM25IndexConfig) -> Path:
    """Build the Lucene index of ``cfg.corpus`` as a "bm25-index" artifact at ``cfg.out``; returns its path."""
    dataset = Dataset(cfg.corpus)
    config = {**config_dict(cfg), "settings": SETTINGS}
    with ArtifactWriter(cfg.out, KIND, config, [dataset.as_input()], overwrite=cfg.overwrite) as writer:
        started = time.perf_counter()
        scratch, lucene = writer.dir / "_collection", writer.dir / LUCENE_DIR
        for leftover in (scratch, lucene):  # a resumed tmp dir: this short work starts over
            shutil.rmtree(leftover, ignore_errors=True)
        docs = _write_collection(dataset, scratch, cfg.threads)
        if docs == 0:
            raise DataError(f"{cfg.corpus}: the corpus has no documents; nothing to index")
        print(f"bm25: indexing {docs} docs with Anserini ({cfg.threads} threads)", file=sys.stderr, flush=True)
        counters = _run_indexer(scratch.resolve(), lucene.resolve(), cfg.threads)  # the JVM keeps its own cwd
        shutil.rmtree(scratch)
        if counters["errors"] or counters["unindexable"]:
            raise ArtifactError(f"{cfg.out}: Anserini could not index some documents ({counters}); check the corpus")
        seconds = time.perf_counter() - started
        writer.metrics.update(docs=docs, **counters, corpus_stats=dict(dataset.stats), engine=engine_info())
        writer.timing.update(seconds=round(seconds, 3), docs_per_s=round(docs / max(seconds, 1e-9), 1))
    return cfg.out


def _write_collection(dataset: Dataset, folder: Path, shards: int) -> int:
    """Stream the corpus into ``shards`` JsonCollection files (round robin); returns the number of docs."""
    folder.mkdir(parents=True)
    handles = [open(folder / f"docs{i:02d}.jsonl", "w", encoding="utf-8") for i in range(shards)]
    count = 0
    try:
        for count, doc in enumerate(tqdm(dataset.corpus(), desc="bm25 corpus", unit=" docs"), start=1):
            handles[count % shards].write(json.dumps({"id": doc.id, "contents": doc.contents}, ensure_ascii=False))
            handles[count % shards].write("\n")
    finally:
        for handle in handles:
            handle.close()
    return count


def _run_indexer(collection: Path, index: Path, threads: int) -> dict[str, int]:
    """Anserini's IndexCollection, driven through its Args object (its ``main`` would parse a command line)."""
    args = jclass("io.anserini.index.IndexCollection$Args")()
    args.input = str(collection)
    args.index = str(index)
    args.collectionClass = SETTINGS["collection"]
    args.generatorClass = SETTINGS["generator"]
    args.threads = int(threads)
    args.storePositions = SETTINGS["store_positions"]
    args.storeDocvectors = SETTINGS["store_docvectors"]
    args.storeRaw = SETTINGS["store_raw"]
    args.optimize = SETTINGS["optimize"]
    args.quiet = True
    from jnius import JavaException

    try:
        indexer = jclass("io.anserini.index.IndexCollection")(args)
        indexer.run()
    except JavaException as error:
        raise ArtifactError(f"{index}: Anserini indexing failed: {error}") from None
    counters = indexer.getCounters()
    names = ("indexed", "empty", "unindexable", "skipped", "errors")
    return {name: int(getattr(counters, name).get()) for name in names}


def default_cache_dir() -> Path:
    """``$RETR_HOME/bm25``, else ``~/.cache/retr/bm25``."""
    return retr_home() / "bm25"


def ensure_bm25_index(corpus_spec: str, cache_dir: Path | None = None) -> Artifact:
    """The BM25 index of a corpus, reused from the cache when its manifest names the same dataset hash and
    settings, else built there (``<cache_dir>/<dataset sha256 prefix>``)."""
    record = Dataset(corpus_spec).as_input()
    out = Path(cache_dir or default_cache_dir()).expanduser() / record["sha256"][:16]
    if (out / MANIFEST).is_file():
        try:
            cached = open_artifact(out, kind=KIND)
            inputs = cached.manifest.get("inputs") or [{}]
            if inputs[0].get("sha256") == record["sha256"] and cached.config.get("settings") == SETTINGS:
                lucene_path(cached)
                return cached
        except ArtifactError:
            pass  # a stale or broken cache entry is rebuilt below
    build_bm25_index(BM25IndexConfig(corpus=corpus_spec, out=out, overwrite=True))
    return open_artifact(out, kind=KIND)
