"""Dataset formats: one reader class per layout behind one interface, picked from a registry.

A format says whether it recognises a spec (:meth:`DatasetFormat.detect`), where its corpus, queries and qrels
files are, and how one corpus or query line parses; the shared parts (reading lines with ``file:line`` errors,
qrels, the manifest record) live in the base class. Adding a format is one subclass decorated with
:func:`register`; :class:`retr.data.datasets.Dataset` only delegates.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, ClassVar, Iterator

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


class DatasetFormat:
    """A dataset layout rooted at ``root`` (a folder or a file; None for non-file sources such as ir_datasets)."""

    name: ClassVar[str]
    judged_queries_only: ClassVar[bool] = False  # queries of a split = those its qrels judge (BEIR)
    self_hits: ClassVar[bool] = False  # a hit whose id is the query's id is the query itself (BEIR's convention)

    def __init__(self, spec: str, root: Path | None) -> None:
        self.spec, self.root = spec, root

    @classmethod
    def detect(cls, spec: str, path: Path) -> bool:
        """Whether ``spec`` (``path`` when it names an existing file or folder) is in this format."""
        raise NotImplementedError

    @property
    def dataset_name(self) -> str:
        assert self.root is not None
        return self.root.name.split(".")[0]

    # files (None: the format has none)
    def corpus_path(self) -> Path | None:
        return None

    def queries_path(self, split: str | None) -> Path | None:
        return None

    def qrels_path(self, split: str) -> Path | None:
        return None

    def splits(self) -> list[str]:
        return []

    # records
    def docs(self) -> Iterator[tuple[str, Doc]]:
        """(where, doc) for each document, ``where`` being ``file:line``."""
        path = self.corpus_path()
        if path is None:
            raise DataError(f"{self.root}: this dataset has no corpus file")
        parse = _tsv_doc if path.name.endswith((".tsv", ".tsv.gz")) else _json_doc
        for where, line in numbered_lines(path):
            yield where, parse(line, where)

    def query_lines(self, split: str | None) -> Iterator[tuple[str, str, str]]:
        """(where, query id, text) for each line of the split's queries file."""
        path = self.queries_path(split)
        if path is None:
            raise DataError(f"{self.root}: no queries file for split {split!r}")
        parse = _json_query if path.name.endswith((".jsonl", ".jsonl.gz")) else _tsv_query
        for where, line in numbered_lines(path):
            yield (where, *parse(line, where))

    def qrels(self, split: str) -> Qrels:
        path = self.qrels_path(split)
        if path is None:
            raise DataError(f"{self.root}: no qrels for split {split!r} (have: {', '.join(self.splits()) or 'none'})")
        return read_qrels(path)

    def as_input(self, split: str | None) -> dict[str, Any]:
        """The manifest input record: the files used and a sha256 over their content hashes."""
        assert self.root is not None
        files = [self.corpus_path(), self.queries_path(split)] + ([self.qrels_path(split)] if split else [])
        hashes = {str(p.name): cached_sha256(p) for p in files if p is not None}
        return {"kind": "dataset", "path": str(self.root.resolve()), "split": split, "files": hashes,
                "sha256": sha256_json(hashes)}


FORMATS: list[type[DatasetFormat]] = []  # tried in order; the first whose detect() is true reads the spec


def register(cls: type[DatasetFormat]) -> type[DatasetFormat]:
    FORMATS.append(cls)
    return cls


def open_format(spec: str, path: Path) -> DatasetFormat:
    """The reader of ``spec`` (an existing ``path``, or a spec some format knows without a file)."""
    for cls in FORMATS:
        if cls.detect(spec, path):
            return cls(spec, None if cls.name == "irds" else path)
    if path.is_dir():
        raise DataError(f"{path}: neither a BEIR dir (corpus.jsonl) nor an MS MARCO dir (collection.tsv)")
    raise DataError(f"{path}: unknown dataset file type (expected .jsonl, .jsonl.gz or .tsv)")


def _first(directory: Path, names: list[str]) -> Path | None:
    return next((directory / n for n in names if (directory / n).is_file()), None)


@register
class IrdsFormat(DatasetFormat):
    """``irds:<id>``: ir_datasets, when its local cache holds the files."""

    name = "irds"

    @classmethod
    def detect(cls, spec: str, path: Path) -> bool:
        return spec.startswith("irds:")

    @property
    def dataset_name(self) -> str:
        return self.spec[5:]

    def docs(self) -> Iterator[tuple[str, Doc]]:
        dataset = self._load()
        try:
            for index, doc in enumerate(dataset.docs_iter(), start=1):
                text = getattr(doc, "text", None) or getattr(doc, "body", "") or ""
                yield f"{self.spec}#doc{index}", Doc(str(doc.doc_id), getattr(doc, "title", "") or "", text)
        except Exception as error:  # ir_datasets raises many types when its files are absent offline
            raise self._missing(error) from None

    def query_lines(self, split: str | None) -> Iterator[tuple[str, str, str]]:
        return self._read(lambda d: [(f"{self.spec}#query{i}", str(q.query_id), q.text)
                                     for i, q in enumerate(d.queries_iter(), start=1)])

    def qrels(self, split: str) -> Qrels:
        def collect(dataset: Any) -> Qrels:
            qrels: Qrels = {}
            for q in dataset.qrels_iter():
                qrels.setdefault(str(q.query_id), {})[str(q.doc_id)] = int(q.relevance)
            return qrels

        return self._read(collect)

    def as_input(self, split: str | None) -> dict[str, Any]:
        return {"kind": "dataset", "path": self.spec, "sha256": sha256_json({"irds": self.dataset_name})}

    def _read(self, read: Callable[[Any], Any]) -> Any:
        dataset = self._load()
        try:
            return read(dataset)
        except Exception as error:
            raise self._missing(error) from None

    def _load(self) -> Any:
        try:
            import ir_datasets
        except ImportError as error:
            raise DataError(f"{self.spec}: ir_datasets is not installed ({error})") from None
        try:
            return ir_datasets.load(self.dataset_name)
        except KeyError:
            raise DataError(f"{self.spec}: ir_datasets knows no dataset of that id") from None

    def _missing(self, error: Exception) -> DataError:
        home = os.environ.get("IR_DATASETS_HOME", "~/.ir_datasets")
        return DataError(
            f"{self.spec}: ir_datasets could not read its files offline ({type(error).__name__}); download them "
            f"once on a machine with internet into {home} (or set IR_DATASETS_HOME), or pass the files as a "
            "BEIR/MS MARCO dir"
        )


@register
class BeirFormat(DatasetFormat):
    """A BEIR directory: ``corpus.jsonl[.gz]``, ``queries.jsonl``, ``qrels/<split>.tsv``."""

    name = "beir"
    judged_queries_only = True
    self_hits = True  # ArguAna, Quora: the queries are corpus documents with the same ids

    @classmethod
    def detect(cls, spec: str, path: Path) -> bool:
        return path.is_dir() and _first(path, ["corpus.jsonl", "corpus.jsonl.gz"]) is not None

    def corpus_path(self) -> Path | None:
        return _first(self.root, ["corpus.jsonl", "corpus.jsonl.gz"])

    def queries_path(self, split: str | None) -> Path | None:
        return _first(self.root, ["queries.jsonl", "queries.jsonl.gz"])

    def qrels_path(self, split: str) -> Path | None:
        return _first(self.root / "qrels", [f"{split}.tsv", f"{split}.trec"])

    def splits(self) -> list[str]:
        folder = self.root / "qrels"
        return sorted(p.stem for p in folder.iterdir() if p.suffix in (".tsv", ".trec")) if folder.is_dir() else []


@register
class MsMarcoFormat(DatasetFormat):
    """An MS MARCO directory: ``collection.tsv``, ``queries.<split>.tsv``, ``qrels.<split>.{tsv,trec,txt}``
    (or only queries and qrels, e.g. dev-small without the collection)."""

    name = "msmarco"

    @classmethod
    def detect(cls, spec: str, path: Path) -> bool:
        return path.is_dir() and (_first(path, ["collection.tsv", "collection.tsv.gz"]) is not None
                                  or any(path.glob("queries*.tsv")))

    def corpus_path(self) -> Path | None:
        return _first(self.root, ["collection.tsv", "collection.tsv.gz"])

    def queries_path(self, split: str | None) -> Path | None:
        names = [f"queries.{split}.tsv", f"queries.{split}.small.tsv"] if split else []
        return _first(self.root, names + ["queries.tsv"])

    def qrels_path(self, split: str) -> Path | None:
        names = [f"qrels.{split}.{ext}" for ext in ("tsv", "trec", "txt")]
        return _first(self.root, names + [f"qrels.{split}.small.{ext}" for ext in ("tsv", "trec", "txt")])


class CorpusFileFormat(DatasetFormat):
    """A corpus that is one file, recognised by its ``suffixes``."""

    suffixes: tuple[str, ...] = ()

    @classmethod
    def detect(cls, spec: str, path: Path) -> bool:
        return path.is_file() and path.name.endswith(cls.suffixes)

    def corpus_path(self) -> Path | None:
        return self.root


@register
class JsonlFormat(CorpusFileFormat):
    """A corpus file of JSON lines (``.jsonl``, ``.jsonl.gz``), e.g. ``wikipedia/passages.jsonl.gz``."""

    name = "jsonl"
    suffixes = (".jsonl", ".jsonl.gz")


@register
class TsvFormat(CorpusFileFormat):
    """A corpus file of ``id<TAB>text[<TAB>title]`` lines (``.tsv``, ``.tsv.gz``)."""

    name = "tsv"
    suffixes = (".tsv", ".tsv.gz")


def _json_doc(line: str, where: str) -> Doc:
    record = _json_object(line, where)
    doc_id = record.get("_id", record.get("docid", record.get("id")))
    if doc_id is None or str(doc_id) == "":
        raise DataError(f"{where}: document has no '_id'")
    text = record.get("text", record.get("contents", ""))
    if not isinstance(text, str):
        raise DataError(f"{where}: 'text' is not a string")
    return Doc(str(doc_id), str(record.get("title") or ""), text)


def _tsv_doc(line: str, where: str) -> Doc:
    parts = line.rstrip("\r\n").split("\t")
    if len(parts) == 2:
        return Doc(parts[0], "", parts[1])
    if len(parts) == 3:
        return Doc(parts[0], parts[2], parts[1])  # Tevatron-style id<TAB>text<TAB>title
    raise DataError(f"{where}: a collection line is 'id<TAB>text' (or id, text, title)")


def _json_query(line: str, where: str) -> tuple[str, str]:
    record = _json_object(line, where, "with '_id' and 'text'")
    qid = record.get("_id", record.get("query_id", record.get("id")))
    if qid is None or not isinstance(record.get("text"), str):
        raise DataError(f"{where}: a query needs '_id' and 'text'")
    return str(qid), record["text"]


def _tsv_query(line: str, where: str) -> tuple[str, str]:
    qid, tab, text = line.rstrip("\r\n").partition("\t")
    if not tab:
        raise DataError(f"{where}: a query line is 'id<TAB>text'")
    return qid, text


def _json_object(line: str, where: str, needs: str = "") -> dict[str, Any]:
    try:
        record = json.loads(line)
    except json.JSONDecodeError as error:
        raise DataError(f"{where}: malformed JSON ({error.msg})") from None
    if not isinstance(record, dict):
        raise DataError(f"{where}: expected a JSON object{' ' + needs if needs else ''}")
    return record
