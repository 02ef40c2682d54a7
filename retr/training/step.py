"""One micro-batch of the fine-tuning family: tokenize, forward, loss, backward (losses in :mod:`retr.training.losses`).

An objective (:mod:`retr.training.objectives`) names its parts and their weights; the parts are ``cl``
(contrastive), ``sft``, ``dpo`` and ``kl``, and the loss is their weighted sum. LLaRA brings its own parts through
its objective's ``loss`` hook and runs through :func:`run_plain`, like every objective without GradCache.

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

from typing import Any, Callable

import torch

from retr.training import losses as L
from retr.training.batch import Batch, GenChunk, MicroBatch
from retr.training.config import TrainConfig
from retr.training.data import QueryGroup
from retr.training.distributed import Context, gather_with_grad, no_sync
from retr.training.format import EncoderFormat
from retr.training.gradcache import backward_chunks, forward_without_graph
from retr.training.modeling import embed, sequence_logprobs, target_counts, tokenize_generation, tokenize_side
from retr.training.objectives.base import Objective


def gen_width(parts: dict | tuple, group: int) -> int:
    """How many candidates per query the generation side scores: all of U for KL, pos+neg for DPO, pos for SFT."""
    if "kl" in parts:
        return group
    return 2 if "dpo" in parts else 1


def build_batch(groups: list[QueryGroup], encoder, fmt: EncoderFormat, cfg: TrainConfig,
                objective: Objective) -> MicroBatch:
    """Tensors of one process's share of a micro-batch: embedding chunks of ``chunk_size`` texts when a part
    embeds, generation chunks of whole queries (``width`` candidates each) when a part generates."""
    parts, step, tokenizer = objective.parts, cfg.chunk_size, encoder.tokenizer
    mb = MicroBatch(n=len(groups))
    if objective.needs_embeddings:
        queries = [g.query for g in groups]
        passages = [c for g in groups for c in g.candidates]
        mb.queries = [tokenize_side(encoder, queries[i : i + step], "query") for i in range(0, len(queries), step)]
        mb.passages = [tokenize_side(encoder, passages[i : i + step], "passage") for i in range(0, len(passages), step)]
    if objective.needs_generation:
        width = gen_width(parts, len(groups[0].candidates))

        def rows(chunk: list[QueryGroup], n: int) -> Batch:
            pairs = [(g.query, c) for g in chunk for c in g.candidates[:n]]  # n candidates per query
            return tokenize_generation(
                tokenizer, [q for q, _ in pairs], [c for _, c in pairs], cfg.gen_template, fmt.text_budget("query"),
                fmt.text_budget("passage"),
            )

        per_chunk = max(1, step // width)
        for first in range(0, len(groups), per_chunk):
            chunk = groups[first : first + per_chunk]
            entry = GenChunk(rows=rows(chunk, width), first=first, size=len(chunk))
            if "dpo" in parts:  # each query's first two rows: the positive and the hardest negative
                pick = (torch.arange(len(chunk))[:, None] * width + torch.arange(2)).flatten()
                entry.ref = {key: value[pick] for key, value in entry.rows.items()}
            mb.gen.append(entry)
    return mb


def generation_terms(
    model: torch.nn.Module, chunk: GenChunk, n: int, cfg: TrainConfig, objective: Objective,
    q: torch.Tensor | None, p: torch.Tensor | None,
) -> dict[str, torch.Tensor]:
    """This chunk's share (its queries' sum / n) of the SFT, DPO and KL means; ``q``/``p``: all local embeddings."""
    parts = objective.parts
    k, first = chunk.size, chunk.first
    sums = sequence_logprobs(model, chunk.rows).view(k, -1)
    counts = target_counts(chunk.rows).view(k, -1)
    terms = {}
    if "sft" in parts:
        terms["sft"] = L.sft(sums[:, 0], counts[:, 0])
    if "dpo" in parts:
        assert chunk.ref is not None
        with torch.no_grad(), model.disable_adapter():
            ref = sequence_logprobs(model, chunk.ref).view(k, 2)
        terms["dpo"] = L.dpo(sums[:, 0], sums[:, 1], ref[:, 0], ref[:, 1], cfg.dpo_beta)
    if "kl" in parts:
        assert q is not None and p is not None
        group = p.shape[0] // q.shape[0]
        emb = L.group_scores(q[first : first + k], p[first * group : (first + k) * group])
        terms["kl"] = L.kl(emb, sums / counts.clamp(min=1), cfg.temperature, cfg.gen_temperature)
    return {name: term * (k / n) for name, term in terms.items()}


def contrastive_term(q: torch.Tensor, p: torch.Tensor, cfg: TrainConfig, ctx: Context) -> torch.Tensor:
    """InfoNCE over the global batch (all processes' embeddings; gradient through the local slice)."""
    return L.info_nce(gather_with_grad(q, ctx), gather_with_grad(p, ctx), cfg.temperature)


def combine(
    terms: dict[str, torch.Tensor], weights: dict[str, float], ctx: Context
) -> tuple[torch.Tensor, dict[str, float]]:
    """(loss to backpropagate, logged parts). The contrastive term is scaled by the world size for the backward
    only, because DDP averages what the all-gather already distributes (distributed.py)."""
    loss = sum(weights[k] * v * (ctx.world if k == "cl" else 1) for k, v in terms.items())
    logged = {k: float(v.detach()) for k, v in terms.items()}
    return loss, logged


def fine_tuning_terms(trainee: "Trainee", mb: MicroBatch) -> dict[str, torch.Tensor]:
    """Every part of a fine-tuning micro-batch with every graph kept (the computation GradCache reproduces)."""
    objective, cfg = trainee.objective, trainee.cfg
    q = p = None
    terms: dict[str, torch.Tensor] = {}
    if mb.queries:
        q = torch.cat([embed(trainee.encoder, c) for c in mb.queries])
        p = torch.cat([embed(trainee.encoder, c) for c in mb.passages])
        if "cl" in objective.parts:
            terms["cl"] = contrastive_term(q, p, cfg, trainee.ctx)
    for chunk in mb.gen:
        for name, term in generation_terms(trainee.model, chunk, mb.n, cfg, objective, q, p).items():
            terms[name] = terms[name] + term if name in terms else term
    return terms


class Trainee(torch.nn.Module):
    """The peft model plus the step's forward tasks (the module DDP wraps); ``encoder`` embeds with it."""

    def __init__(self, model: torch.nn.Module, encoder, objective: Objective, cfg: TrainConfig, ctx: Context):
        super().__init__()
        self.model, self.encoder, self.objective, self.cfg, self.ctx = model, encoder, objective, cfg, ctx

    def forward(self, task: str, mb: Any = None, chunk: Any = None, embeddings: tuple | None = None):
        """Tasks: ``embed`` (one chunk), ``gen`` (one generation chunk's terms, on cached ``embeddings``),
        ``loss`` (the objective's parts of a micro-batch, every graph kept)."""
        if task == "embed":
            return embed(self.encoder, chunk)
        if task == "gen":
            return generation_terms(self.model, chunk, mb.n, self.cfg, self.objective, *(embeddings or (None, None)))
        if task == "loss":
            return self.objective.loss(self, mb)
        raise ValueError(f"unknown task {task!r}")


def run_plain(module: torch.nn.Module, mb: Any, objective: Objective, cfg: TrainConfig, ctx: Context, sync: bool,
              scale: float, autocast: Callable) -> dict[str, float]:
    """Forward and backward of one micro-batch with every graph kept until one backward.

    Gradients are synchronised (DDP) only when ``sync``; ``autocast`` is a context factory (bf16 or a no-op);
    ``scale`` divides for gradient accumulation. Returns the logged parts and their weighted sum, ``loss``.
    """
    weights = objective.weights(cfg)
    with no_sync(module, skip=not sync):
        with autocast():
            loss, logged = combine(module("loss", mb=mb), weights, ctx)
        (loss * scale).backward()
    return _total(logged, weights)


def run_cached(module: torch.nn.Module, mb: MicroBatch, objective: Objective, cfg: TrainConfig, ctx: Context,
               sync: bool, scale: float, autocast: Callable) -> dict[str, float]:
    """:func:`run_plain` with GradCache: the same gradients with the memory of one chunk."""
    weights = objective.weights(cfg)

    def embed_chunk(chunk: Batch) -> torch.Tensor:
        with autocast():
            return module("embed", chunk=chunk).float()

    embeddings = None
    if mb.queries:
        q, q_states = forward_without_graph(embed_chunk, mb.queries, ctx.device)
        p, p_states = forward_without_graph(embed_chunk, mb.passages, ctx.device)
        embeddings = (q, p)
    # the backward that synchronises (DDP) is the last one: the last replayed embedding chunk, else the last gen chunk
    replays = len(mb.queries) + len(mb.passages) if embeddings else 0
    logged: dict[str, float] = {}
    for i, chunk in enumerate(mb.gen):
        with no_sync(module, skip=not (sync and not replays and i == len(mb.gen) - 1)):
            with autocast():
                loss, parts = combine(module("gen", mb=mb, chunk=chunk, embeddings=embeddings), weights, ctx)
            (loss * scale).backward()
        for name, value in parts.items():
            logged[name] = logged.get(name, 0.0) + value
    if embeddings is None:
        return _total(logged, weights)
    if "cl" in objective.parts:
        loss, parts = combine({"cl": contrastive_term(q, p, cfg, ctx)}, weights, ctx)
        (loss * scale).backward()
        logged.update(parts)
    contexts = [no_sync(module, skip=not (sync and i == replays - 1)) for i in range(replays)]
    backward_chunks(embed_chunk, mb.queries, q_states, q.grad, contexts[: len(mb.queries)])
    backward_chunks(embed_chunk, mb.passages, p_states, p.grad, contexts[len(mb.queries) :])
    return _total(logged, weights)


def run_micro_batch(module: torch.nn.Module, mb: Any, cfg: TrainConfig, ctx: Context, sync: bool, scale: float,
                    autocast: Callable) -> dict[str, float]:
    """The objective's own run (GradCache when configured and applicable)."""
    return module_objective(module).run(module, mb, cfg, ctx, sync, scale, autocast)


def module_objective(module: torch.nn.Module) -> Objective:
    """The objective of a Trainee, inside a DDP wrapper or not."""
    return getattr(module, "module", module).objective


def _total(logged: dict[str, float], weights: dict[str, float]) -> dict[str, float]:
    return {**logged, "loss": sum(weights[k] * v for k, v in logged.items())}
