"""Dataset readers: BEIR directories, MS MARCO files, (gzipped) JSONL, Wikipedia passages and ``irds:<id>``.

A dataset is named by a *spec*:

- a short name (``scifact``, ``msmarco-dl19`` ...) resolved under ``$RETR_DATA_DIR`` or ``../shared/data``;
- a BEIR directory (``corpus.jsonl[.gz]``, ``queries.jsonl``, ``qrels/<split>.tsv``);
- an MS MARCO directory (``collection.tsv``, ``queries.<split>.tsv``, ``qrels.<split>.{tsv,trec,txt}``);
- a corpus file (``.jsonl``, ``.jsonl.gz``, ``.tsv``), e.g. ``wikipedia/passages.jsonl.gz``;
- ``irds:<id>`` for ir_datasets, when its local cache holds the files.

Corpora are streamed (memory holds only the set of ids, to refuse duplicates); bad lines raise
:class:`DataError` with file and line number; empty texts and qrels naming unknown ids are counted in
:attr:`Dataset.stats`, which stages copy into their manifests. Each layout is a reader class in
:mod:`retr.data.formats`; this module adds what is common to all (duplicate ids, counts, judged queries).
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator

from retr.data.errors import DataError
from retr.data.formats import DatasetFormat, Doc, open_format
from retr.data.trec import Qrels

__all__ = ["Dataset", "Doc", "data_root"]


def data_root() -> Path:
    """Where named datasets live: $RETR_DATA_DIR, else ../shared/data beside the project (or the cwd)."""
    if os.environ.get("RETR_DATA_DIR"):
        return Path(os.environ["RETR_DATA_DIR"])
    project = Path(__file__).resolve().parents[2]
    for base in (Path.cwd(), project):
        candidate = base.parent / "shared" / "data"
        if candidate.is_dir():
            return candidate
    return project.parent / "shared" / "data"


@dataclass
class Dataset:
    """A corpus with optional queries and qrels, named by a spec (see module docstring)."""

    spec: str
    stats: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self._seen_ids: set[str] | None = None
        path = Path(self.spec).expanduser()
        if not self.spec.startswith("irds:"):
            if not path.exists() and not path.is_absolute() and (data_root() / self.spec).exists():
                path = data_root() / self.spec
            if not path.exists():
                raise DataError(
                    f"{self.spec}: no such dataset (not a path, and not a name under {data_root()}; set RETR_DATA_DIR)"
                )
        self.reader: DatasetFormat = open_format(self.spec, path)
        self.format, self.root = self.reader.name, self.reader.root

    # ---------------------------------------------------------------- files
    @property
    def name(self) -> str:
        return self.reader.dataset_name

    def corpus_path(self) -> Path | None:
        return self.reader.corpus_path()

    def queries_path(self, split: str | None) -> Path | None:
        return self.reader.queries_path(split)

    def qrels_path(self, split: str) -> Path | None:
        return self.reader.qrels_path(split)

    def splits(self) -> list[str]:
        return self.reader.splits()

    # ---------------------------------------------------------------- corpus
    def corpus(self) -> Iterator[Doc]:
        """Stream the corpus; refuses malformed lines and duplicate ids, counts docs and empty texts."""
        self.stats.update(docs=0, empty_texts=0)
        seen: set[str] = set()
        for where, doc in self.reader.docs():
            if doc.id in seen:
                raise DataError(f"{where}: duplicate document id {doc.id!r}")
            seen.add(doc.id)
            self.stats["docs"] += 1
            if not doc.text.strip() and not doc.title.strip():
                self.stats["empty_texts"] += 1
            yield doc
        self._seen_ids = seen

    def corpus_ids(self) -> set[str]:
        if self._seen_ids is None:
            for _ in self.corpus():
                pass
        assert self._seen_ids is not None
        return self._seen_ids

    # ---------------------------------------------------------------- queries and qrels
    def queries(self, split: str | None = None) -> dict[str, str]:
        """Queries of a split: for BEIR, the queries that the split's qrels judge."""
        queries: dict[str, str] = {}
        for where, qid, text in self.reader.query_lines(split):
            if qid in queries:
                raise DataError(f"{where}: duplicate query id {qid!r}")
            queries[qid] = text.strip()
        if split and self.reader.judged_queries_only:
            judged = self.qrels(split)
            queries = {qid: text for qid, text in queries.items() if qid in judged}
        return queries

    def qrels(self, split: str) -> Qrels:
        return self.reader.qrels(split)

    def qrels_report(self, split: str, check_corpus: bool = True) -> dict[str, int]:
        """Counts of judgments naming unknown query ids or (when ``check_corpus``) unknown document ids."""
        qrels = self.qrels(split)
        all_queries = self.queries(None)
        report = {
            "qrels": sum(len(d) for d in qrels.values()),
            "judged_queries": len(qrels),
            "unknown_query_ids": sum(len(d) for q, d in qrels.items() if q not in all_queries),
        }
        if check_corpus and self.corpus_path() is not None:
            ids = self.corpus_ids()
            report["unknown_doc_ids"] = sum(1 for d in qrels.values() for doc in d if doc not in ids)
        return report

    def self_hit_default(self, split: str | None = None) -> tuple[bool, str]:
        """Whether a search should drop a hit whose document id equals its query id, and why.

        BEIR's convention (its evaluation's ``ignore_identical_ids``, Pyserini's ``--remove-query`` regressions):
        in ArguAna and Quora the queries are corpus documents under the same ids, and finding a query itself is no
        answer. It is the default for BEIR-layout data, except where the qrels judge a document relevant to the
        query of the same id (in ``split``, else in any split): then the two id spaces are separate numberings
        (Cranfield: query 225 -> doc 225)."""
        if not self.reader.self_hits:
            return False, f"{self.format} data: queries are not corpus documents"
        for name in [split] if split else self.splits():
            same = sorted((q for q, docs in self.qrels(name).items() if docs.get(q, 0) > 0), key=str)
            if same:
                return False, (f"qrels {name} judge document {same[0]} relevant to query {same[0]}: query and "
                               "document ids are separate numberings")
        return True, "BEIR convention: a hit whose id is the query's own is the query (ignore_identical_ids)"

    # ---------------------------------------------------------------- identity
    def as_input(self, split: str | None = None) -> dict[str, Any]:
        """The manifest input record: the files used and a sha256 over their content hashes."""
        return self.reader.as_input(split)
