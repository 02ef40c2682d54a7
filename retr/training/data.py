"""Training examples and their deterministic order.

- Fine-tuning reads "training-set" artifacts (``train.jsonl``, one query per line with its positives and mined
  hard negatives, as ``retr mine`` writes it; see docs/training.md).
- LLaRA reads a passage corpus whose ids are ``<pageid>-<k>``: the passage following ``p-k`` is ``p-(k+1)``.

The order is a pure function of (seed, micro-batch number): micro-batch ``m`` of a run is always the same
examples with the same sampled positive and negatives, on any number of processes, which is what makes a resumed
run identical to an uninterrupted one and a 2-process run identical to a 1-process run.
"""

from __future__ import annotations

import json
import random
from dataclasses import dataclass
from pathlib import Path

from retr.data.datasets import Dataset, Doc
from retr.data.errors import DataError


@dataclass(frozen=True)
class QueryExample:
    query: str
    positives: tuple[str, ...]
    negatives: tuple[str, ...]  # texts in mined rank order (hardest first)


@dataclass(frozen=True)
class PassagePair:
    passage: str
    next: str


@dataclass(frozen=True)
class QueryGroup:
    """One query of a micro-batch: its sampled positive and ``n`` negatives (hardest of the sample first)."""

    query: str
    positive: str
    negatives: tuple[str, ...]

    @property
    def candidates(self) -> tuple[str, ...]:
        return (self.positive, *self.negatives)


def _contents(record: dict, where: str) -> str:
    if not isinstance(record, dict) or "text" not in record:
        raise DataError(f"{where}: a passage needs at least a 'text' field")
    return Doc(str(record.get("id", "")), str(record.get("title") or ""), str(record["text"])).contents


def read_training_set(path: Path, limit: int = 0) -> list[QueryExample]:
    """Read ``train.jsonl``; queries without positives or without negatives are refused with file:line."""
    examples = []
    with open(path, encoding="utf-8") as handle:
        for number, line in enumerate(handle, 1):
            if not line.strip():
                continue
            where = f"{path}:{number}"
            try:
                record = json.loads(line)
            except json.JSONDecodeError as error:
                raise DataError(f"{where}: malformed JSON ({error.msg})") from None
            if not isinstance(record, dict) or not isinstance(record.get("query"), str):
                raise DataError(f"{where}: expected an object with a 'query' string")
            positives = tuple(_contents(p, where) for p in record.get("positives") or [])
            negatives = sorted(record.get("negatives") or [], key=lambda n: n.get("rank", 0))
            if not positives:
                raise DataError(f"{where}: query {record.get('query_id')!r} has no positive passage")
            if not negatives:
                raise DataError(f"{where}: query {record.get('query_id')!r} has no negative; re-mine with a deeper k")
            examples.append(QueryExample(record["query"], positives, tuple(_contents(n, where) for n in negatives)))
            if limit and len(examples) >= limit:
                break
    if not examples:
        raise DataError(f"{path}: no training examples")
    return examples


def read_passage_pairs(spec: str, limit: int = 0) -> list[PassagePair]:
    """Consecutive passages of one page (``p-k`` then ``p-(k+1)``), in corpus order."""
    by_id: dict[str, str] = {}
    order: list[str] = []
    for doc in Dataset(spec).corpus():
        by_id[doc.id] = doc.contents
        order.append(doc.id)
    pairs = []
    for doc_id in order:
        page, sep, k = doc_id.rpartition("-")
        if not sep or not k.isdigit():
            raise DataError(f"{spec}: id {doc_id!r} is not '<pageid>-<k>', so the next passage is unknown")
        following = by_id.get(f"{page}-{int(k) + 1}")
        if following is not None:
            pairs.append(PassagePair(by_id[doc_id], following))
            if limit and len(pairs) >= limit:
                break
    if not pairs:
        raise DataError(f"{spec}: no passage has a next passage (ids '<pageid>-<k>' with k and k+1)")
    return pairs


class Schedule:
    """Which examples form global micro-batch ``m``: epochs are seeded permutations, the last partial batch dropped."""

    def __init__(self, n_examples: int, batch_size: int, seed: int):
        if n_examples < batch_size:
            raise DataError(f"{n_examples} training examples but batch_size {batch_size}; lower --batch-size")
        self.n, self.batch_size, self.seed = n_examples, batch_size, seed
        self.per_epoch = n_examples // batch_size
        self._cache: tuple[int, list[int]] | None = None

    def _order(self, epoch: int) -> list[int]:
        if self._cache is None or self._cache[0] != epoch:
            order = list(range(self.n))
            random.Random(f"{self.seed}/{epoch}").shuffle(order)
            self._cache = (epoch, order)
        return self._cache[1]

    def batch(self, m: int) -> tuple[int, list[int]]:
        """(epoch, example indices) of micro-batch ``m``."""
        epoch, k = divmod(m, self.per_epoch)
        return epoch, self._order(epoch)[k * self.batch_size : (k + 1) * self.batch_size]


def sample_group(example: QueryExample, n_negatives: int, seed: int, epoch: int, index: int) -> QueryGroup:
    """The positive and negatives of one query for one epoch (seeded; fewer mined negatives are cycled)."""
    rng = random.Random(f"{seed}/{epoch}/{index}")
    positive = rng.choice(example.positives)
    pool = list(range(len(example.negatives)))
    picked: list[int] = []
    while len(picked) < n_negatives:
        picked += rng.sample(pool, min(len(pool), n_negatives - len(picked)))
    return QueryGroup(example.query, positive, tuple(example.negatives[i] for i in sorted(picked)))
