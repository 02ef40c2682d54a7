"""One micro-batch: tokenize, forward, loss, backward, for every objective (see :mod:`retr.training.objectives`).

Objectives are sums of parts: ``cl`` contrastive, ``sft``, ``dpo``, ``kl``; ``grl`` = lambda_cl CL +
lambda_dpo DPO + lambda_kl KL (ULLME), ``grl-sft`` = CL + SFT + KL, ``cl+sft`` = CL + SFT. A single-part objective
has weight 1.

All model calls of a backward go through one :class:`Trainee` forward, so a DDP wrapper sees exactly one forward
per backward: ``task="loss"`` for the whole loss, ``task="embed"`` for a GradCache chunk replay.
"""

from __future__ import annotations

import torch

from retr.training import objectives as O
from retr.training.config import TrainConfig
from retr.training.data import QueryGroup
from retr.training.distributed import Context, gather_with_grad, no_sync
from retr.training.gradcache import backward_chunks, embed_without_graph
from retr.training.llara import llara_losses
from retr.training.modeling import Batch, embed, sequence_logprobs, tokenize_generation, tokenize_texts

PARTS = {
    "cl": ("cl",),
    "sft": ("sft",),
    "dpo": ("dpo",),
    "kl": ("kl",),
    "grl": ("cl", "dpo", "kl"),
    "grl-sft": ("cl", "sft", "kl"),
    "cl+sft": ("cl", "sft"),
}


def weights(cfg: TrainConfig) -> dict[str, float]:
    parts = PARTS[cfg.objective]
    if len(parts) == 1:
        return {parts[0]: 1.0}
    given = {"cl": cfg.lambda_cl, "dpo": cfg.lambda_dpo, "kl": cfg.lambda_kl, "sft": cfg.lambda_sft}
    return {p: given[p] for p in parts}


def gen_width(parts: tuple[str, ...], group: int) -> int:
    """How many candidates per query the generation side scores: all of U for KL, pos+neg for DPO, pos for SFT."""
    if "kl" in parts:
        return group
    return 2 if "dpo" in parts else 1


def build_batch(groups: list[QueryGroup], tokenizer, cfg: TrainConfig) -> dict:
    """Tensors of one process's share of a micro-batch (embedding chunks, generation rows, DPO reference rows)."""
    parts = PARTS[cfg.objective]
    group = 1 + cfg.negatives
    mb: dict = {"n": len(groups), "group": group}
    if "cl" in parts or "kl" in parts:
        queries = [g.query for g in groups]
        passages = [c for g in groups for c in g.candidates]
        chunk = cfg.chunk_size
        mb["queries"] = [
            tokenize_texts(tokenizer, queries[i : i + chunk], cfg.query_template, cfg.max_query_length)
            for i in range(0, len(queries), chunk)
        ]
        mb["passages"] = [
            tokenize_texts(tokenizer, passages[i : i + chunk], cfg.passage_template, cfg.max_passage_length)
            for i in range(0, len(passages), chunk)
        ]
    if {"sft", "dpo", "kl"} & set(parts):
        width = gen_width(parts, group)
        queries = [g.query for g in groups for _ in range(width)]
        candidates = [c for g in groups for c in g.candidates[:width]]
        mb["gen"] = tokenize_generation(
            tokenizer, queries, candidates, cfg.gen_template, cfg.max_query_length, cfg.max_passage_length
        )
        mb["gen_width"] = width
        if "dpo" in parts:  # reference log-probs of the positive and the hardest negative: rows 0 and 1 of a group
            rows = torch.arange(len(groups))[:, None] * width + torch.arange(2)[None, :]
            mb["ref"] = {k: v[rows.flatten()] for k, v in mb["gen"].items()}
    return mb


def to_device(mb, device: torch.device):
    if isinstance(mb, torch.Tensor):
        return mb.to(device)
    if isinstance(mb, dict):
        return {k: to_device(v, device) for k, v in mb.items()}
    if isinstance(mb, list):
        return [to_device(v, device) for v in mb]
    return mb


def fine_tune_loss(
    model: torch.nn.Module, mb: dict, cfg: TrainConfig, ctx: Context, reps: tuple | None = None
) -> tuple[torch.Tensor, dict[str, float]]:
    """(loss to backpropagate, logged parts). ``reps`` = cached (queries, passages) embeddings under GradCache.

    The contrastive term is computed over the global batch on every process; it enters the backpropagated loss
    multiplied by the world size, because DDP averages what the all-gather already distributes (distributed.py).
    """
    w = weights(cfg)
    n = mb["n"]
    terms: dict[str, torch.Tensor] = {}
    if "queries" in mb:
        if reps is None:
            q = torch.cat([embed(model, c, cfg.pooling, cfg.attention) for c in mb["queries"]])
            p = torch.cat([embed(model, c, cfg.pooling, cfg.attention) for c in mb["passages"]])
        else:
            q, p = reps
    if "cl" in w:
        terms["cl"] = O.info_nce(gather_with_grad(q, ctx), gather_with_grad(p, ctx), cfg.temperature)
    if "gen" in mb:
        sums, counts = sequence_logprobs(model, mb["gen"])
        sums, counts = sums.view(n, mb["gen_width"]), counts.view(n, mb["gen_width"])
        if "sft" in w:
            terms["sft"] = O.sft(sums[:, 0], counts[:, 0])
        if "dpo" in w:
            with torch.no_grad(), model.disable_adapter():
                ref, _ = sequence_logprobs(model, mb["ref"])
            ref = ref.view(n, 2)
            terms["dpo"] = O.dpo(sums[:, 0], sums[:, 1], ref[:, 0], ref[:, 1], cfg.dpo_beta)
        if "kl" in w:
            terms["kl"] = O.kl(O.group_scores(q, p), sums / counts.clamp(min=1), cfg.temperature, cfg.gen_temperature)
    loss = sum(w[k] * v * (ctx.world if k == "cl" else 1) for k, v in terms.items())
    logged = {k: float(v.detach()) for k, v in terms.items()}
    logged["loss"] = sum(w[k] * logged[k] for k in terms)
    return loss, logged


class Trainee(torch.nn.Module):
    """The peft model plus the step's forward tasks (the module DDP wraps)."""

    def __init__(self, model: torch.nn.Module, cfg: TrainConfig, ctx: Context):
        super().__init__()
        self.model, self.cfg, self.ctx = model, cfg, ctx

    def forward(self, task: str, mb: dict | None = None, chunk: Batch | None = None, reps: tuple | None = None):
        if task == "embed":
            return embed(self.model, chunk, self.cfg.pooling, self.cfg.attention)
        if task == "llara":
            parts = llara_losses(self.model, mb, self.cfg.llara_lm_weight)
            return parts["loss"], {k: float(v.detach()) for k, v in parts.items()}
        if task == "loss":
            return fine_tune_loss(self.model, mb, self.cfg, self.ctx, reps)
        raise ValueError(f"unknown task {task!r}")


def run_micro_batch(
    module: torch.nn.Module, mb: dict, cfg: TrainConfig, ctx: Context, sync: bool, scale: float, autocast
) -> dict[str, float]:
    """Forward and backward of one micro-batch; gradients are synchronised (DDP) only when ``sync``.

    ``autocast`` is a context factory (bf16 on GPU, a no-op on CPU); ``scale`` divides for gradient accumulation.
    """
    task = "llara" if cfg.objective == "llara" else "loss"
    if not (cfg.grad_cache and "queries" in mb):
        with no_sync(module, skip=not sync):
            with autocast():
                loss, logged = module(task, mb=mb)
            (loss * scale).backward()
        return logged

    def forward(chunk: Batch) -> torch.Tensor:
        with autocast():
            return module("embed", chunk=chunk)

    q, q_states = embed_without_graph(forward, mb["queries"], ctx.device)
    p, p_states = embed_without_graph(forward, mb["passages"], ctx.device)
    with no_sync(module, skip=True):
        with autocast():
            loss, logged = module("loss", mb=mb, reps=(q, p))
        (loss * scale).backward()
    chunks = mb["queries"] + mb["passages"]
    contexts = [no_sync(module, skip=not (sync and i == len(chunks) - 1)) for i in range(len(chunks))]
    backward_chunks(forward, chunks, q_states + p_states, torch.cat([q.grad, p.grad]), contexts)
    return logged

