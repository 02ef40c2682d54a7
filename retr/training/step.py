"""One micro-batch: tokenize, forward, loss, backward, for every objective (see :mod:`retr.training.objectives`).

Objectives are sums of parts: ``cl`` contrastive, ``sft``, ``dpo``, ``kl``; ``grl`` = lambda_cl CL +
lambda_dpo DPO + lambda_kl KL (ULLME), ``grl-sft`` = CL + SFT + KL, ``cl+sft`` = CL + SFT. A single-part objective
has weight 1.

Everything runs in chunks of about ``chunk_size`` sequences: query and passage embeddings, and the generation
side, whose chunks hold whole queries (all their candidates). The generation parts are means over queries, so a
chunk's share of them is its own loss term. Without GradCache all graphs live until one backward. With GradCache
(:mod:`retr.training.gradcache`) the embeddings are computed without a graph first; each generation chunk then runs
forward and backward on its own (its KL share sends gradient to the cached embeddings), the contrastive loss
backpropagates to the cached embeddings, and the embedding chunks are replayed: memory holds one chunk's graph.

Every model call of a backward goes through one :class:`Trainee` forward, so a DDP wrapper sees exactly one
forward per backward.
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
    """Tensors of one process's share of a micro-batch.

    ``queries`` / ``passages``: chunks of ``chunk_size`` texts. ``gen``: chunks of whole queries, each a dict with
    the generation rows (``width`` candidates per query), the DPO reference rows (positive, hardest negative),
    ``first``, the index of the chunk's first query, and ``size``, its number of queries.
    """
    parts = PARTS[cfg.objective]
    step = cfg.chunk_size
    mb: dict = {"n": len(groups)}
    if "cl" in parts or "kl" in parts:
        queries = [g.query for g in groups]
        passages = [c for g in groups for c in g.candidates]
        mb["queries"] = [
            tokenize_texts(tokenizer, queries[i : i + step], cfg.query_template, cfg.max_query_length)
            for i in range(0, len(queries), step)
        ]
        mb["passages"] = [
            tokenize_texts(tokenizer, passages[i : i + step], cfg.passage_template, cfg.max_passage_length)
            for i in range(0, len(passages), step)
        ]
    if {"sft", "dpo", "kl"} & set(parts):
        width = gen_width(parts, len(groups[0].candidates))

        def rows(chunk: list[QueryGroup], n: int) -> Batch:
            pairs = [(g.query, c) for g in chunk for c in g.candidates[:n]]
            return tokenize_generation(
                tokenizer, [q for q, _ in pairs], [c for _, c in pairs], cfg.gen_template, cfg.max_query_length,
                cfg.max_passage_length,
            )

        per_chunk = max(1, step // width)
        mb["gen"] = []
        for first in range(0, len(groups), per_chunk):
            chunk = groups[first : first + per_chunk]
            entry = {"rows": rows(chunk, width), "first": first, "size": len(chunk)}
            if "dpo" in parts:
                entry["ref"] = rows(chunk, 2)
            mb["gen"].append(entry)
    return mb


def to_device(mb, device: torch.device):
    if isinstance(mb, torch.Tensor):
        return mb.to(device)
    if isinstance(mb, dict):
        return {k: to_device(v, device) for k, v in mb.items()}
    if isinstance(mb, list):
        return [to_device(v, device) for v in mb]
    return mb


def generation_terms(
    model: torch.nn.Module, chunk: dict, n: int, cfg: TrainConfig, q: torch.Tensor | None, p: torch.Tensor | None
) -> dict[str, torch.Tensor]:
    """This chunk's share (its queries' sum / n) of the SFT, DPO and KL means; ``q``/``p``: all local embeddings."""
    w = weights(cfg)
    k, first = chunk["size"], chunk["first"]
    sums = sequence_logprobs(model, chunk["rows"]).view(k, -1)
    counts = target_counts(chunk["rows"]).view(k, -1)
    terms = {}
    if "sft" in w:
        terms["sft"] = O.sft(sums[:, 0], counts[:, 0])
    if "dpo" in w:
        with torch.no_grad(), model.disable_adapter():
            ref = sequence_logprobs(model, chunk["ref"]).view(k, 2)
        terms["dpo"] = O.dpo(sums[:, 0], sums[:, 1], ref[:, 0], ref[:, 1], cfg.dpo_beta)
    if "kl" in w:
        group = p.shape[0] // q.shape[0]
        emb = O.group_scores(q[first : first + k], p[first * group : (first + k) * group])
        terms["kl"] = O.kl(emb, sums / counts.clamp(min=1), cfg.temperature, cfg.gen_temperature)
    return {name: term * (k / n) for name, term in terms.items()}


def contrastive_term(q: torch.Tensor, p: torch.Tensor, cfg: TrainConfig, ctx: Context) -> torch.Tensor:
    """InfoNCE over the global batch (all processes' embeddings; gradient through the local slice)."""
    return O.info_nce(gather_with_grad(q, ctx), gather_with_grad(p, ctx), cfg.temperature)


def combine(terms: dict[str, torch.Tensor], cfg: TrainConfig, ctx: Context) -> tuple[torch.Tensor, dict[str, float]]:
    """(loss to backpropagate, logged parts). The contrastive term is scaled by the world size for the backward
    only, because DDP averages what the all-gather already distributes (distributed.py)."""
    w = weights(cfg)
    loss = sum(w[k] * v * (ctx.world if k == "cl" else 1) for k, v in terms.items())
    logged = {k: float(v.detach()) for k, v in terms.items()}
    return loss, logged


class Trainee(torch.nn.Module):
    """The peft model plus the step's forward tasks (the module DDP wraps)."""

    def __init__(self, model: torch.nn.Module, cfg: TrainConfig, ctx: Context):
        super().__init__()
        self.model, self.cfg, self.ctx = model, cfg, ctx

    def forward(self, task: str, mb: dict | None = None, chunk: dict | None = None, embeddings: tuple | None = None):
        """Tasks: ``embed`` (one chunk), ``gen`` (one generation chunk's terms, on cached ``embeddings``),
        ``loss`` (all terms of a micro-batch, every graph kept), ``llara``."""
        cfg = self.cfg
        if task == "embed":
            return embed(self.model, chunk, cfg.pooling, cfg.attention)
        if task == "gen":
            return generation_terms(self.model, chunk, mb["n"], cfg, *(embeddings or (None, None)))
        if task == "llara":
            parts = llara_losses(self.model, mb, cfg.llara_lm_weight)
            return parts["loss"], {k: float(v.detach()) for k, v in parts.items()}
        if task == "loss":
            q = p = None
            terms: dict[str, torch.Tensor] = {}
            if "queries" in mb:
                q = torch.cat([embed(self.model, c, cfg.pooling, cfg.attention) for c in mb["queries"]])
                p = torch.cat([embed(self.model, c, cfg.pooling, cfg.attention) for c in mb["passages"]])
                if "cl" in PARTS[cfg.objective]:
                    terms["cl"] = contrastive_term(q, p, cfg, self.ctx)
            for chunk in mb.get("gen", []):
                for name, term in generation_terms(self.model, chunk, mb["n"], cfg, q, p).items():
                    terms[name] = terms[name] + term if name in terms else term
            return combine(terms, cfg, self.ctx)
        raise ValueError(f"unknown task {task!r}")


def run_micro_batch(
    module: torch.nn.Module, mb: dict, cfg: TrainConfig, ctx: Context, sync: bool, scale: float, autocast
) -> dict[str, float]:
    """Forward and backward of one micro-batch; gradients are synchronised (DDP) only when ``sync``.

    ``autocast`` is a context factory (bf16 on GPU, a no-op on CPU); ``scale`` divides for gradient accumulation.
    Returns the logged loss parts and their weighted sum, ``loss``.
    """
    if cfg.objective == "llara" or not cfg.grad_cache:
        with no_sync(module, skip=not sync):
            with autocast():
                loss, logged = module("llara" if cfg.objective == "llara" else "loss", mb=mb)
            (loss * scale).backward()
        return _total(logged, cfg)

    def embed_chunk(chunk: Batch) -> torch.Tensor:
        with autocast():
            return module("embed", chunk=chunk).float()

    embeddings = None
    if "queries" in mb:
        q, q_states = forward_without_graph(embed_chunk, mb["queries"], ctx.device)
        p, p_states = forward_without_graph(embed_chunk, mb["passages"], ctx.device)
        embeddings = (q, p)
    # the backward that synchronises (DDP) is the last one: the last replayed embedding chunk, else the last gen chunk
    replays = len(mb["queries"]) + len(mb["passages"]) if embeddings else 0
    logged: dict[str, float] = {}
    for i, chunk in enumerate(mb.get("gen", [])):
        with no_sync(module, skip=not (sync and not replays and i == len(mb["gen"]) - 1)):
            with autocast():
                loss, parts = combine(module("gen", mb=mb, chunk=chunk, embeddings=embeddings), cfg, ctx)
            (loss * scale).backward()
        for name, value in parts.items():
            logged[name] = logged.get(name, 0.0) + value
    if embeddings is None:
        return _total(logged, cfg)
    if "cl" in PARTS[cfg.objective]:
        loss, parts = combine({"cl": contrastive_term(q, p, cfg, ctx)}, cfg, ctx)
        (loss * scale).backward()
        logged.update(parts)
    contexts = [no_sync(module, skip=not (sync and i == replays - 1)) for i in range(replays)]
    backward_chunks(embed_chunk, mb["queries"], q_states, q.grad, contexts[: len(mb["queries"])])
    backward_chunks(embed_chunk, mb["passages"], p_states, p.grad, contexts[len(mb["queries"]) :])
    return _total(logged, cfg)


def _total(logged: dict[str, float], cfg: TrainConfig) -> dict[str, float]:
    if "loss" not in logged:  # llara logs its own total
        w = weights(cfg)
        logged["loss"] = sum(w[k] * v for k, v in logged.items())
    return logged
