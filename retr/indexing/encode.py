"""Resumable, sharded corpus encoding into chunk files.

The (filtered) corpus stream is cut into consecutive *chunks* of ``chunk_size`` documents, numbered from 0. A chunk
is the unit of work, of checkpointing and of sharding: ``--shard i/n`` encodes the chunks whose number is ``i``
modulo ``n``. Inside a chunk, passages are sorted by length and cut into token-budget batches, so a chunk's vectors
do not depend on which process encodes it: n shards merged give the same vectors as one process.

A finished chunk is two files, ``NNNNNN.ids.txt`` then ``NNNNNN.npy`` (float32), each written to a temporary name
and renamed; the ``.npy`` is the commit. A killed run leaves whole chunks only, and a re-run skips them.
"""

from __future__ import annotations

import json
import math
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable, Iterator

import numpy as np

from retr.data.artifacts import atomic_write_text
from retr.data.datasets import Doc
from retr.data.errors import DataError

STORE_META = "store.json"


@dataclass(frozen=True)
class Shard:
    index: int = 0
    count: int = 1

    @classmethod
    def parse(cls, text: str) -> "Shard":
        try:
            index, count = (int(part) for part in str(text).split("/"))
        except ValueError:
            raise ValueError(f"shard {text!r}: expected i/n, e.g. 0/2") from None
        if count < 1 or not 0 <= index < count:
            raise ValueError(f"shard {text!r}: need 0 <= i < n")
        return cls(index, count)

    def owns(self, chunk: int) -> bool:
        return chunk % self.count == self.index

    def __str__(self) -> str:
        return f"{self.index}/{self.count}"


class ChunkStore:
    """A folder of finished chunks, tied to a fingerprint of what made them (stale chunks are dropped)."""

    def __init__(self, folder: Path, fingerprint: str | None = None) -> None:
        self.folder = Path(folder)
        self.folder.mkdir(parents=True, exist_ok=True)
        if fingerprint is not None:
            meta = self.folder / STORE_META
            previous = json.loads(meta.read_text()).get("fingerprint") if meta.is_file() else None
            if previous != fingerprint:
                for old in self.folder.iterdir():
                    old.unlink()
                atomic_write_text(meta, json.dumps({"fingerprint": fingerprint}) + "\n")

    def vectors_path(self, chunk: int) -> Path:
        return self.folder / f"{chunk:06d}.npy"

    def ids_path(self, chunk: int) -> Path:
        return self.folder / f"{chunk:06d}.ids.txt"

    def done(self, chunk: int) -> bool:
        return self.vectors_path(chunk).is_file() and self.ids_path(chunk).is_file()

    def finished(self) -> list[int]:
        return sorted(int(p.name[:6]) for p in self.folder.glob("[0-9]" * 6 + ".npy") if self.done(int(p.name[:6])))

    def write(self, chunk: int, ids: list[str], vectors: np.ndarray) -> None:
        if len(ids) != len(vectors):
            raise ValueError(f"chunk {chunk}: {len(ids)} ids for {len(vectors)} vectors")
        atomic_write_text(self.ids_path(chunk), "".join(f"{doc_id}\n" for doc_id in ids))
        tmp = self.vectors_path(chunk).with_suffix(".npy.part")
        with open(tmp, "wb") as handle:
            np.save(handle, np.ascontiguousarray(vectors, dtype=np.float32))
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, self.vectors_path(chunk))

    def read_ids(self, chunk: int) -> list[str]:
        return self.ids_path(chunk).read_text().splitlines()

    def read_vectors(self, chunk: int, mmap: bool = True) -> np.ndarray:
        return np.load(self.vectors_path(chunk), mmap_mode="r" if mmap else None)




def select_docs(docs: Iterable[Doc], limit: int | None = None, keep_ids: set[str] | None = None) -> Iterator[Doc]:
    """The documents to encode: those in ``keep_ids`` (when given), the first ``limit`` of them (when given)."""
    count = 0
    for doc in docs:
        if limit is not None and count >= limit:
            return
        if keep_ids is not None and doc.id not in keep_ids:
            continue
        if "\n" in doc.id or "\r" in doc.id:
            raise DataError(f"document id {doc.id!r} contains a line break; ids must fit on one line")
        count += 1
        yield doc


def read_id_file(path: Path) -> set[str]:
    """One document id per line (blank lines and ``#`` comments ignored)."""
    try:
        lines = Path(path).read_text().splitlines()
    except OSError as error:
        raise DataError(f"{path}: cannot read the document-id file ({error.strerror})") from None
    ids = {line.strip() for line in lines if line.strip() and not line.lstrip().startswith("#")}
    if not ids:
        raise DataError(f"{path}: no document ids in the file")
    return ids


def chunked(docs: Iterable[Doc], size: int) -> Iterator[tuple[int, list[Doc]]]:
    batch: list[Doc] = []
    number = 0
    for doc in docs:
        batch.append(doc)
        if len(batch) == size:
            yield number, batch
            number, batch = number + 1, []
    if batch:
        yield number, batch


def encode_corpus(encoder: Any, docs: Iterable[Doc], store: ChunkStore, chunk_size: int = 1024,
                  shard: Shard = Shard(), total_docs: int | None = None, progress: bool = True) -> dict[str, Any]:
    """Encode this shard's chunks that the store lacks; returns counts and the throughput of this run."""
    from tqdm.auto import tqdm

    if chunk_size < 1:
        raise ValueError("chunk_size must be at least 1")
    owned_total = None
    if total_docs is not None:
        chunks = math.ceil(total_docs / chunk_size)
        owned_total = sum(min(chunk_size, total_docs - c * chunk_size) for c in range(chunks) if shard.owns(c))
    stats = {"docs": 0, "chunks": 0, "shard_docs": 0, "encoded_docs": 0, "resumed_docs": 0, "tokens": 0}
    seconds = 0.0
    bar = tqdm(total=owned_total, unit="passage", desc=f"encode {shard}", disable=not progress, smoothing=0.1)
    with bar:
        for number, batch in chunked(docs, chunk_size):
            stats["docs"] += len(batch)
            stats["chunks"] += 1
            if not shard.owns(number):
                continue
            stats["shard_docs"] += len(batch)
            if store.done(number):
                stats["resumed_docs"] += len(batch)
                bar.update(len(batch))
                continue
            started = time.perf_counter()
            sequences = encoder.tokenize([doc.contents for doc in batch], "passage")
            vectors = encoder.encode_ids(sequences, bar=bar)
            store.write(number, [doc.id for doc in batch], vectors)
            seconds += time.perf_counter() - started
            stats["encoded_docs"] += len(batch)
            stats["tokens"] += sum(len(s) for s in sequences)
    stats["encode_seconds"] = round(seconds, 3)
    stats["passages_per_s"] = round(stats["encoded_docs"] / seconds, 2) if seconds else None
    stats["tokens_per_s"] = round(stats["tokens"] / seconds, 1) if seconds else None
    return stats
