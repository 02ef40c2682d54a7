"""Multi-process training with torch.distributed (launched by ``torchrun``; gloo on CPU, nccl on GPU).

Each process holds a DDP replica (``parallel="ddp"``) or a shard of every parameter (``parallel="fsdp"``: FSDP2
``fully_shard``, each decoder layer then the root, so one layer's full weights exist at a time) and its slice of
the global micro-batch. For the contrastive loss the embeddings
are all-gathered so every process contrasts its queries against the passages of the *global* batch;
:func:`gather_with_grad` keeps the autograd graph of the local slice only, and the loss is computed on every
process over all queries. Summed over processes, the local-slice gradients are exactly the gradient of the global
loss; DDP (and FSDP's reduce-scatter) averages instead of summing, which the caller undoes by scaling that loss
term by the world size.
"""

from __future__ import annotations

import os
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass
from typing import Any, Iterator

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


def describe(ctx: Context, parallel: str = "ddp") -> dict[str, Any] | None:
    """The manifest record of the process group: backend, world size and ddp/fsdp (None for a plain process)."""
    return {"backend": dist.get_backend(), "world": ctx.world, "parallel": parallel} if ctx.distributed else None


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
    """Gradients accumulate locally when ``skip``: DDP's no_sync, FSDP2's ``set_requires_gradient_sync(False)``;
    a no-op for a plain module."""
    if not skip:
        return nullcontext()
    if hasattr(module, "set_requires_gradient_sync"):
        return _fsdp_no_sync(module)
    return module.no_sync() if hasattr(module, "no_sync") else nullcontext()


@contextmanager
def _fsdp_no_sync(module: torch.nn.Module) -> Iterator[None]:
    module.set_requires_gradient_sync(False)
    try:
        yield
    finally:
        module.set_requires_gradient_sync(True)


def wrap(module: torch.nn.Module, ctx: Context, parallel: str = "ddp") -> torch.nn.Module:
    """DDP around ``module``, or FSDP2 in place (``fully_shard`` of each decoder layer, then of ``module``).

    With FSDP the parameters become sharded DTensors: collect the parameters for the optimizer after wrapping."""
    if not ctx.distributed:
        return module
    if parallel == "fsdp":
        return shard(module, ctx)
    from torch.nn.parallel import DistributedDataParallel

    device_ids = [ctx.device.index] if ctx.device.type == "cuda" else None
    return DistributedDataParallel(module, device_ids=device_ids)


def layer_classes(module: torch.nn.Module) -> set[str]:
    """Class names of the decoder layers: transformers' ``_no_split_modules`` of every model inside ``module``."""
    names: set[str] = set()
    for sub in module.modules():
        names.update(getattr(sub, "_no_split_modules", None) or ())
    return names


def shard(module: torch.nn.Module, ctx: Context) -> torch.nn.Module:
    """FSDP2 over all processes: each decoder layer is its own unit (gathered for its forward and backward, then
    freed), the root holds the rest (embeddings, final norm, LM head). ``module`` itself becomes the FSDP module."""
    from torch.distributed.device_mesh import init_device_mesh
    from torch.distributed.fsdp import fully_shard

    classes = layer_classes(module)
    # bottom-up, as FSDP2 requires when units nest: a module's children are sharded before it
    layers = [sub for sub in reversed(list(module.modules())) if type(sub).__name__ in classes]
    if not layers:
        from retr.data.errors import UsageError

        raise UsageError("--parallel fsdp: the model declares no decoder layer classes (transformers' "
                         "_no_split_modules) to shard by; use --parallel ddp")
    mesh = init_device_mesh(ctx.device.type, (ctx.world,))
    for layer in layers:
        fully_shard(layer, mesh=mesh)
    fully_shard(module, mesh=mesh)
    return module


def held(module: torch.nn.Module) -> dict[str, int]:
    """Parameters (elements) this process holds vs the model's: about 1/world of them under FSDP, all under DDP."""
    local = sum((p.to_local() if is_sharded(p) else p).numel() for p in module.parameters())
    return {"held_parameters": local, "parameters": sum(p.numel() for p in module.parameters())}


def is_sharded(tensor: torch.Tensor) -> bool:
    from torch.distributed.tensor import DTensor

    return isinstance(tensor, DTensor)


def full(tensor: torch.Tensor) -> torch.Tensor:
    """The whole tensor of an FSDP shard (a collective: every process must call it, in the same order); a plain
    tensor as it is."""
    return tensor.full_tensor() if is_sharded(tensor) else tensor


def shard_like(value: torch.Tensor, reference: torch.Tensor) -> torch.Tensor:
    """``value`` (a whole tensor, the same on every process) laid out as ``reference``: this process's shard of it
    when ``reference`` is sharded (no communication), else ``value`` itself."""
    if not is_sharded(reference):
        return value
    from torch.distributed.tensor import distribute_tensor

    return distribute_tensor(value.to(reference.device, reference.dtype), reference.device_mesh,
                             reference.placements, src_data_rank=None)
