"""TREC run files and qrels (TREC four-column or BEIR ``query-id corpus-id score`` TSV)."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Mapping

from retr.data.errors import DataError
from retr.data.lines import numbered_lines

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
    """A TREC run; refuses malformed lines, scores that are not finite numbers and repeated (query, doc) pairs."""
    run: Run = {}
    for where, line in numbered_lines(path):
        parts = line.split()
        if len(parts) != 6:
            raise DataError(f"{where}: a TREC run line has 6 fields (qid Q0 docid rank score tag)")
        try:
            score = float(parts[4])
        except ValueError:
            raise DataError(f"{where}: score {parts[4]!r} is not a number") from None
        if not math.isfinite(score):
            raise DataError(f"{where}: score {parts[4]!r} is not a finite number")
        hits = run.setdefault(parts[0], {})
        if parts[2] in hits:
            raise DataError(f"{where}: document {parts[2]!r} is listed twice for query {parts[0]!r}")
        hits[parts[2]] = score
    return run


def read_qrels(path: str | Path) -> Qrels:
    """Read TREC qrels (``qid iter docid rel``) or BEIR TSV (``query-id<TAB>corpus-id<TAB>score``, with header);
    grades must be integers."""
    qrels: Qrels = {}
    for number, (where, line) in enumerate(numbered_lines(path)):
        parts = line.split()
        if number == 0 and parts[0] in ("query-id", "qid", "query_id"):
            continue
        if len(parts) == 4:
            qid, docid, rel = parts[0], parts[2], parts[3]
        elif len(parts) == 3:
            qid, docid, rel = parts
        else:
            raise DataError(f"{where}: qrels lines have 3 (BEIR) or 4 (TREC) fields, got {len(parts)}")
        qrels.setdefault(qid, {})[docid] = _grade(rel, where)
    return qrels


def _grade(text: str, where: str) -> int:
    """An integer grade; "1.0" is accepted as 1, "1.7", "inf" and words are refused."""
    try:
        value = float(text)
    except ValueError:
        raise DataError(f"{where}: relevance {text!r} is not a number") from None
    if not math.isfinite(value) or value != int(value):
        raise DataError(f"{where}: relevance {text!r} is not an integer grade")
    return int(value)


def positives(qrels: Mapping[str, Mapping[str, int]], min_rel: int = 1) -> dict[str, list[str]]:
    return {qid: sorted(d for d, r in docs.items() if r >= min_rel) for qid, docs in qrels.items()}
