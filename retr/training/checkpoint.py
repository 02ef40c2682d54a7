"""Resumable training state inside the artifact's tmp dir, without pickle (safetensors + JSON).

``checkpoint/`` holds the trainable parameters, the AdamW state, the LR schedule, the step, a fingerprint of the
run (config + inputs, so a stale checkpoint is never resumed) and each process's RNG state (dropout streams).
It is written to ``checkpoint.tmp/`` and swapped in by rename, so a kill leaves the previous one intact.
Together with the data order being a function of the step (data.py), a resumed run is identical to an
uninterrupted one. Under FSDP the parameters and AdamW moments are shards: every process takes part in gathering
them whole, rank 0 writes the same files as DDP does, and on restore each process takes its shard of them.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import torch
from safetensors.torch import load_file, save_file

from retr.data.artifacts import replace_dir
from retr.training.distributed import Context, barrier, full, shard_like

NAME = "checkpoint"


def _rng_state(ctx: Context) -> dict[str, torch.Tensor]:
    state = {"cpu": torch.get_rng_state()}
    if ctx.device.type == "cuda":
        state["cuda"] = torch.cuda.get_rng_state(ctx.device)
    return state


def _set_rng_state(state: dict[str, torch.Tensor], ctx: Context) -> None:
    torch.set_rng_state(state["cpu"])
    if "cuda" in state:
        torch.cuda.set_rng_state(state["cuda"], ctx.device)


def save(
    workdir: Path,
    step: int,
    params: dict[str, torch.nn.Parameter],
    optimizer: torch.optim.Optimizer,
    scheduler,
    fingerprint: str,
    ctx: Context,
) -> None:
    tmp, final = workdir / f"{NAME}.tmp", workdir / NAME
    # gathered on every process (FSDP shards: a collective, in the same order everywhere); written by rank 0
    weights = {k: full(v.detach()).contiguous().cpu() for k, v in params.items()}
    opt = optimizer.state_dict()
    tensors = {
        f"{index}.{key}": full(value.detach()).contiguous().cpu()
        for index, entry in opt["state"].items()
        for key, value in entry.items()
    }
    if ctx.main:
        shutil.rmtree(tmp, ignore_errors=True)
        tmp.mkdir()
        save_file(weights, str(tmp / "params.safetensors"))
        save_file(tensors, str(tmp / "optimizer.safetensors"))
        state = {
            "step": step,
            "fingerprint": fingerprint,
            "world": ctx.world,
            "param_groups": opt["param_groups"],
            "scheduler": scheduler.state_dict(),
        }
        (tmp / "state.json").write_text(json.dumps(state))
    barrier(ctx)
    save_file({k: v.contiguous() for k, v in _rng_state(ctx).items()}, str(tmp / f"rng-{ctx.rank}.safetensors"))
    barrier(ctx)
    if ctx.main:
        replace_dir(tmp, final)
    barrier(ctx)


def restore(
    workdir: Path,
    params: dict[str, torch.nn.Parameter],
    optimizer: torch.optim.Optimizer,
    scheduler,
    fingerprint: str,
    ctx: Context,
) -> int:
    """Load the checkpoint of this same run when there is one; the step to continue from (0 = start)."""
    final = workdir / NAME
    try:
        state = json.loads((final / "state.json").read_text())
    except (OSError, json.JSONDecodeError):
        return 0
    if state.get("fingerprint") != fingerprint or state.get("world") != ctx.world:
        return 0
    saved = load_file(str(final / "params.safetensors"))
    with torch.no_grad():
        for name, p in params.items():
            p.copy_(shard_like(saved[name], p))
    tensors = load_file(str(final / "optimizer.safetensors"))
    ordered = list(params.values())  # the optimizer's one param group, in the order it was built
    per_param: dict[int, dict[str, torch.Tensor]] = {}
    for key, value in tensors.items():
        index, name = key.split(".", 1)
        reference = ordered[int(index)]
        # AdamW's moments have their parameter's shape (and FSDP layout); its step count is a scalar
        value = shard_like(value, reference) if value.shape == reference.shape else value
        per_param.setdefault(int(index), {})[name] = value
    optimizer.load_state_dict({"state": per_param, "param_groups": state["param_groups"]})
    scheduler.load_state_dict(state["scheduler"])
    _set_rng_state(load_file(str(final / f"rng-{ctx.rank}.safetensors")), ctx)
    return int(state["step"])


def remove(workdir: Path) -> None:
    for path in (workdir / NAME, workdir / f"{NAME}.tmp", *workdir.glob(f"{NAME}.old-*")):
        shutil.rmtree(path, ignore_errors=True)
