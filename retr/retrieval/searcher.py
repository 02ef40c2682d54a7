"""Ad-hoc search of an index artifact: typed queries in, ranked hits with document text out.

``open_index(dir)`` opens a "bm25-index" or "dense-index" artifact; ``.search(queries, k)`` returns, per query,
:class:`Hit` records (rank, doc id, score, text). The index's manifest names the corpus it was built from, so the
text needs no extra option; a corpus that moved or changed since is refused with one line (pass ``corpus=``).
This is the layer ``retr search --query`` prints and the Python API (:mod:`retr`) exposes.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable, Sequence

from retr.data.artifacts import MANIFEST, Artifact, ArtifactError, open_artifact
from retr.retrieval.bm25_search import BM25Params

INDEX_KINDS = ("bm25-index", "dense-index")


@dataclass(frozen=True)
class Hit:
    rank: int
    docid: str
    score: float
    text: str | None = None


def read_query_file(path: Path) -> dict[str, str]:
    """Queries of a text file: one per line (ids q1, q2, ...), or ``id<TAB>text`` lines; blank lines skipped."""
    from retr.data.errors import DataError

    queries: dict[str, str] = {}
    try:
        lines = Path(path).read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as error:
        raise DataError(f"{path}: unreadable query file ({error})") from None
    for number, line in enumerate(lines, 1):
        if not line.strip():
            continue
        qid, tab, text = line.partition("\t")
        qid, text = (qid.strip(), text.strip()) if tab else (f"q{len(queries) + 1}", line.strip())
        if not qid or not text:
            raise DataError(f"{path}:{number}: expected a query, or an id and a query separated by a tab")
        if qid in queries:
            raise DataError(f"{path}:{number}: duplicate query id {qid!r}")
        queries[qid] = text
    if not queries:
        raise DataError(f"{path}: no queries in the file")
    return queries


def as_queries(queries: str | Sequence[str] | dict[str, str]) -> dict[str, str]:
    """One query, a list (ids q1, q2, ...) or a {id: text} mapping, as a mapping."""
    if isinstance(queries, str):
        queries = [queries]
    if not isinstance(queries, dict):
        queries = {f"q{i}": text for i, text in enumerate(queries, 1)}
    if not queries or any(not str(text).strip() for text in queries.values()):
        raise ValueError("give at least one non-empty query")
    return dict(queries)


class Index:
    """An opened index artifact; see the module docstring. ``encoder`` / ``k1`` / ``b`` as for ``retr search``."""

    def __init__(self, path: str | Path, corpus: str | Path | None = None, encoder: str | None = None,
                 k1: float = BM25Params.k1, b: float = BM25Params.b,
                 query_side: dict[str, Any] | None = None) -> None:
        self.artifact: Artifact = open_artifact(path, kind=INDEX_KINDS)
        self.kind = self.artifact.kind
        self.corpus = Path(corpus) if corpus is not None else None
        self.encoder, self.k1, self.b = encoder, k1, b
        self.query_side = {k: v for k, v in (query_side or {}).items() if v is not None}
        if self.kind == "bm25-index" and (encoder is not None or self.query_side):
            raise ArtifactError(f"{self.artifact.path}: a BM25 index takes no encoder, query template or length")

    def search(self, queries: str | Sequence[str] | dict[str, str], k: int = 10,
               with_text: bool = True) -> dict[str, list[Hit]]:
        """Top-``k`` hits per query id, best first; ``with_text`` adds each hit's document text."""
        if k < 1:
            raise ValueError(f"k must be >= 1, got {k}")
        queries = as_queries(queries)
        if self.kind == "bm25-index":
            from retr.retrieval.bm25_search import search_bm25

            run = search_bm25(self.artifact, queries, k=k, k1=self.k1, b=self.b)
        else:
            from retr.retrieval.dense_search import search_dense

            run = search_dense(self.artifact, queries, k=k, encoder=self.encoder, query_side=self.query_side)
        ranked = {qid: sorted(run.get(qid, {}).items(), key=lambda item: (-item[1], item[0])) for qid in queries}
        texts = self.documents({docid for hits in ranked.values() for docid, _ in hits}) if with_text else {}
        return {qid: [Hit(rank, docid, score, texts.get(docid)) for rank, (docid, score) in enumerate(hits, 1)]
                for qid, hits in ranked.items()}

    def documents(self, ids: Iterable[str]) -> dict[str, str]:
        """Title and text of these documents, from the corpus the index was built from (one streaming pass)."""
        from retr.data.datasets import Dataset

        wanted, found = set(ids), {}
        if not wanted:
            return found
        for doc in Dataset(str(self.corpus_path())).corpus():
            if doc.id in wanted:
                found[doc.id] = doc.contents
                if len(found) == len(wanted):
                    break
        return found

    def corpus_path(self) -> Path:
        """The corpus recorded in the manifest (or the one given), refused if it moved or changed since."""
        if self.corpus is not None:
            return self.corpus
        record = _corpus_record(self.artifact)
        path = Path(record.get("path", ""))
        hint = "pass the corpus explicitly (--corpus / corpus=)"
        if not path.exists():
            raise ArtifactError(f"{self.artifact.path}: its corpus {path} is gone (moved or deleted); {hint}")
        if _current_sha256(path, record) != record.get("sha256"):
            raise ArtifactError(f"{self.artifact.path}: its corpus {path} changed since indexing; {hint}")
        return path


def _corpus_record(index: Artifact) -> dict[str, Any]:
    for record in index.manifest.get("inputs", []):
        if record.get("corpus") or record.get("kind") == "dataset":
            return record
    raise ArtifactError(f"{index.path}: the manifest records no corpus; pass it explicitly (--corpus / corpus=)")


def _current_sha256(path: Path, record: dict[str, Any]) -> str:
    """The hash the record would have now: an artifact's manifest hash, or the dataset's content hash."""
    from retr.data.datasets import Dataset

    if record.get("kind") != "dataset" and (path / MANIFEST).is_file():
        return open_artifact(path).sha256
    return Dataset(str(path)).as_input(None)["sha256"]


def open_index(path: str | Path, **options: Any) -> Index:
    """An :class:`Index` for a "bm25-index" or "dense-index" artifact."""
    return Index(path, **options)
