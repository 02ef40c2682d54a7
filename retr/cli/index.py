"""Encode a corpus into a FAISS index (resumable, shardable over processes/GPUs), or a BM25 index (--encoder bm25)."""

from __future__ import annotations

from pathlib import Path
from typing import List, Optional

import typer

NAME = "index"


def command(
    corpus: str = typer.Option(None, help="Corpus: a dataset name under the data dir (scifact), a BEIR/MS MARCO "
                               "dir, a .jsonl[.gz]/.tsv file or irds:<id>. Default: scifact."),
    out: Path = typer.Option(None, help="Output artifact directory. Default: runs/index."),
    encoder: str = typer.Option(None, help="default (embedded SmolLM2-135M-Instruct), minilm (embedded "
                                "all-MiniLM-L6-v2), a `retr train` output, a HF model dir or hub id, or bm25."),
    factory: str = typer.Option(None, help="FAISS index_factory string, inner product: Flat, IVF1024,Flat, "
                                "HNSW32, IVF256,PQ16 ... Default: Flat."),
    prompt: str = typer.Option(None, help="Prompt preset for queries and passages: none, e5, llara."),
    pooling: str = typer.Option(None, help="mean | last | first | weighted_mean. Default: mean (or the model's)."),
    attention: str = typer.Option(None, help="bidirectional | causal (decoders only). Default: bidirectional."),
    query_template: str = typer.Option(None, help="Query template with {text}, or a preset name."),
    passage_template: str = typer.Option(None, help="Passage template with {text}, or a preset name."),
    normalize: Optional[bool] = typer.Option(None, "--normalize/--no-normalize", help="L2-normalise vectors "
                                             "(default: yes)."),
    max_query_length: int = typer.Option(None, help="Max query tokens, prompt included. Default: 64."),
    max_passage_length: int = typer.Option(None, help="Max passage tokens, prompt included. Default: 256."),
    dtype: str = typer.Option(None, help="auto (fp32 on CPU, bf16 on GPU) | float32 | bfloat16 | float16."),
    quantize: str = typer.Option(None, help="int8: dynamic int8 quantisation of Linear layers (CPU)."),
    batch_tokens: int = typer.Option(None, help="Tokens per batch (rows x longest row). Default: 16384 CPU, "
                                     "65536 GPU."),
    chunk_size: int = typer.Option(None, help="Documents per checkpointed chunk (the unit of resume and "
                                   "sharding). Default: 1024."),
    shard: str = typer.Option(None, help="i/n: encode every n-th chunk starting at i (one process or GPU per "
                              "shard); combine the n outputs with --merge. Default: 0/1."),
    limit: int = typer.Option(None, help="Encode only the first N documents (after --doc-ids)."),
    doc_ids: Path = typer.Option(None, help="File of document ids (one per line) to encode; others are skipped."),
    train_size: int = typer.Option(None, help="Vectors sampled to train IVF/PQ indexes. Default: 65536."),
    search_params: str = typer.Option(None, help="FAISS search parameters stored for `retr search`, e.g. "
                                      "nprobe=16 or efSearch=128."),
    seed: int = typer.Option(None, help="Seed of the training sample. Default: 0."),
    threads: int = typer.Option(None, help="Torch CPU threads (default: torch's choice)."),
    gpu: Optional[bool] = typer.Option(None, "--gpu/--no-gpu", help="FAISS on the GPU (default: when "
                                       "faiss-gpu sees one)."),
    merge: List[Path] = typer.Option(None, help="Merge these dense-shard artifacts (repeat the option, one per "
                                     "shard) into one dense-index at --out; no encoding."),
    overwrite: bool = typer.Option(False, help="Replace an existing output artifact."),
    config: Path = typer.Option(None, help="YAML file of these options (its 'index' section if present)."),
) -> None:
    from retr.cli.common import build_config, friendly_errors

    with friendly_errors():
        if merge:
            from retr.indexing.dense import MergeConfig, merge_shards

            settings = build_config(MergeConfig, None, shards=[str(p) for p in merge], out=out,
                                    gpu=gpu, overwrite=overwrite or None)
            path = merge_shards(settings)
        else:
            from retr.indexing.dense import IndexConfig, build_index

            settings = build_config(
                IndexConfig, config, "index", corpus=corpus, out=out, encoder=encoder, factory=factory,
                prompt=prompt, pooling=pooling, attention=attention, query_template=query_template,
                passage_template=passage_template, normalize=normalize, max_query_length=max_query_length,
                max_passage_length=max_passage_length, dtype=dtype, quantize=quantize, batch_tokens=batch_tokens,
                chunk_size=chunk_size, shard=shard, limit=limit, doc_ids=doc_ids, train_size=train_size,
                search_params=search_params, seed=seed, threads=threads, gpu=gpu, overwrite=overwrite or None,
            )
            path = build_index(settings)
    typer.echo(f"index written to {path}")
