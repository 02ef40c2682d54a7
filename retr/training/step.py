"""One micro-batch: tokenize, forward, loss, backward, for every objective (see :mod:`retr.training.objectives`).

Objectives are sums of parts: ``cl`` contrastive, ``sft``, ``dpo``, ``kl``; ``grl`` = lambda_cl CL +
lambda_dpo DPO + lambda_kl KL (ULLME), ``grl-sft`` = CL + SFT + KL, ``cl+sft`` = CL + SFT. A single-part objective
has weight 1.

Both sides run in chunks of ``chunk_size`` sequences: query and passage embeddings, and the generation side's
per-sequence log-probs. Without GradCache every chunk keeps its graph until the loss; with GradCache
(:mod:`retr.training.gradcache`) the loss is taken on cached chunk outputs (embeddings and sequence log-probs alike:
every part of the loss depends on the model only through them) and each chunk is replayed, so memory holds one
chunk's activations whatever the batch.

All model calls of a backward go through one :class:`Trainee` forward, so a DDP wrapper sees exactly one forward
per backward: ``task="loss"`` for the whole loss, ``"embed"`` / ``"logprobs"`` for a GradCache chunk replay.
"""

from __future__ import annotations

import torch

from retr.training import objectives as O
from retr.training.config import TrainConfig
from retr.training.data import QueryGroup
from retr.training.distributed import Context, gather_with_grad, no_sync
from retr.training.gradcache import backward_chunks, forward_without_graph
from retr.training.llara import llara_losses
from retr.training.modeling import (
    Batch,
    embed,
    sequence_logprobs,
    target_counts,
    tokenize_generation,
    tokenize_texts,
)

PARTS = {
    "cl": ("cl",),
    "sft": ("sft",),
    "dpo": ("dpo",),
    "kl": ("kl",),
    "grl": ("cl", "dpo", "kl"),
    "grl-sft": ("cl", "sft", "kl"),
    "cl+sft": ("cl", "sft"),
}
SIDES = (("queries", "embed"), ("passages", "embed"), ("gen", "logprobs"))


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
    """Tensors of one process's share of a micro-batch: chunks of each side, and the DPO reference rows."""
    parts = PARTS[cfg.objective]
    mb: dict = {"n": len(groups)}

    def chunked(make, items: list) -> list[Batch]:
        return [make(items[i : i + cfg.chunk_size]) for i in range(0, len(items), cfg.chunk_size)]

    if "cl" in parts or "kl" in parts:
        queries = [g.query for g in groups]
        passages = [c for g in groups for c in g.candidates]
        mb["queries"] = chunked(lambda t: tokenize_texts(tokenizer, t, cfg.query_template, cfg.max_query_length), queries)
        mb["passages"] = chunked(
            lambda t: tokenize_texts(tokenizer, t, cfg.passage_template, cfg.max_passage_length), passages
        )
    if {"sft", "dpo", "kl"} & set(parts):
        width = gen_width(parts, len(groups[0].candidates))
        rows = [(g.query, c) for g in groups for c in g.candidates[:width]]

        def generation(pairs: list[tuple[str, str]]) -> Batch:
            queries, passages = [q for q, _ in pairs], [c for _, c in pairs]
            return tokenize_generation(
                tokenizer, queries, passages, cfg.gen_template, cfg.max_query_length, cfg.max_passage_length
            )

        mb["gen"] = chunked(generation, rows)
        mb["gen_width"] = width
        if "dpo" in parts:  # reference log-probs of the positive and the hardest negative (a group's first two)
            mb["ref"] = generation([r for i, r in enumerate(rows) if i % width < 2])
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
    model: torch.nn.Module, mb: dict, cfg: TrainConfig, ctx: Context, cached: dict | None = None
) -> tuple[torch.Tensor, dict[str, float]]:
    """(loss to backpropagate, logged parts). ``cached``: GradCache's chunk outputs per side, else computed here.

    The contrastive term is computed over the global batch on every process; it enters the backpropagated loss
    multiplied by the world size, because DDP averages what the all-gather already distributes (distributed.py).
    """
    if cached is None:
        cached = {
            side: torch.cat([forward_task(model, task, c, cfg) for c in mb[side]]) for side, task in SIDES if side in mb
        }
    w, n = weights(cfg), mb["n"]
    terms: dict[str, torch.Tensor] = {}
    if "cl" in w:
        q, p = gather_with_grad(cached["queries"], ctx), gather_with_grad(cached["passages"], ctx)
        terms["cl"] = O.info_nce(q, p, cfg.temperature)
    if "gen" in mb:
        sums = cached["gen"].view(n, mb["gen_width"])
        counts = torch.cat([target_counts(c) for c in mb["gen"]]).view(n, mb["gen_width"])
        if "sft" in w:
            terms["sft"] = O.sft(sums[:, 0], counts[:, 0])
        if "dpo" in w:
            with torch.no_grad(), model.disable_adapter():
                ref = sequence_logprobs(model, mb["ref"]).view(n, 2)
            terms["dpo"] = O.dpo(sums[:, 0], sums[:, 1], ref[:, 0], ref[:, 1], cfg.dpo_beta)
        if "kl" in w:
            emb = O.group_scores(cached["queries"], cached["passages"])
            terms["kl"] = O.kl(emb, sums / counts.clamp(min=1), cfg.temperature, cfg.gen_temperature)
    loss = sum(w[k] * v * (ctx.world if k == "cl" else 1) for k, v in terms.items())
    logged = {k: float(v.detach()) for k, v in terms.items()}
    logged["loss"] = sum(w[k] * logged[k] for k in terms)
    return loss, logged


def forward_task(model: torch.nn.Module, task: str, chunk: Batch, cfg: TrainConfig) -> torch.Tensor:
    if task == "embed":
        return embed(model, chunk, cfg.pooling, cfg.attention)
    return sequence_logprobs(model, chunk)


class Trainee(torch.nn.Module):
    """The peft model plus the step's forward tasks (the module DDP wraps)."""

    def __init__(self, model: torch.nn.Module, cfg: TrainConfig, ctx: Context):
        super().__init__()
        self.model, self.cfg, self.ctx = model, cfg, ctx

    def forward(self, task: str, mb: dict | None = None, chunk: Batch | None = None, cached: dict | None = None):
        if task in ("embed", "logprobs"):
            return forward_task(self.model, task, chunk, self.cfg)
        if task == "llara":
            parts = llara_losses(self.model, mb, self.cfg.llara_lm_weight)
            return parts["loss"], {k: float(v.detach()) for k, v in parts.items()}
        if task == "loss":
            return fine_tune_loss(self.model, mb, self.cfg, self.ctx, cached)
        raise ValueError(f"unknown task {task!r}")


def run_micro_batch(
    module: torch.nn.Module, mb: dict, cfg: TrainConfig, ctx: Context, sync: bool, scale: float, autocast
) -> dict[str, float]:
    """Forward and backward of one micro-batch; gradients are synchronised (DDP) only when ``sync``.

    ``autocast`` is a context factory (bf16 on GPU, a no-op on CPU); ``scale`` divides for gradient accumulation.
    """
    if cfg.objective == "llara" or not cfg.grad_cache:
        with no_sync(module, skip=not sync):
            with autocast():
                loss, logged = module("llara" if cfg.objective == "llara" else "loss", mb=mb)
            (loss * scale).backward()
        return logged

    def forward_of(task: str):
        def forward(chunk: Batch) -> torch.Tensor:
            with autocast():
                return module(task, chunk=chunk).float()

        return forward

    sides = [(side, forward_of(task)) for side, task in SIDES if side in mb]
    cached, states = {}, {}
    for side, forward in sides:
        cached[side], states[side] = forward_without_graph(forward, mb[side], ctx.device)
    with no_sync(module, skip=True):
        with autocast():
            loss, logged = module("loss", mb=mb, cached=cached)
        (loss * scale).backward()
    total = sum(len(mb[side]) for side, _ in sides)
    done = 0
    for side, forward in sides:
        contexts = [no_sync(module, skip=not (sync and done + i == total - 1)) for i in range(len(mb[side]))]
        backward_chunks(forward, mb[side], states[side], cached[side].grad, contexts)
        done += len(mb[side])
    return logged
