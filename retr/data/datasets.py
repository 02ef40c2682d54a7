"""Dataset readers: BEIR directories, MS MARCO files, (gzipped) JSONL, Wikipedia passages and ``irds:<id>``.

A dataset is named by a *spec*:

- a short name (``scifact``, ``msmarco-dl19`` ...) resolved under ``$RETR_DATA_DIR`` or ``../shared/data``;
- a BEIR directory (``corpus.jsonl[.gz]``, ``queries.jsonl``, ``qrels/<split>.tsv``);
- an MS MARCO directory (``collection.tsv``, ``queries.<split>.tsv``, ``qrels.<split>.{tsv,trec,txt}``);
- a corpus file (``.jsonl``, ``.jsonl.gz``, ``.tsv``), e.g. ``wikipedia/passages.jsonl.gz``;
- ``irds:<id>`` for ir_datasets, when its local cache holds the files.

Corpora are streamed (memory holds only the set of ids, to refuse duplicates); bad lines raise
:class:`DataError` with file and line number; empty texts and qrels naming unknown ids are counted in
:attr:`Dataset.stats`, which stages copy into their manifests.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator

from retr.data.artifacts import cached_sha256, sha256_json
from retr.data.errors import DataError
from retr.data.lines import numbered_lines
from retr.data.trec import Qrels, read_qrels


@dataclass(frozen=True)
class Doc:
    id: str
    title: str
    text: str

    @property
    def contents(self) -> str:
        """Title and text joined as Pyserini's BEIR "flat" indexes do."""
        return f"{self.title} {self.text}".strip() if self.title else self.text


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


def _first(directory: Path, names: list[str]) -> Path | None:
    return next((directory / n for n in names if (directory / n).is_file()), None)


@dataclass
class Dataset:
    """A corpus with optional queries and qrels, named by a spec (see module docstring)."""

    spec: str
    stats: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self._seen_ids: set[str] | None = None
        if self.spec.startswith("irds:"):
            self.format, self.root = "irds", None
            return
        path = Path(self.spec).expanduser()
        if not path.exists() and not path.is_absolute() and (data_root() / self.spec).exists():
            path = data_root() / self.spec
        if not path.exists():
            raise DataError(
                f"{self.spec}: no such dataset (not a path, and not a name under {data_root()}; set RETR_DATA_DIR)"
            )
        self.root = path
        if path.is_dir():
            if _first(path, ["corpus.jsonl", "corpus.jsonl.gz"]):
                self.format = "beir"
            elif _first(path, ["collection.tsv", "collection.tsv.gz"]):
                self.format = "msmarco"
            elif any(path.glob("queries*.tsv")):
                self.format = "msmarco"  # queries and qrels only (e.g. dev-small without the collection)
            else:
                raise DataError(f"{path}: neither a BEIR dir (corpus.jsonl) nor an MS MARCO dir (collection.tsv)")
        elif path.name.endswith((".jsonl", ".jsonl.gz")):
            self.format = "jsonl"
        elif path.name.endswith((".tsv", ".tsv.gz")):
            self.format = "tsv"
        else:
            raise DataError(f"{path}: unknown dataset file type (expected .jsonl, .jsonl.gz or .tsv)")

    # ---------------------------------------------------------------- files
    @property
    def name(self) -> str:
        return self.spec[5:] if self.format == "irds" else self.root.name.split(".")[0]

    def corpus_path(self) -> Path | None:
        if self.format == "beir":
            return _first(self.root, ["corpus.jsonl", "corpus.jsonl.gz"])
        if self.format == "msmarco":
            return _first(self.root, ["collection.tsv", "collection.tsv.gz"])
        if self.format in ("jsonl", "tsv"):
            return self.root
        return None

    def queries_path(self, split: str | None) -> Path | None:
        if self.format == "beir":
            return _first(self.root, ["queries.jsonl", "queries.jsonl.gz"])
        if self.format == "msmarco":
            names = [f"queries.{split}.tsv", f"queries.{split}.small.tsv"] if split else []
            return _first(self.root, names + ["queries.tsv"])
        return None

    def qrels_path(self, split: str) -> Path | None:
        if self.format == "beir":
            return _first(self.root / "qrels", [f"{split}.tsv", f"{split}.trec"])
        if self.format == "msmarco":
            names = [f"qrels.{split}.{ext}" for ext in ("tsv", "trec", "txt")]
            names += [f"qrels.{split}.small.{ext}" for ext in ("tsv", "trec", "txt")]
            return _first(self.root, names)
        return None

    def splits(self) -> list[str]:
        if self.format == "beir" and (self.root / "qrels").is_dir():
            return sorted(p.stem for p in (self.root / "qrels").iterdir() if p.suffix in (".tsv", ".trec"))
        return []

    # ---------------------------------------------------------------- corpus
    def corpus(self) -> Iterator[Doc]:
        """Stream the corpus; refuses malformed lines and duplicate ids, counts docs and empty texts."""
        self.stats.update(docs=0, empty_texts=0)
        seen: set[str] = set()
        source = self._irds_docs() if self.format == "irds" else self._file_docs()
        for where, doc in source:
            if doc.id in seen:
                raise DataError(f"{where}: duplicate document id {doc.id!r}")
            seen.add(doc.id)
            self.stats["docs"] += 1
            if not doc.text.strip() and not doc.title.strip():
                self.stats["empty_texts"] += 1
            yield doc
        self._seen_ids = seen

    def _file_docs(self) -> Iterator[tuple[str, Doc]]:
        path = self.corpus_path()
        if path is None:
            raise DataError(f"{self.root}: this dataset has no corpus file")
        is_tsv = path.name.endswith((".tsv", ".tsv.gz"))
        for where, line in numbered_lines(path):
            yield where, (_tsv_doc(line, where) if is_tsv else _json_doc(line, where))

    def _irds_docs(self) -> Iterator[tuple[str, Doc]]:
        dataset = _irds_load(self.name)
        try:
            for index, doc in enumerate(dataset.docs_iter(), start=1):
                text = getattr(doc, "text", None) or getattr(doc, "body", "") or ""
                yield f"{self.spec}#doc{index}", Doc(str(doc.doc_id), getattr(doc, "title", "") or "", text)
        except Exception as error:  # ir_datasets raises many types when its files are absent offline
            raise _irds_missing(self.name, error) from None

    def corpus_ids(self) -> set[str]:
        if self._seen_ids is None:
            for _ in self.corpus():
                pass
        assert self._seen_ids is not None
        return self._seen_ids

    # ---------------------------------------------------------------- queries and qrels
    def queries(self, split: str | None = None) -> dict[str, str]:
        """Queries of a split: for BEIR, the queries that the split's qrels judge."""
        if self.format == "irds":
            dataset = _irds_load(self.name)
            try:
                return {str(q.query_id): q.text for q in dataset.queries_iter()}
            except Exception as error:
                raise _irds_missing(self.name, error) from None
        path = self.queries_path(split)
        if path is None:
            raise DataError(f"{self.root}: no queries file for split {split!r}")
        queries: dict[str, str] = {}
        for where, line in numbered_lines(path):
            if path.name.endswith((".jsonl", ".jsonl.gz")):
                qid, text = _json_query(line, where)
            else:
                qid, tab, text = line.rstrip("\n").partition("\t")
                if not tab:
                    raise DataError(f"{where}: a query line is 'id<TAB>text'")
            if qid in queries:
                raise DataError(f"{where}: duplicate query id {qid!r}")
            queries[qid] = text.strip()
        if split and self.format == "beir":
            judged = self.qrels(split)
            queries = {qid: text for qid, text in queries.items() if qid in judged}
        return queries

    def qrels(self, split: str) -> Qrels:
        if self.format == "irds":
            dataset = _irds_load(self.name)
            try:
                qrels: Qrels = {}
                for q in dataset.qrels_iter():
                    qrels.setdefault(str(q.query_id), {})[str(q.doc_id)] = int(q.relevance)
                return qrels
            except Exception as error:
                raise _irds_missing(self.name, error) from None
        path = self.qrels_path(split)
        if path is None:
            raise DataError(f"{self.root}: no qrels for split {split!r} (have: {', '.join(self.splits()) or 'none'})")
        return read_qrels(path)

    def qrels_report(self, split: str, check_corpus: bool = True) -> dict[str, int]:
        """Counts of judgments naming unknown query ids or (when ``check_corpus``) unknown document ids."""
        qrels = self.qrels(split)
        all_queries = self.queries(None) if self.format != "irds" else self.queries(split)
        report = {
            "qrels": sum(len(d) for d in qrels.values()),
            "judged_queries": len(qrels),
            "unknown_query_ids": sum(len(d) for q, d in qrels.items() if q not in all_queries),
        }
        if check_corpus and self.corpus_path() is not None:
            ids = self.corpus_ids()
            report["unknown_doc_ids"] = sum(1 for d in qrels.values() for doc in d if doc not in ids)
        return report

    # ---------------------------------------------------------------- identity
    def as_input(self, split: str | None = None) -> dict[str, Any]:
        """The manifest input record: the files used and a sha256 over their content hashes."""
        if self.format == "irds":
            return {"kind": "dataset", "path": self.spec, "sha256": sha256_json({"irds": self.name})}
        files = [self.corpus_path(), self.queries_path(split)]
        if split:
            files.append(self.qrels_path(split))
        hashes = {str(p.name): cached_sha256(p) for p in files if p is not None}
        return {
            "kind": "dataset",
            "path": str(self.root.resolve()),
            "split": split,
            "files": hashes,
            "sha256": sha256_json(hashes),
        }


def _json_doc(line: str, where: str) -> Doc:
    try:
        record = json.loads(line)
    except json.JSONDecodeError as error:
        raise DataError(f"{where}: malformed JSON ({error.msg})") from None
    if not isinstance(record, dict):
        raise DataError(f"{where}: expected a JSON object")
    doc_id = record.get("_id", record.get("docid", record.get("id")))
    if doc_id is None or str(doc_id) == "":
        raise DataError(f"{where}: document has no '_id'")
    text = record.get("text", record.get("contents", ""))
    if not isinstance(text, str):
        raise DataError(f"{where}: 'text' is not a string")
    return Doc(str(doc_id), str(record.get("title") or ""), text)


def _tsv_doc(line: str, where: str) -> Doc:
    parts = line.rstrip("\n").split("\t")
    if len(parts) == 2:
        return Doc(parts[0], "", parts[1])
    if len(parts) == 3:
        return Doc(parts[0], parts[2], parts[1])  # Tevatron-style id<TAB>text<TAB>title
    raise DataError(f"{where}: a collection line is 'id<TAB>text' (or id, text, title)")


def _json_query(line: str, where: str) -> tuple[str, str]:
    try:
        record = json.loads(line)
    except json.JSONDecodeError as error:
        raise DataError(f"{where}: malformed JSON ({error.msg})") from None
    if not isinstance(record, dict):
        raise DataError(f"{where}: expected a JSON object with '_id' and 'text'")
    qid = record.get("_id", record.get("query_id", record.get("id")))
    if qid is None or not isinstance(record.get("text"), str):
        raise DataError(f"{where}: a query needs '_id' and 'text'")
    return str(qid), record["text"]


def _irds_load(name: str):
    try:
        import ir_datasets
    except ImportError as error:
        raise DataError(f"irds:{name}: ir_datasets is not installed ({error})") from None
    try:
        return ir_datasets.load(name)
    except KeyError:
        raise DataError(f"irds:{name}: ir_datasets knows no dataset of that id") from None


def _irds_missing(name: str, error: Exception) -> DataError:
    home = os.environ.get("IR_DATASETS_HOME", "~/.ir_datasets")
    return DataError(
        f"irds:{name}: ir_datasets could not read its files offline ({type(error).__name__}); download them once "
        f"on a machine with internet into {home} (or set IR_DATASETS_HOME), or pass the files as a BEIR/MS MARCO dir"
    )
