"""Peak memory and step time of one contrastive (InfoNCE) step, with and without GradCache.

Baseline: the same step without GradCache (every chunk's graph alive until the loss), measured in the same run.
Each (batch, mode) runs in a fresh subprocess so the peak resident memory is its own: we report the growth of
the peak RSS over the RSS after loading the model and building the batch (on CUDA: max_memory_allocated).
The model is a random Llama (default: 4 layers, hidden 256) with LoRA on all linear layers, inputs are random
token ids of a fixed length; 1 hard negative per query.

    .venv/bin/python bench/bench_gradcache.py --batches 8 32 128 --length 64 --chunk 8
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def one(batch: int, grad_cache: bool, args: argparse.Namespace) -> dict:
    import resource
    import time
    from contextlib import nullcontext

    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    from retr.training.config import TrainConfig
    from retr.training.distributed import Context
    from retr.training.lora import apply_lora
    from retr.training.step import Trainee, run_micro_batch

    torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    torch.manual_seed(0)
    config = LlamaConfig(
        vocab_size=args.vocab, hidden_size=args.hidden, intermediate_size=args.hidden * 8 // 3,
        num_hidden_layers=args.layers, num_attention_heads=args.hidden // 64, num_key_value_heads=args.hidden // 64,
        max_position_embeddings=max(512, args.length), use_cache=False,
    )
    model = apply_lora(LlamaForCausalLM(config), 16, 32, 0.2, "all-linear").to(device).train()
    cfg = TrainConfig(objective="cl", negatives=1, batch_size=batch, chunk_size=args.chunk, grad_cache=grad_cache)
    module = Trainee(model, cfg, Context(device=device))

    def chunks(n: int) -> list[dict]:
        ids = torch.randint(0, args.vocab, (n, args.length), device=device)
        mask = torch.ones_like(ids)
        return [{"input_ids": ids[i : i + args.chunk], "attention_mask": mask[i : i + args.chunk]}
                for i in range(0, n, args.chunk)]

    mb = {"n": batch, "group": 2, "queries": chunks(batch), "passages": chunks(2 * batch)}
    optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-4)

    def step() -> None:
        run_micro_batch(module, mb, cfg, Context(device=device), sync=True, scale=1.0, autocast=nullcontext)
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)

    # ru_maxrss only grows, so on CPU the baseline is taken before the warm-up step (LoRA's optimizer state is small)
    base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    step()  # warm-up
    if device.type == "cuda":
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
        base = torch.cuda.memory_allocated()
    times = []
    for _ in range(args.repeats):
        start = time.perf_counter()
        step()
        if device.type == "cuda":
            torch.cuda.synchronize()
        times.append(time.perf_counter() - start)
    if device.type == "cuda":
        peak = torch.cuda.max_memory_allocated() - base
    else:
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024 - base
    return {"batch": batch, "grad_cache": grad_cache, "seconds": min(times), "peak_mib": peak / 2**20}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--batches", type=int, nargs="+", default=[8, 32, 128])
    parser.add_argument("--length", type=int, default=64, help="tokens per query and passage")
    parser.add_argument("--chunk", type=int, default=8, help="sequences per GradCache chunk")
    parser.add_argument("--layers", type=int, default=4)
    parser.add_argument("--hidden", type=int, default=256)
    parser.add_argument("--vocab", type=int, default=8192)
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--one", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.one:
        batch, cached = json.loads(args.one)
        print(json.dumps(one(batch, cached, args)))
        return
    print(f"contrastive step, random Llama {args.layers}x{args.hidden}, {args.length} tokens, 1 negative, "
          f"chunk {args.chunk}, {args.threads} threads, {args.device}")
    print(f"{'batch':>6} {'plain s':>9} {'gc s':>9} {'time x':>7} {'plain MiB':>10} {'gc MiB':>9} {'mem x':>7}")
    for batch in args.batches:
        row = {}
        for cached in (False, True):
            command = [sys.executable, __file__, *sys.argv[1:], "--one", json.dumps([batch, cached])]
            out = subprocess.run(command, capture_output=True, text=True, cwd=ROOT, check=True)
            row[cached] = json.loads(out.stdout.strip().splitlines()[-1])
        plain, gc = row[False], row[True]
        print(f"{batch:>6} {plain['seconds']:>9.2f} {gc['seconds']:>9.2f} {gc['seconds'] / plain['seconds']:>7.2f} "
              f"{plain['peak_mib']:>10.0f} {gc['peak_mib']:>9.0f} {gc['peak_mib'] / max(plain['peak_mib'], 1e-9):>7.2f}",
              flush=True)


if __name__ == "__main__":
    sys.path.insert(0, str(ROOT))
    main()
