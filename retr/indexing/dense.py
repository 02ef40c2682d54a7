"""`retr index`: encode a corpus into a FAISS index (artifact kind "dense-index"), optionally in shards.

One process: ``build_index(IndexConfig(corpus=..., encoder=...))`` -> ``dense-index``. n processes (or GPUs):
``shard="i/n"`` -> ``dense-shard`` artifacts holding their chunks, then ``merge_shards(MergeConfig(shards=[...]))``
-> the ``dense-index`` that one process would have written (same ids, same vectors, same run files).

Under ``torchrun`` (WORLD_SIZE > 1) one launch does both: process RANK encodes shard RANK/WORLD_SIZE into
``<out>.shards/RANK-of-WORLD_SIZE`` (on GPU LOCAL_RANK when there are GPUs), the processes wait for each other
(a gloo group), rank 0 merges into ``<out>`` and removes the shards. A shard finished by an earlier launch of the
same config and inputs is reused, so a launch that died in the merge is re-run at the cost of the merge only.

A ``dense-index`` holds ``embeddings/NNNNNN.npy`` + ``NNNNNN.ids.txt`` (the chunks, float32), ``ids.txt`` (the
string id of each FAISS row, in row order) and ``index.faiss``, which stores the vectors at ``precision`` (fp32,
fp16, int8 or binary; the float32 chunks stay for rescoring). Its manifest names the corpus and the encoder
(backbone identity and options), which :func:`retr.retrieval.dense_search.search_dense` uses for the queries.
"""

from __future__ import annotations

import json
import os
import shutil
from dataclasses import dataclass, field, replace
from datetime import timedelta
from pathlib import Path
from typing import Any

import numpy as np

from retr.data.options import include, included, option
from retr.data.artifacts import (Artifact, ArtifactError, ArtifactWriter, MANIFEST, check_output, config_dict,
                                 open_artifact, sha256_json)
from retr.data.errors import UsageError
from retr.data.datasets import Dataset
from retr.data.artifacts import cached_sha256  # sha256 cached by (path, size, mtime)
from retr.indexing import encode as encoding
from retr.indexing.faiss_index import build_faiss, faiss_factory, save_faiss
from retr.retrieval.dense_layout import EMBEDDINGS, IDS, INDEX, KIND, SHARD_KIND
from retr.retrieval.encoder_options import EncoderOptions
# Config fields that do not change the vectors or the index: a merge ignores them when comparing shards.
LOCAL_FIELDS = ("out", "overwrite", "shard", "threads", "gpu")
# How long the processes of a torchrun launch wait for the slowest one to finish its shard (and for the merge).
LAUNCH_WAIT = timedelta(hours=24)


@dataclass
@include(EncoderOptions, after="prompt", unset="Default: the model's ({default})")
class IndexConfig:
    """Options of `retr index`: its own, plus the fields of EncoderOptions after ``prompt`` (None: the model's)."""

    corpus: str = option("scifact", "Corpus: a dataset name under the data dir (scifact), a BEIR/MS MARCO dir, a "
                         ".jsonl[.gz]/.tsv file or irds:<id>")
    out: Path = option(Path("runs/index"), "Output artifact directory")
    encoder: str = option("default", "default (embedded SmolLM2-135M-Instruct), minilm (embedded all-MiniLM-L6-v2), "
                          "a `retr train` output, a HF model dir or hub id, or bm25")
    factory: str = option("Flat", "FAISS index_factory string, inner product: Flat, IVF1024,Flat, HNSW32, "
                          "IVF256,PQ16 ...")
    precision: str = option("fp32", "Vectors in the FAISS index: fp32 | fp16 | int8 (FAISS scalar quantiser) | binary "
                            "(sign bits, Hamming). fp16/int8 replace the factory's Flat storage (IVF1024,Flat -> "
                            "IVF1024,SQ8); binary takes Flat, IVFn,Flat or HNSWm. The float32 vectors are kept for "
                            "`retr search --rescore`")
    prompt: str | None = option(None, "Prompt preset for queries and passages: none, e5, llara")
    batch_tokens: int | None = option(None, "Tokens per batch (rows x longest row). Default: 16384 CPU, 65536 GPU")
    chunk_size: int = option(1024, "Documents per checkpointed chunk (the unit of resume and sharding)")
    shard: str = option("0/1", "i/n: encode every n-th chunk starting at i (one process or GPU per shard); combine "
                        "the n outputs with --merge")
    limit: int | None = option(None, "Encode only the first N documents (after --doc-ids)")
    doc_ids: Path | None = option(None, "File of document ids (one per line) to encode; others are skipped")
    train_size: int = option(65536, "Vectors sampled to train IVF/PQ indexes")
    search_params: str = option("", "FAISS search parameters stored for `retr search`, e.g. nprobe=16 or "
                                "efSearch=128")
    seed: int = option(0, "Seed of the training sample")
    threads: int | None = option(None, "Torch CPU threads. Default: torch's choice")
    gpu: bool | None = option(None, "FAISS on the GPU. Default: when faiss-gpu sees one")
    overwrite: bool = option(False, "Replace an existing output artifact")

    def __post_init__(self) -> None:
        self.out = Path(self.out)
        self.doc_ids = Path(self.doc_ids) if self.doc_ids else None
        for name in ("batch_tokens", "chunk_size", "limit", "train_size", "threads"):
            if getattr(self, name, None) is not None and getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}")
        faiss_factory(self.factory, self.precision)  # refuses an unknown precision or one the factory cannot take


@dataclass
class MergeConfig:
    """Options of `retr index --merge`: the dense-shard artifacts of one sharded run, all n of them."""

    shards: list[str] = field(default_factory=list)
    out: Path = Path("runs/index")
    gpu: bool | None = None
    overwrite: bool = False

    def __post_init__(self) -> None:
        self.out = Path(self.out)
        self.shards = [str(s) for s in self.shards]


def encoder_overrides(config: IndexConfig) -> dict[str, Any]:
    """EncoderOptions overrides from the index config (``prompt`` sets both templates unless they are given)."""
    values = included(config, EncoderOptions)
    if config.prompt is not None:
        values["query_template"] = values["query_template"] or config.prompt
        values["passage_template"] = values["passage_template"] or config.prompt
    return values


def corpus_record(dataset: Dataset) -> dict[str, Any]:
    """The corpus input record; a corpus that is itself an artifact (e.g. a subset) is recorded as that artifact."""
    if dataset.root is not None and (dataset.root / MANIFEST).is_file():
        return {**open_artifact(dataset.root).as_input(), "corpus": True}
    return {**dataset.as_input(None), "corpus": True}


@dataclass(frozen=True)
class Launch:
    """This process's place in a torchrun launch (RANK, WORLD_SIZE, LOCAL_RANK from the environment)."""

    rank: int = 0
    world: int = 1
    local_rank: int = 0

    @classmethod
    def from_env(cls) -> "Launch":
        try:
            return cls(int(os.environ.get("RANK", "0")), int(os.environ.get("WORLD_SIZE", "1")),
                       int(os.environ.get("LOCAL_RANK", "0")))
        except ValueError:
            raise UsageError("RANK / WORLD_SIZE / LOCAL_RANK in the environment are not integers; launch with "
                             "torchrun or unset them") from None


def shards_folder(out: Path) -> Path:
    """Where the processes of a torchrun launch write their dense-shard artifacts."""
    return out.parent / f"{out.name}.shards"


def build_index(config: IndexConfig) -> Path:
    """Encode ``config.corpus`` (this process's shard of it) and write the artifact; see the module docstring.

    Under torchrun with several processes: every process encodes its shard and rank 0 merges them into
    ``config.out`` (the same ids and vectors as one process writes)."""
    launch = Launch.from_env()
    if launch.world > 1:
        return _build_launched(config, launch)
    return _build(config)


def _build_launched(config: IndexConfig, launch: Launch) -> Path:
    """One torchrun launch: shard ``launch.rank`` of ``launch.world``, a wait for all, rank 0's merge."""
    if config.encoder == "bm25":
        raise UsageError("--encoder bm25 is built by one process (Pyserini threads: --threads); run it without "
                         "torchrun")
    if config.shard != "0/1":
        raise UsageError(f"--shard {config.shard} under torchrun: the launch already splits the corpus over its "
                         f"{launch.world} processes; drop --shard (or run one plain process per shard)")
    check_output(config.out, KIND, config.overwrite)  # before any encoding, on every process
    folder = shards_folder(config.out)
    mine = replace(config, out=folder / f"{launch.rank}-of-{launch.world}", shard=f"{launch.rank}/{launch.world}")
    import torch
    import torch.distributed as dist

    _build(mine, device=f"cuda:{launch.local_rank}" if torch.cuda.is_available() else None, reuse=True)

    created = not dist.is_initialized()
    if created:
        dist.init_process_group(backend="gloo", timeout=LAUNCH_WAIT)
    try:
        dist.barrier()  # every shard is finished
        if launch.rank == 0:
            paths = [folder / f"{i}-of-{launch.world}" for i in range(launch.world)]
            unseen = [str(p) for p in paths if not (p / MANIFEST).is_file()]
            if unseen:
                raise ArtifactError(f"{', '.join(unseen)}: not visible to rank 0; --out must be on a file system "
                                    "that every node shares")
            merge_shards(MergeConfig(shards=[str(p) for p in paths], out=config.out, gpu=config.gpu,
                                     overwrite=config.overwrite))
            for path in paths:  # the index holds the vectors (hard links or copies); the shards were ours
                shutil.rmtree(path)
            if not any(folder.iterdir()):
                folder.rmdir()
        dist.barrier()  # no process reports the index before it is written
    finally:
        if created:
            dist.destroy_process_group()
    return config.out


def _build(config: IndexConfig, device: str | None = None, reuse: bool = False) -> Path:
    """One process's artifact (``dense-index``, or ``dense-shard`` for ``shard`` i/n with n > 1); ``reuse``: a
    finished artifact at ``out`` made from the same config and inputs is returned as it is."""
    if config.encoder == "bm25":
        return _build_bm25(config)
    import torch

    from retr.retrieval.backbone import is_model_artifact
    from retr.retrieval.encoder import load_encoder

    shard = encoding.Shard.parse(config.shard)
    if not reuse:  # a reused shard is checked against its config below; a new output before the model loads
        check_output(config.out, KIND if shard.count == 1 else SHARD_KIND, config.overwrite)
    if config.threads:
        import faiss

        torch.set_num_threads(config.threads)
        faiss.omp_set_num_threads(config.threads)
    dataset = Dataset(config.corpus)
    keep = encoding.read_id_file(config.doc_ids) if config.doc_ids else None
    encoder = load_encoder(config.encoder, device=device, **encoder_overrides(config))
    if config.batch_tokens:
        encoder.batch_tokens = config.batch_tokens
    faiss_factory(config.factory, config.precision, encoder.dim)  # binary needs dim % 8 == 0: refused before encoding
    inputs: list[Any] = [corpus_record(dataset), encoder.identity()]
    if is_model_artifact(config.encoder):
        inputs.append(open_artifact(config.encoder, kind="model"))
    if config.doc_ids:
        inputs.append({"kind": "doc-ids", "path": str(Path(config.doc_ids).resolve()),
                       "sha256": cached_sha256(Path(config.doc_ids))})
    records = [item.as_input() if isinstance(item, Artifact) else item for item in inputs]
    settings = config_dict(config)
    kind = KIND if shard.count == 1 else SHARD_KIND
    fingerprint = sha256_json({"config": {k: v for k, v in settings.items() if k not in LOCAL_FIELDS},
                               "inputs": records})
    if reuse and _same_run(config.out, kind, settings, records):
        return config.out
    with ArtifactWriter(config.out, kind, settings, records, overwrite=config.overwrite) as writer:
        store = encoding.ChunkStore(writer.dir / EMBEDDINGS, fingerprint)
        total = sum(1 for _ in encoding.select_docs(dataset.corpus(), config.limit, keep))
        if total == 0:
            raise ArtifactError(f"{config.corpus}: no documents to encode (check --limit / --doc-ids)")
        stats = encoding.encode_corpus(
            encoder, encoding.select_docs(dataset.corpus(), config.limit, keep), store, config.chunk_size, shard,
            total_docs=total,
        )
        writer.metrics.update(stats, dim=encoder.dim, dtype="float32", compute=encoder.compute, encoder=encoder.spec,
                              shard=str(shard), corpus_stats=dict(dataset.stats))
        if keep is not None and config.limit is None:
            writer.metrics["doc_ids_not_in_corpus"] = len(keep) - stats["docs"]
        writer.timing.update(encode_seconds=stats["encode_seconds"], items_per_s=stats["passages_per_s"],
                             tokens_per_s=stats["tokens_per_s"])
        if shard.count == 1:
            writer.metrics.update(_assemble({c: store for c in store.finished()}, stats["chunks"], writer.dir,
                                            config.factory, config.train_size, config.seed, config.gpu,
                                            config.precision))
    return config.out


def _same_run(out: Path, kind: str, settings: dict[str, Any], records: list[dict[str, Any]]) -> bool:
    """Whether ``out`` holds a finished ``kind`` artifact of this config (local fields aside) and these inputs."""
    if not (out / MANIFEST).is_file():
        return False
    try:
        existing = open_artifact(out, kind=kind)
    except ArtifactError:
        return False
    same = {k: v for k, v in json.loads(json.dumps(settings)).items() if k not in LOCAL_FIELDS}
    return ({k: v for k, v in existing.config.items() if k not in LOCAL_FIELDS} == same
            and _plain_inputs(existing) == json.loads(json.dumps(records)))


def _build_bm25(config: IndexConfig) -> Path:
    from retr.indexing.bm25 import BM25IndexConfig, build_bm25_index

    return build_bm25_index(BM25IndexConfig(corpus=config.corpus, out=config.out, threads=config.threads or 2,
                                            overwrite=config.overwrite))


def _assemble(stores: dict[int, encoding.ChunkStore], chunks: int, out: Path, factory: str, train_size: int,
              seed: int, gpu: bool | None, precision: str = "fp32") -> dict[str, Any]:
    """Concatenate chunks 0..chunks-1 in order into ``ids.txt`` and a FAISS index under ``out``."""
    missing = [c for c in range(chunks) if c not in stores]
    if missing:
        raise ArtifactError(f"{out}: chunks {missing[:5]} were not encoded; re-run the index stage")
    ids: list[str] = []
    parts = []
    for chunk in range(chunks):
        ids.extend(stores[chunk].read_ids(chunk))
        parts.append(stores[chunk].read_vectors(chunk))
    vectors = np.concatenate(parts) if len(parts) > 1 else np.asarray(parts[0])
    if len(set(ids)) != len(ids):
        raise ArtifactError(f"{out}: duplicate document ids across chunks; rebuild the index from scratch")
    index = build_faiss(vectors, factory, train_size=train_size, seed=seed, gpu=gpu, progress=True,
                        precision=precision)
    save_faiss(index, out / INDEX)
    (out / IDS).write_text("".join(f"{doc_id}\n" for doc_id in ids))
    return {"vectors": int(index.ntotal), "factory": factory, "precision": precision,
            "faiss_factory": faiss_factory(factory, precision), "faiss_type": type(index).__name__,
            "index_bytes": (out / INDEX).stat().st_size, "full_vectors_bytes": int(vectors.nbytes)}


def merge_shards(config: MergeConfig) -> Path:
    """Combine the n ``dense-shard`` artifacts of one sharded run into the ``dense-index`` one process writes."""
    if not config.shards:
        raise ArtifactError("merge: no shard artifacts given")
    shards = [open_artifact(path, kind="dense-shard", verify=True) for path in config.shards]
    first = shards[0]
    common = {k: v for k, v in first.config.items() if k not in LOCAL_FIELDS}
    count = encoding.Shard.parse(first.config["shard"]).count
    seen: dict[int, Artifact] = {}
    for artifact in shards:
        other = {k: v for k, v in artifact.config.items() if k not in LOCAL_FIELDS}
        if other != common or _plain_inputs(artifact) != _plain_inputs(first):
            raise ArtifactError(f"{artifact.path}: built with another config, corpus or encoder than {first.path}; "
                                "merge only the shards of one run")
        shard = encoding.Shard.parse(artifact.config["shard"])
        if shard.count != count or shard.index in seen:
            raise ArtifactError(f"{artifact.path}: shard {shard} does not fit the others (or is given twice)")
        seen[shard.index] = artifact
    if len(seen) != count:
        missing = sorted(set(range(count)) - set(seen))
        raise ArtifactError(f"merge: shards {', '.join(f'{i}/{count}' for i in missing)} are missing; pass all {count}")
    chunks = first.manifest["metrics"]["chunks"]
    settings = {**common, "out": str(config.out), "merged_shards": count, "gpu": config.gpu}
    inputs = _plain_inputs(first) + [seen[i] for i in range(count)]
    with ArtifactWriter(config.out, KIND, settings, inputs, overwrite=config.overwrite) as writer:
        target = encoding.ChunkStore(writer.dir / EMBEDDINGS)
        for index in range(count):
            source = encoding.ChunkStore(seen[index].path / EMBEDDINGS)
            for chunk in source.finished():
                for path in (source.ids_path(chunk), source.vectors_path(chunk)):
                    _link_or_copy(path, target.folder / path.name)
        metrics = {k: first.manifest["metrics"][k] for k in ("docs", "chunks", "dim", "dtype", "encoder")}
        metrics["compute"] = ", ".join(sorted({a.manifest["metrics"].get("compute", "float32") for a in shards}))
        metrics["tokens"] = sum(a.manifest["metrics"].get("tokens", 0) for a in shards)
        metrics["shards"] = {str(i): seen[i].manifest.get("timing", {}) for i in range(count)}
        writer.metrics.update(metrics)
        writer.metrics.update(_assemble({c: target for c in target.finished()}, chunks, writer.dir, common["factory"],
                                        common["train_size"], common["seed"], config.gpu,
                                        common.get("precision", "fp32")))
    return config.out


def _plain_inputs(artifact: Artifact) -> list[dict[str, Any]]:
    """The corpus, encoder (and model / doc-id) records of a shard manifest."""
    return [dict(record) for record in artifact.manifest.get("inputs", [])]


def _link_or_copy(source: Path, target: Path) -> None:
    try:
        os.link(source, target)
    except OSError:
        shutil.copy2(source, target)


def load_embeddings(index: Artifact | Path) -> tuple[list[str], np.ndarray]:
    """(ids, float32 [n, dim]) of a dense-index, in FAISS row order."""
    artifact = index if isinstance(index, Artifact) else open_artifact(index, kind=KIND)
    artifact.verify(under=EMBEDDINGS)  # the vectors are read from here, not from the FAISS file
    store = encoding.ChunkStore(artifact.path / EMBEDDINGS)
    chunks = store.finished()
    ids = [doc_id for chunk in chunks for doc_id in store.read_ids(chunk)]
    return ids, np.concatenate([store.read_vectors(chunk, mmap=False) for chunk in chunks])
