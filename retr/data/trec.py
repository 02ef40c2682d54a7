"""TREC run files and qrels (TREC four-column or BEIR ``query-id corpus-id score`` TSV)."""

from __future__ import annotations

from pathlib import Path
from typing import Iterable, Mapping

from retr.data.errors import DataError

Run = dict[str, dict[str, float]]
Qrels = dict[str, dict[str, int]]


def write_run(path: str | Path, run: Mapping[str, Mapping[str, float]], tag: str = "retr") -> None:
    """Write a run sorted by query id, then score descending, then doc id (ties broken deterministically)."""
    with open(path, "w") as out:
        for qid in sorted(run):
            ranked = sorted(run[qid].items(), key=lambda item: (-item[1], item[0]))
            for rank, (docid, score) in enumerate(ranked, start=1):
                out.write(f"{qid} Q0 {docid} {rank} {score:.6f} {tag}\n")


def read_run(path: str | Path) -> Run:
    run: Run = {}
    with open(path) as handle:
        for line_no, line in enumerate(handle, start=1):
            if not line.strip():
                continue
            parts = line.split()
            if len(parts) != 6:
                raise DataError(f"{path}:{line_no}: a TREC run line has 6 fields (qid Q0 docid rank score tag)")
            try:
                score = float(parts[4])
            except ValueError:
                raise DataError(f"{path}:{line_no}: score {parts[4]!r} is not a number") from None
            run.setdefault(parts[0], {})[parts[2]] = score
    return run


def read_qrels(path: str | Path) -> Qrels:
    """Read TREC qrels (``qid iter docid rel``) or BEIR TSV (``query-id<TAB>corpus-id<TAB>score``, with header)."""
    qrels: Qrels = {}
    with open(path) as handle:
        for line_no, line in enumerate(handle, start=1):
            parts = line.split()
            if not parts:
                continue
            if line_no == 1 and parts[0] in ("query-id", "qid", "query_id"):
                continue
            if len(parts) == 4:
                qid, docid, rel = parts[0], parts[2], parts[3]
            elif len(parts) == 3:
                qid, docid, rel = parts
            else:
                raise DataError(f"{path}:{line_no}: qrels lines have 3 (BEIR) or 4 (TREC) fields, got {len(parts)}")
            try:
                qrels.setdefault(qid, {})[docid] = int(float(rel))
            except ValueError:
                raise DataError(f"{path}:{line_no}: relevance {rel!r} is not a number") from None
    return qrels


def write_qrels(path: str | Path, qrels: Mapping[str, Mapping[str, int]]) -> None:
    with open(path, "w") as out:
        for qid in sorted(qrels):
            for docid in sorted(qrels[qid]):
                out.write(f"{qid} 0 {docid} {qrels[qid][docid]}\n")


def positives(qrels: Mapping[str, Mapping[str, int]], min_rel: int = 1) -> dict[str, list[str]]:
    return {qid: sorted(d for d, r in docs.items() if r >= min_rel) for qid, docs in qrels.items()}


def iter_lines(path: str | Path) -> Iterable[tuple[int, str]]:
    with open(path) as handle:
        yield from enumerate(handle, start=1)
