"""Loss functions on embeddings and sequence log-probabilities (pure tensor code, no model inside).

Layout: ``q`` [n, d] holds the queries, ``p`` [n * g, d] the passages grouped per query as
``[positive, negative_1, ..., negative_{g-1}]`` (hard negatives hardest first).

- ``info_nce``: cosine / temperature, every query against every passage of the batch (its own positive and hard
  negatives, and the other queries' passages as in-batch negatives).
- ``sft``: mean next-token negative log-likelihood of the positive passage given the query.
- ``dpo``: sigmoid DPO (Rafailov et al. 2023), positive preferred over the hardest negative, against reference
  log-probs of the frozen base (the same model with the LoRA adapter disabled).
- ``kl``: ULLME's GRL consistency term, KL(P_rt || P_gen) over the candidate set U = positive + hard negatives of
  each query, with P_rt = softmax(cos(q, p) / temperature) and P_gen = softmax(s_gen / gen_temperature), where
  s_gen is the mean token log-prob of the passage given the query. Both sides receive gradients.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F


def cosine_scores(q: torch.Tensor, p: torch.Tensor) -> torch.Tensor:
    return F.normalize(q, dim=-1) @ F.normalize(p, dim=-1).T


def info_nce(q: torch.Tensor, p: torch.Tensor, temperature: float) -> torch.Tensor:
    group = p.shape[0] // q.shape[0]
    scores = cosine_scores(q, p) / temperature
    labels = torch.arange(q.shape[0], device=q.device) * group
    return F.cross_entropy(scores, labels)


def group_scores(q: torch.Tensor, p: torch.Tensor) -> torch.Tensor:
    """Cosine of each query with its own group only: [n, g]."""
    group = p.shape[0] // q.shape[0]
    return torch.einsum("nd,ngd->ng", F.normalize(q, dim=-1), F.normalize(p, dim=-1).view(q.shape[0], group, -1))


def sft(pos_sum: torch.Tensor, pos_count: torch.Tensor) -> torch.Tensor:
    return -(pos_sum / pos_count.clamp(min=1)).mean()


def dpo(
    pos: torch.Tensor, neg: torch.Tensor, ref_pos: torch.Tensor, ref_neg: torch.Tensor, beta: float
) -> torch.Tensor:
    """Sigmoid DPO on summed sequence log-probs; equals log 2 while the policy is the reference."""
    margin = (pos - ref_pos) - (neg - ref_neg)
    return -F.logsigmoid(beta * margin).mean()


def kl(emb_scores: torch.Tensor, gen_scores: torch.Tensor, temperature: float, gen_temperature: float) -> torch.Tensor:
    """KL(P_rt || P_gen) per query over its candidates [n, g], averaged over queries."""
    log_rt = F.log_softmax(emb_scores / temperature, dim=-1)
    log_gen = F.log_softmax(gen_scores / gen_temperature, dim=-1)
    return (log_rt.exp() * (log_rt - log_gen)).sum(-1).mean()

