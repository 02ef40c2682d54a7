"""Training tokens per second on the demo's GRL objective: the demo's current set-up against the proposed CPU one.

Issue 12 item 3 asks for at least x2 the demo's training throughput, shown in one run. Both set-ups train the
same model (LoRA r=16 on all linear layers, AdamW) on the same SciFact queries and passages in one process:

- ``demo``: what configs/demo-cpu.yaml's grl-model stage does: 4 queries x (1 positive + 3 hard negatives),
  96-token passages, GradCache (the default), precision as the demo sets it (``--demo-precision``, bf16 there;
  on a CPU without native bf16 that is emulated and slow, so ``demo fp32`` is measured too for a fair ratio).
- ``proposed``: 16 queries x (1 positive + 1 hard negative) with in-batch negatives, 64-token passages, no
  GradCache, precision ``auto`` (bf16 only on CUDA or a CPU with AVX512-BF16/AMX; see retr/retrieval/hardware.py).

Throughput counts the training text a step consumes: non-padding tokens of its queries and candidate passages
(the generation-side and reference rows of GRL re-read the same texts and are not counted again). Wall time
is the median over ``--steps`` steps after one warm-up step; CPU time is printed too because a shared machine's
wall time depends on its load.

    nice .venv/bin/python bench/bench_train_throughput.py --model tiny --steps 3
    nice .venv/bin/python bench/bench_train_throughput.py --model default --steps 2
"""

from __future__ import annotations

import argparse
import random
import statistics
import sys
import tempfile
import time
from contextlib import nullcontext
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def setups(demo_precision: str) -> dict[str, dict]:
    demo = dict(objective="grl", batch_size=4, negatives=3, max_query_length=32, max_passage_length=96,
                grad_cache=True, chunk_size=8)
    proposed = dict(objective="grl", batch_size=16, negatives=1, max_query_length=32, max_passage_length=64,
                    grad_cache=False, chunk_size=8, precision="auto")
    out = {"demo": {**demo, "precision": demo_precision}}
    if demo_precision != "fp32":
        out["demo fp32"] = {**demo, "precision": "fp32"}
    out["proposed"] = proposed
    return out


def text_tokens(mb) -> int:
    """Non-padding tokens of the queries and candidate passages of one micro-batch."""
    return sum(int(chunk["attention_mask"].sum()) for side in ("queries", "passages") for chunk in getattr(mb, side))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="tiny", help="'tiny' (random test model), 'default' (SmolLM2-135M) or a path")
    parser.add_argument("--steps", type=int, default=3, help="measured steps per set-up (after one warm-up)")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--demo-precision", default="bf16", choices=("bf16", "fp32", "auto"))
    args = parser.parse_args()

    import torch

    from retr.data.datasets import Dataset
    from retr.retrieval.hardware import cpu_has_native_bf16, resolve_precision
    from retr.training.base import load_base
    from retr.training.config import TrainConfig
    from retr.training.data import QueryGroup
    from retr.training.distributed import Context
    from retr.training.lora import apply_lora
    from retr.training.modeling import training_encoder
    from retr.training.objectives import get as get_objective
    from retr.training.step import Trainee, build_batch, run_micro_batch
    from retr.training.train import encoder_format

    torch.set_num_threads(args.threads)
    spec = args.model
    if spec == "tiny":
        from tests.unit.tiny_models import make_tiny_model

        spec = str(make_tiny_model(Path(tempfile.mkdtemp(prefix="bench-tiny-")) / "llama"))
    base, tokenizer, _ = load_base(spec)
    base.config.use_cache = False
    torch.manual_seed(0)
    model = apply_lora(base, 16, 32, 0.0, "all-linear", None).train()
    optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-4)
    print(f"model: {args.model}; {args.threads} threads; native CPU bf16: {cpu_has_native_bf16()}", flush=True)

    scifact = Dataset("scifact")
    queries = list(scifact.queries("train").values())
    docs = [d.contents for _, d in zip(range(400), scifact.corpus())]
    rng = random.Random(0)
    results: dict[str, float] = {}
    for name, values in setups(args.demo_precision).items():
        cfg = TrainConfig(**values)
        precision = resolve_precision(cfg.precision, "cpu")
        autocast = (lambda: torch.autocast("cpu", dtype=torch.bfloat16)) if precision == "bf16" else None
        objective = get_objective(cfg.objective)
        fmt = encoder_format(cfg, tokenizer, objective)
        encoder = training_encoder(model, tokenizer, fmt.options)
        module = Trainee(model, encoder, objective, cfg, Context())
        walls, cpus, tokens = [], [], []
        for i in range(args.steps + 1):
            groups = [QueryGroup(rng.choice(queries), rng.choice(docs), tuple(rng.sample(docs, cfg.negatives)))
                      for _ in range(cfg.batch_size)]
            mb = build_batch(groups, encoder, fmt, cfg, objective)
            start, start_cpu = time.perf_counter(), time.process_time()
            run_micro_batch(module, mb, cfg, Context(), sync=True, scale=1.0, autocast=autocast or nullcontext)
            optimizer.step()
            optimizer.zero_grad(set_to_none=True)
            if i:  # the first step is a warm-up
                walls.append(time.perf_counter() - start)
                cpus.append(time.process_time() - start_cpu)
                tokens.append(text_tokens(mb))
        wall, cpu, toks = statistics.median(walls), statistics.median(cpus), statistics.median(tokens)
        results[name] = toks / wall
        print(f"{name:>10}: {cfg.batch_size} queries x (1+{cfg.negatives}) x {cfg.max_passage_length} tokens, "
              f"GradCache {cfg.grad_cache}, {precision}: {toks:.0f} tokens/step, wall {wall:.2f} s/step, "
              f"CPU {cpu:.2f} s/step -> {toks / wall:.0f} tokens/s, {cfg.batch_size / wall:.2f} queries/s", flush=True)
    for name in results:
        if name != "proposed":
            print(f"proposed / {name}: x{results['proposed'] / results[name]:.2f} tokens/s")


if __name__ == "__main__":
    sys.path.insert(0, str(ROOT))
    main()
