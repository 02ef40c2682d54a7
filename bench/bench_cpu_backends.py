"""CPU encoding backends side by side, in one run, on the same texts and thread count.

Backends (the baseline is sentence-transformers' ``encode`` with torch fp32, the peer's default CPU path):
- ``st-fp32``: ``SentenceTransformer.encode`` (batch 32, its own length sorting);
- ``retr-fp32`` / ``retr-int8``: :class:`retr.retrieval.encoder.Encoder` (token-budget batches; int8 = torch dynamic
  quantisation of the Linear layers);
- ``retr-bf16``: the same with ``dtype bf16-autocast`` (fp32 weights, bf16 matmuls): what ``dtype auto`` picks on a
  CPU with native bf16 (AVX512-BF16/AMX); in the default list only there (elsewhere bf16 is emulated and slow);
- ``ort-fp32``: ONNX Runtime on ``Encoder.embed`` exported with ``torch.onnx.export`` (pooling and normalisation
  inside the graph), fed retr's own tokenisation and token-budget batches, graph optimisation level ALL;
- ``ort-fp32-fused`` (BERT-type models only): the same graph after ``onnxruntime.transformers.optimizer`` (fused
  Attention, SkipLayerNorm, Gelu);
- ``ov-fp32`` (opt-in, needs the ``openvino`` package): OpenVINO on the same exported graph;
- ``ort-int8``: ``onnxruntime.quantization.quantize_dynamic`` (int8 weights per output channel, per-batch
  activations; per-tensor weights, ``--per-tensor``, lost accuracy: min cosine 0.90 on MiniLM) of the fused
  graph when there is one, else of the plain export.

For each: tokens/s (best of ``--repeats`` interleaved passes, with the CPU seconds of that pass), the ratio vs the
baseline, and the min cosine vs retr fp32 vectors. With ``--ndcg`` each backend whose vectors differ from retr
fp32 (min cosine < 0.9999) also encodes the SciFact sub-corpus
(every judged test document + 700 seeded distractors, :func:`retr.data.subset.make_subset`) and its test queries;
exact inner-product search (FAISS Flat) and nDCG@10 by :func:`retr.evaluation.metrics.evaluate`.

ONNX export and quantisation need the ``onnx`` package (not a retr requirement):

    python bench/bench_cpu_backends.py --model minilm --docs 400 --threads 1 --ndcg
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np

Encode = Callable[[Sequence[str], str], np.ndarray]


def corpus_texts(spec: str, docs: int) -> list[str]:
    from retr.data.datasets import Dataset

    texts = []
    for doc in Dataset(spec).corpus():
        texts.append(doc.contents)
        if len(texts) == docs:
            break
    return texts


def export_onnx(encoder: Any, path: Path) -> Path:
    """``encoder.embed`` (forward, pooling, normalisation) as an ONNX graph with dynamic batch and length."""
    import torch

    class Embed(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.model = encoder.model

        def forward(self, input_ids, attention_mask):
            return encoder.embed(input_ids, attention_mask)

    if path.is_file():
        return path
    # A padded example, so that the traced graph keeps the mask path (an all-ones mask may be short-cut).
    ids = torch.randint(100, 1000, (2, 12))
    mask = torch.ones_like(ids)
    mask[1, 7:] = 0
    axes = {"input_ids": {0: "batch", 1: "length"}, "attention_mask": {0: "batch", 1: "length"},
            "embedding": {0: "batch"}}
    with torch.inference_mode(False), torch.no_grad():
        torch.onnx.export(Embed().eval(), (ids, mask), str(path), dynamo=False, opset_version=17,
                          input_names=["input_ids", "attention_mask"], output_names=["embedding"],
                          dynamic_axes=axes)
    return path


def fuse_bert(path: Path, config: Any, out: Path) -> Path | None:
    """ONNX Runtime's transformer optimiser (fused attention, layer norms, gelu) for BERT-type models."""
    if getattr(config, "model_type", "") not in ("bert", "roberta", "xlm-roberta", "mpnet", "distilbert"):
        return None
    if out.is_file():
        return out
    from onnxruntime.transformers.optimizer import optimize_model

    model = optimize_model(str(path), model_type="bert", num_heads=config.num_attention_heads,
                           hidden_size=config.hidden_size, opt_level=1)
    model.save_model_to_file(str(out))
    return out


def quantize_onnx(path: Path, out: Path, per_channel: bool) -> Path:
    if out.is_file():
        return out
    import onnx
    from onnxruntime.quantization import QuantType, quantize_dynamic

    # Fused operators (com.microsoft domain) defeat shape inference; their outputs are float.
    quantize_dynamic(str(path), str(out), weight_type=QuantType.QInt8, per_channel=per_channel,
                     extra_options={"DefaultTensorType": onnx.TensorProto.FLOAT})
    return out


def batched(encoder: Any, run_graph: Callable[[np.ndarray, np.ndarray], np.ndarray]) -> Encode:
    """An Encode that feeds ``run_graph(input_ids, attention_mask)`` retr's tokenisation and token-budget batches
    (int64 NumPy arrays, right-padded with the encoder's pad id), in the input order."""
    from retr.retrieval.encoder import token_budget_batches

    def encode(texts: Sequence[str], side: str) -> np.ndarray:
        sequences = encoder.tokenize(texts, side)
        lengths = [len(s) for s in sequences]
        out = np.zeros((len(sequences), encoder.dim), dtype=np.float32)
        for batch in token_budget_batches(lengths, encoder.batch_tokens, encoder.max_batch_size):
            width = lengths[batch[0]]
            ids = np.full((len(batch), width), encoder.pad_id, dtype=np.int64)
            mask = np.zeros((len(batch), width), dtype=np.int64)
            for row, i in enumerate(batch):
                ids[row, :lengths[i]] = sequences[i]
                mask[row, :lengths[i]] = 1
            out[batch] = run_graph(ids, mask)
        return out

    return encode


def ort_encoder(encoder: Any, path: Path, threads: int) -> Encode:
    """Encode with an ONNX Runtime session, through retr's tokenisation and token-budget batches."""
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])

    return batched(encoder, lambda ids, mask: session.run(None, {"input_ids": ids, "attention_mask": mask})[0])


def ov_encoder(encoder: Any, path: Path, threads: int) -> Encode:
    """Encode with OpenVINO (fp32; this CPU has no native bf16) on the exported graph, through retr's batches."""
    import openvino as ov

    compiled = ov.Core().compile_model(str(path), "CPU", {"INFERENCE_NUM_THREADS": threads,
                                                          "INFERENCE_PRECISION_HINT": "f32",
                                                          "PERFORMANCE_HINT": "LATENCY"})
    request = compiled.create_infer_request()

    return batched(encoder, lambda ids, mask: request.infer({"input_ids": ids, "attention_mask": mask})[0])


def torch_encoder(encoder: Any) -> Encode:
    return lambda texts, side: encoder.encode(texts, side)


def st_encoder(directory: Path, max_length: int) -> Encode:
    from sentence_transformers import SentenceTransformer

    st = SentenceTransformer(str(directory), device="cpu")
    st.max_seq_length = max_length
    return lambda texts, side: st.encode(list(texts), batch_size=32, normalize_embeddings=True,
                                         convert_to_numpy=True)


def ndcg_at_10(encode: Encode, corpus: dict[str, str], queries: dict[str, str], qrels: Any) -> tuple[float, float]:
    """nDCG@10 of exact inner-product search over ``corpus`` and the corpus encoding's wall seconds."""
    import faiss

    from retr.evaluation.metrics import evaluate

    ids = list(corpus)
    start = time.perf_counter()
    vectors = encode([corpus[i] for i in ids], "passage")
    seconds = time.perf_counter() - start
    qids = list(queries)
    q = encode([queries[i] for i in qids], "query")
    index = faiss.IndexFlatIP(vectors.shape[1])
    index.add(np.ascontiguousarray(vectors, dtype=np.float32))
    scores, rows = index.search(np.ascontiguousarray(q, dtype=np.float32), 10)
    run = {qid: {ids[r]: float(s) for r, s in zip(rows[n], scores[n]) if r >= 0} for n, qid in enumerate(qids)}
    return evaluate(qrels, run, ["ndcg@10"])["ndcg@10"], seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="minilm")
    parser.add_argument("--corpus", default="scifact")
    parser.add_argument("--docs", type=int, default=400)
    parser.add_argument("--max-length", type=int, default=256)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--attention", default=None, choices=["bidirectional", "causal"],
                        help="retr's attention for a decoder (default: the model's encoder options); "
                             "sentence-transformers always runs a decoder causal")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--backends", default=None,
                        help="comma list; default: st-fp32,retr-fp32,[retr-bf16 on a native-bf16 CPU,]retr-int8,"
                             "ort-fp32,ort-fp32-fused,ort-int8")
    parser.add_argument("--per-tensor", action="store_true",
                        help="per-tensor int8 weights for ort-int8 (default per-channel: per-tensor lost accuracy)")
    parser.add_argument("--ndcg", action="store_true", help="nDCG@10 on the SciFact sub-corpus for each backend")
    parser.add_argument("--work", type=Path, default=Path("runs/bench-cpu-backends"))
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args()

    os.environ.setdefault("OMP_NUM_THREADS", str(args.threads))
    import torch

    from retr.retrieval.default_model import default_model_dir, minilm_dir
    from retr.retrieval.encoder import load_encoder

    torch.set_num_threads(args.threads)
    args.work.mkdir(parents=True, exist_ok=True)
    from retr.retrieval.hardware import cpu_has_native_bf16

    bf16 = "retr-bf16," if cpu_has_native_bf16() else ""
    backends_arg = args.backends or f"st-fp32,retr-fp32,{bf16}retr-int8,ort-fp32,ort-fp32-fused,ort-int8"
    names = [b.strip() for b in backends_arg.split(",") if b.strip()]
    texts = corpus_texts(args.corpus, args.docs)
    fp32 = load_encoder(args.model, max_passage_length=args.max_length, attention=args.attention)
    tokens = sum(len(s) for s in fp32.tokenize(texts, "passage"))
    tag = f"{args.model.replace('/', '_')}-{args.max_length}"
    backends: dict[str, Encode] = {}
    onnx_path = fused = None
    for name in names:
        if name == "st-fp32":
            directory = {"minilm": minilm_dir, "default": default_model_dir}.get(args.model, lambda: Path(args.model))()
            backends[name] = st_encoder(directory, args.max_length)
        elif name == "retr-fp32":
            backends[name] = torch_encoder(fp32)
        elif name == "retr-bf16":
            backends[name] = torch_encoder(load_encoder(args.model, max_passage_length=args.max_length,
                                                        attention=args.attention, dtype="bf16-autocast"))
        elif name == "retr-int8":
            backends[name] = torch_encoder(load_encoder(args.model, max_passage_length=args.max_length,
                                                        attention=args.attention, quantize="int8"))
        elif name.startswith("ort-") or name == "ov-fp32":
            onnx_path = onnx_path or export_onnx(fp32, args.work / f"{tag}.onnx")
            if name == "ov-fp32":
                backends[name] = ov_encoder(fp32, onnx_path, args.threads)
                continue
            if name == "ort-fp32":
                backends[name] = ort_encoder(fp32, onnx_path, args.threads)
                continue
            fused = fused or fuse_bert(onnx_path, fp32.model.config, args.work / f"{tag}-fused.onnx")
            if name == "ort-fp32-fused":
                if fused is None:
                    print(f"{name}: skipped ({fp32.model.config.model_type} is not a BERT-type model)")
                    continue
                backends[name] = ort_encoder(fp32, fused, args.threads)
            elif name == "ort-int8":
                suffix = "int8" if args.per_tensor else "int8pc"
                quantized = quantize_onnx(fused or onnx_path, args.work / f"{tag}-{suffix}.onnx",
                                         not args.per_tensor)
                backends[name] = ort_encoder(fp32, quantized, args.threads)
        else:
            parser.error(f"unknown backend {name!r}")

    wall = {n: float("inf") for n in backends}
    cpu = {n: 0.0 for n in backends}
    vectors: dict[str, np.ndarray] = {}
    for _ in range(args.repeats):  # interleaved, so that load from other processes hits every backend alike
        for name, encode in backends.items():
            c0, t0 = time.process_time(), time.perf_counter()
            vectors[name] = encode(texts, "passage")
            t, c = time.perf_counter() - t0, time.process_time() - c0
            if t < wall[name]:
                wall[name], cpu[name] = t, c
    reference = vectors.get("retr-fp32", vectors.get("st-fp32"))
    base = wall.get("st-fp32")
    results: dict[str, dict[str, Any]] = {}
    for name in backends:
        results[name] = {
            "tokens_per_s": round(tokens / wall[name], 1), "wall_s": round(wall[name], 3),
            "cpu_s": round(cpu[name], 3),
            "vs_st_fp32": round(base / wall[name], 3) if base else None,
            "min_cosine_vs_fp32": round(float(np.min(np.sum(vectors[name] * reference, axis=1))), 6),
        }
    if args.ndcg:
        from retr.data.datasets import Dataset
        from retr.data.subset import SubsetConfig, make_subset

        subset = args.work / f"{args.corpus}-subset"
        if not (subset / "manifest.json").is_file():
            make_subset(SubsetConfig(dataset=args.corpus, out=subset))
        data = Dataset(str(subset))
        corpus = {doc.id: doc.contents for doc in data.corpus()}
        queries, qrels = data.queries("test"), data.qrels("test")
        for name, encode in backends.items():
            if name != "retr-fp32" and "retr-fp32" in backends and results[name]["min_cosine_vs_fp32"] >= 0.9999:
                continue  # the same vectors as retr-fp32 (min cosine above), so the same ranking
            ndcg, seconds = ndcg_at_10(encode, corpus, queries, qrels)
            results[name].update(ndcg_at_10=round(ndcg, 4), subset_encode_s=round(seconds, 1))
        ref = results.get("retr-fp32", {}).get("ndcg_at_10")
        for r in results.values():
            if ref is not None and "ndcg_at_10" in r:
                r["ndcg_delta_vs_fp32"] = round(r["ndcg_at_10"] - ref, 4)
    print(f"{len(texts)} {args.corpus} texts, {tokens} tokens (max {args.max_length}), {args.threads} thread(s), "
          f"model {args.model}; best of {args.repeats} interleaved passes")
    print(f"{'backend':>15} {'tokens/s':>9} {'wall s':>7} {'cpu s':>7} {'vs ST':>6} {'min cos':>9} "
          f"{'nDCG@10':>8} {'delta':>8}")
    for name, r in results.items():
        ratio = f"x{r['vs_st_fp32']:.2f}" if r["vs_st_fp32"] else "-"
        ndcg = f"{r['ndcg_at_10']:.4f}" if "ndcg_at_10" in r else "-"
        delta = f"{r['ndcg_delta_vs_fp32']:+.4f}" if "ndcg_delta_vs_fp32" in r else "-"
        print(f"{name:>15} {r['tokens_per_s']:9.1f} {r['wall_s']:7.2f} {r['cpu_s']:7.2f} {ratio:>6} "
              f"{r['min_cosine_vs_fp32']:9.6f} {ndcg:>8} {delta:>8}")
    if args.json:
        args.json.write_text(json.dumps({"model": args.model, "docs": len(texts), "tokens": tokens,
                                         "threads": args.threads, "backends": results}, indent=2) + "\n")


if __name__ == "__main__":
    main()
