"""Pooling of token states into one vector per sequence (mean as in ULLME, last, first, weighted mean)."""

from __future__ import annotations

import torch

POOLINGS = ("mean", "last", "first", "weighted_mean")


def pool(hidden: torch.Tensor, attention_mask: torch.Tensor, mode: str = "mean") -> torch.Tensor:
    """Pool ``hidden`` [batch, seq, dim] over the tokens where ``attention_mask`` is 1.

    Works for left and right padding alike: ``last`` takes the last unmasked position and ``first`` the first.
    ``weighted_mean`` weighs position i of the unpadded sequence by i+1 (SGPT), useful in causal mode.
    """
    mask = attention_mask.to(hidden.dtype).unsqueeze(-1)
    if mode == "mean":
        return (hidden * mask).sum(1) / mask.sum(1).clamp(min=1e-9)
    if mode == "weighted_mean":
        weights = attention_mask.cumsum(1).to(hidden.dtype) * attention_mask.to(hidden.dtype)
        weights = weights.unsqueeze(-1)
        return (hidden * weights).sum(1) / weights.sum(1).clamp(min=1e-9)
    positions = torch.arange(attention_mask.shape[1], device=attention_mask.device).expand_as(attention_mask)
    if mode == "last":
        index = torch.where(attention_mask.bool(), positions, -1).max(1).values
    elif mode == "first":
        index = torch.where(attention_mask.bool(), positions, attention_mask.shape[1]).min(1).values
    else:
        raise ValueError(f"unknown pooling {mode!r}; choose one of {', '.join(POOLINGS)}")
    return hidden[torch.arange(hidden.shape[0], device=hidden.device), index]
