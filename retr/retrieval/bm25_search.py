"""BM25 search of a "bm25-index" artifact with Anserini's SimpleSearcher, the engine of Pyserini's LuceneSearcher.

Ranking is Anserini's: BM25(k1, b), hits sorted by score then collection docid, scores rounded to 1e-4 with ties
perturbed (its ScoreTiesAdjusterReranker), exactly what Pyserini's ``batch_search`` returns. What differs is how
hits cross into Python: ``LuceneSearcher.batch_search`` turns every hit into a pyjnius proxy object (two JNI calls
per field read), which dominates at large k. Here the Java result map of a batch of queries is serialized to one
JSON string by the Jackson library inside the Anserini jar and parsed by Python's C JSON parser, so there is one
JNI round trip per batch (bench/bench_mine.py measures both: 1.2-1.9x faster end to end at k=1000 on SciFact).

What remains is Anserini's own cost in Java, mostly loading the stored document of every hit to read its docid.
Anserini 1.7.1's ``batch_search`` sizes its thread pool to the machine's processors; ``threads`` is passed on but
that version does not use it.
"""

from __future__ import annotations

import json
from pathlib import Path
from dataclasses import dataclass
from typing import Any, Iterator

from tqdm import tqdm

from retr.data.artifacts import Artifact, ArtifactError
from retr.data.errors import UsageError
from retr.data.options import option
from retr.data.trec import Run

KIND = "bm25-index"
LUCENE_DIR = "lucene"
HITS_PER_BATCH = 200_000  # bounds the JSON string of one batch (~55 bytes a hit)


@dataclass(frozen=True)
class BM25Params:
    """The BM25 ranking parameters: one definition, included (flat) in the configs that search BM25."""

    k1: float = option(0.9, "BM25 k1 (term-frequency saturation)")
    b: float = option(0.4, "BM25 b (document-length normalization)")


def lucene_path(index: Artifact, verify: bool = True) -> Path:
    """The Lucene directory of a "bm25-index" artifact; refuses other kinds and incomplete artifacts.

    With ``verify`` (what every search does), each Lucene file is checked against the manifest (hashes cached by
    size, mtime, ctime and inode, so a large index is hashed once), and a file the manifest does not list is
    refused too: Lucene opens the newest ``segments_N`` it finds, so an added file could change every result."""
    if index.kind != KIND:
        raise ArtifactError(f"{index.path}: is a {index.kind!r} artifact, expected a {KIND}")
    path = index.path / LUCENE_DIR
    if not path.is_dir():
        raise ArtifactError(f"{index.path}: has no {LUCENE_DIR}/ folder; rebuild the BM25 index")
    if verify:
        index.verify(under=LUCENE_DIR)
    return path


class BM25Searcher:
    """Anserini's SimpleSearcher (the Java object that Pyserini's ``LuceneSearcher`` wraps) on one index, with
    BM25(k1, b). Used directly because importing ``pyserini.search.lucene`` also imports torch, transformers and
    scikit-learn (about 6 s) for its neural searchers; the calls are the ones ``LuceneSearcher`` makes."""

    def __init__(self, index: Artifact, k1: float = BM25Params.k1, b: float = BM25Params.b, threads: int = 2) -> None:
        from retr.retrieval.lucene import jclass

        path = lucene_path(index)
        self.searcher = jclass("io.anserini.search.SimpleSearcher")(str(path.resolve()))  # the JVM keeps its own cwd
        self.searcher.set_bm25(float(k1), float(b))
        self.threads = int(threads)
        self._list = jclass("java.util.ArrayList")
        self._json = _hits_json_writer()

    def search(self, queries: dict[str, str], k: int = 1000, progress: bool = False) -> Run:
        run: Run = {}
        for batch_run in self.iter_search(queries, k, progress):
            run.update(batch_run)
        return run

    def iter_search(self, queries: dict[str, str], k: int = 1000, progress: bool = False) -> Iterator[Run]:
        """The run in consecutive batches of queries (in the given order), so callers can stream large query sets."""
        if k < 1:
            raise ValueError(f"k must be >= 1, got {k}")
        with tqdm(total=len(queries), desc="bm25 search", unit=" q", disable=not progress) as bar:
            for batch in _batches(list(queries.items()), max(16, min(1024, HITS_PER_BATCH // k))):
                yield self._search_batch(batch, k)
                bar.update(len(batch))

    def _search_batch(self, batch: list[tuple[str, str]], k: int) -> Run:
        qids, texts = self._list(), self._list()
        for qid, text in batch:
            qids.add(qid)
            texts.add(text)
        from jnius import JavaException

        try:
            hits = self.searcher.batch_search(texts, qids, int(k), self.threads)  # stays a Java Map
        except JavaException as error:
            self._explain_failure(batch, k, error)
            raise
        decoded: dict[str, list[dict[str, Any]]] = json.loads(self._json.writeValueAsString(hits))
        return {qid: {hit["docid"]: float(hit["score"]) for hit in decoded.get(qid, [])} for qid, _ in batch}

    def _explain_failure(self, batch: list[tuple[str, str]], k: int, error: Exception) -> None:
        """A batch Lucene could not search (Anserini reports only that a task failed): search its queries one by
        one and refuse the first that fails alone, naming it. Queries with more distinct terms than Lucene's clause
        limit (1024) are the known case."""
        from jnius import JavaException

        from retr.retrieval.lucene import jclass

        for qid, text in batch:
            one_id, one_text = self._list(), self._list()
            one_id.add(qid)
            one_text.add(text)
            try:
                self.searcher.batch_search(one_text, one_id, int(k), 1)
            except JavaException:
                terms = len(set(jclass("io.anserini.analysis.AnalyzerUtils").analyze(text).toArray()))
                limit = jclass("org.apache.lucene.search.IndexSearcher").getMaxClauseCount()
                if terms > limit:
                    raise UsageError(f"query {qid}: has {terms} distinct terms after analysis, more than Lucene's "
                                     f"limit of {limit}; shorten it or leave it out of the queries") from None
                raise UsageError(f"query {qid}: Lucene cannot search it ({str(error).strip()[:200]}); "
                                 "check or leave out this query") from None

    def close(self) -> None:
        self.searcher.close()


def search_bm25(
    index: Artifact,
    queries: dict[str, str],
    k: int = 1000,
    k1: float = BM25Params.k1,
    b: float = BM25Params.b,
    threads: int = 2,
    progress: bool = False,
) -> Run:
    """Top-k BM25 hits of every query: ``{qid: {docid: score}}`` (queries without hits map to ``{}``)."""
    searcher = BM25Searcher(index, k1=k1, b=b, threads=threads)
    try:
        return searcher.search(queries, k=k, progress=progress)
    finally:
        searcher.close()


def _hits_json_writer() -> Any:
    """A Jackson ObjectWriter for ``Map<String, ScoredDoc[]>``: public fields docid, lucene_docid and score (the
    stored Lucene Document of each hit is skipped), non-ASCII escaped so the string crosses JNI unchanged."""
    from retr.retrieval.lucene import jclass

    mapper = jclass("com.fasterxml.jackson.databind.ObjectMapper")()
    document = jclass("java.lang.Class").forName("org.apache.lucene.document.Document")
    mapper.configOverride(document).setIsIgnoredType(jclass("java.lang.Boolean")(True))
    mapper.getFactory().enable(jclass("com.fasterxml.jackson.core.JsonGenerator$Feature").ESCAPE_NON_ASCII)
    return mapper


def _batches(items: list[Any], size: int) -> Iterator[list[Any]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]
