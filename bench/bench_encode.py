"""Encoding throughput: our encoder vs ``SentenceTransformer.encode`` on the same backbone and texts, and vs the
FLOP bound of this machine.

Baselines, measured in this run:
- sentence-transformers' ``encode`` (same weights, same max length, its own length sorting and batching);
- the FLOP bound: 2 x non-embedding parameters x tokens / the fp32 matmul FLOP/s that torch reaches here
  (attention score FLOPs are left out, so the bound is slightly optimistic for long texts).

    python bench/bench_encode.py --model minilm --docs 500 --threads 1
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np


def corpus_texts(spec: str, docs: int) -> list[str]:
    from retr.data.datasets import Dataset

    texts = []
    for doc in Dataset(spec).corpus():
        texts.append(doc.contents)
        if len(texts) == docs:
            break
    return texts


def matmul_flops(threads: int, size: int = 1024, seconds: float = 3.0) -> float:
    """Sustained fp32 GEMM FLOP/s of this machine with ``threads`` torch threads (best of several runs)."""
    import torch

    torch.set_num_threads(threads)
    a, b = torch.randn(size, size), torch.randn(size, size)
    torch.mm(a, b)
    best, deadline = 0.0, time.perf_counter() + seconds
    while time.perf_counter() < deadline:
        start = time.perf_counter()
        for _ in range(4):
            torch.mm(a, b)
        best = max(best, 4 * 2 * size**3 / (time.perf_counter() - start))
    return best


def non_embedding_params(model) -> int:
    import torch

    embeddings = {id(p) for m in model.modules() if isinstance(m, torch.nn.Embedding) for p in m.parameters()}
    head = getattr(model, "lm_head", None)
    skip = embeddings | ({id(p) for p in head.parameters()} if head is not None else set())
    return sum(p.numel() for p in model.parameters() if id(p) not in skip)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="minilm", help="backbone spec (sentence-transformers loads its dir)")
    parser.add_argument("--corpus", default="scifact")
    parser.add_argument("--docs", type=int, default=500)
    parser.add_argument("--max-length", type=int, default=256)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--repeats", type=int, default=3, help="best of N alternating passes for each side")
    parser.add_argument("--json", type=Path, default=None, help="also write the numbers here")
    args = parser.parse_args()

    import torch
    from sentence_transformers import SentenceTransformer

    from retr.retrieval.backbone import load_backbone
    from retr.retrieval.default_model import default_model_dir, minilm_dir
    from retr.retrieval.encoder import load_encoder

    torch.set_num_threads(args.threads)
    texts = corpus_texts(args.corpus, args.docs)
    ours = load_encoder(args.model, max_passage_length=args.max_length, pooling="mean", normalize=True)
    tokens = sum(len(s) for s in ours.tokenize(texts, "passage"))
    directory = {"minilm": minilm_dir, "default": default_model_dir}.get(args.model, lambda: Path(args.model))()
    st = SentenceTransformer(str(directory), device="cpu")
    st.max_seq_length = args.max_length

    # Alternate the two sides and keep each one's best pass, so that load from other processes hits both alike.
    t_ours = t_st = float("inf")
    for _ in range(args.repeats):
        start = time.perf_counter()
        v_ours = ours.encode_passages(texts)
        t_ours = min(t_ours, time.perf_counter() - start)
        start = time.perf_counter()
        v_st = st.encode(texts, batch_size=32, normalize_embeddings=True, convert_to_numpy=True)
        t_st = min(t_st, time.perf_counter() - start)
    cosine = float(np.min(np.sum(v_ours * v_st, axis=1)))
    flops = matmul_flops(args.threads)
    model, _, _ = load_backbone(args.model)
    params = non_embedding_params(model)
    t_bound = 2 * params * tokens / flops
    result = {
        "model": args.model, "docs": len(texts), "tokens": tokens, "threads": args.threads,
        "ours_tokens_per_s": round(tokens / t_ours, 1), "st_tokens_per_s": round(tokens / t_st, 1),
        "ours_vs_st": round(t_st / t_ours, 3), "min_cosine_ours_st": round(cosine, 6),
        "matmul_gflops": round(flops / 1e9, 1), "non_embedding_params": params,
        "bound_tokens_per_s": round(tokens / t_bound, 1), "ours_fraction_of_bound": round(t_bound / t_ours, 3),
    }
    print(f"{len(texts)} texts, {tokens} tokens (max {args.max_length}), {args.threads} thread(s), model {args.model}")
    print(f"sentence-transformers encode : {tokens / t_st:10.1f} tokens/s  [baseline]")
    print(f"retr Encoder.encode_passages : {tokens / t_ours:10.1f} tokens/s  x{t_st / t_ours:.2f} vs ST "
          f"(min cosine between the two: {cosine:.6f})")
    print(f"FLOP bound ({params / 1e6:.1f}M non-embedding params, {flops / 1e9:.1f} GFLOP/s matmul): "
          f"{tokens / t_bound:10.1f} tokens/s; ours reaches {t_bound / t_ours:.1%} of it")
    if args.json:
        args.json.write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
