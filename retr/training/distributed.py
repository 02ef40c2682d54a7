"""Multi-process training with torch.distributed (launched by ``torchrun``; gloo on CPU, nccl on GPU).

Each process holds a DDP replica and its slice of the global micro-batch. For the contrastive loss the embeddings
are all-gathered so every process contrasts its queries against the passages of the *global* batch;
:func:`gather_with_grad` keeps the autograd graph of the local slice only, and the loss is computed on every
process over all queries. Summed over processes, the local-slice gradients are exactly the gradient of the global
loss; DDP averages instead of summing, which the caller undoes by scaling that loss term by the world size.
"""

from __future__ import annotations

import os
from contextlib import nullcontext
from dataclasses import dataclass
from typing import Any

import torch
import torch.distributed as dist


@dataclass(frozen=True)
class Context:
    """``distributed``: a process group exists (every torchrun launch, even of one process), so the model is a
    DDP replica; ``world == 1`` without torchrun is a plain process."""

    rank: int = 0
    world: int = 1
    device: torch.device = torch.device("cpu")
    distributed: bool = False

    @property
    def main(self) -> bool:
        return self.rank == 0


def resolve_device(spec: str) -> torch.device:
    if spec == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(spec)


def launched_by_torchrun() -> bool:
    return "TORCHELASTIC_RUN_ID" in os.environ or int(os.environ.get("WORLD_SIZE", "1")) > 1


def init(device: str = "auto") -> Context:
    """Join the process group that torchrun describes in the environment; a single process otherwise.

    One process under torchrun joins a group too, so ``torchrun --nproc-per-node 1`` runs the DDP path of N GPUs."""
    target = resolve_device(device)
    if not launched_by_torchrun():
        return Context(0, 1, target)
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    if target.type == "cuda":
        target = torch.device("cuda", local_rank)
        torch.cuda.set_device(target)
    if not dist.is_initialized():
        dist.init_process_group(backend="nccl" if target.type == "cuda" else "gloo")
    return Context(dist.get_rank(), dist.get_world_size(), target, distributed=True)


def describe(ctx: Context) -> dict[str, Any] | None:
    """The manifest record of the process group: backend and world size (None for a plain process)."""
    return {"backend": dist.get_backend(), "world": ctx.world} if ctx.distributed else None


def gather_with_grad(x: torch.Tensor, ctx: Context) -> torch.Tensor:
    """All processes' ``x`` concatenated in rank order; only this process's slice carries gradient."""
    if ctx.world == 1:
        return x
    parts = [torch.empty_like(x) for _ in range(ctx.world)]
    dist.all_gather(parts, x.detach().contiguous())
    parts[ctx.rank] = x
    return torch.cat(parts)


def mean_over_processes(values: dict[str, float], ctx: Context) -> dict[str, float]:
    """Average logged scalars over processes (for the log only)."""
    if ctx.world == 1 or not values:
        return values
    keys = sorted(values)
    buf = torch.tensor([float(values[k]) for k in keys], dtype=torch.float64, device=ctx.device)
    dist.all_reduce(buf)
    return {k: v / ctx.world for k, v in zip(keys, buf.tolist())}


def broadcast(obj: Any, ctx: Context) -> Any:
    """Rank 0's value of a small object on every process."""
    if ctx.world == 1:
        return obj
    box = [obj]
    dist.broadcast_object_list(box, src=0)
    return box[0]


def barrier(ctx: Context) -> None:
    if ctx.world > 1:
        dist.barrier()


def no_sync(module: torch.nn.Module, skip: bool):
    """DDP's no_sync when ``skip`` (gradients accumulate locally), a no-op for a plain module."""
    return module.no_sync() if skip and hasattr(module, "no_sync") else nullcontext()


def wrap(module: torch.nn.Module, ctx: Context) -> torch.nn.Module:
    if not ctx.distributed:
        return module
    from torch.nn.parallel import DistributedDataParallel

    device_ids = [ctx.device.index] if ctx.device.type == "cuda" else None
    return DistributedDataParallel(module, device_ids=device_ids)
