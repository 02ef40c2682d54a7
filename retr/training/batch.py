"""The typed micro-batches an objective builds and its loss consumes (tensors only; built on CPU, moved once).

- :class:`MicroBatch`: one process's share of a fine-tuning micro-batch: embedding-side chunks (queries, and each
  query's candidates ``[positive, negative_1, ...]`` flattened) and generation-side chunks of whole queries.
- :class:`JointBatch`: LLaRA's joint ``[passage][EBAE][EBAR]`` rows (see :mod:`retr.training.llara`).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any, TypeVar

import torch

Batch = dict[str, torch.Tensor]
T = TypeVar("T")


def _to(value: Any, device: torch.device) -> Any:
    if isinstance(value, torch.Tensor):
        return value.to(device)
    if isinstance(value, dict):
        return {k: _to(v, device) for k, v in value.items()}
    if isinstance(value, list):
        return [_to(v, device) for v in value]
    if dataclasses.is_dataclass(value):
        return dataclasses.replace(value, **{f.name: _to(getattr(value, f.name), device)
                                             for f in dataclasses.fields(value)})
    return value


class _Movable:
    def to(self: T, device: torch.device) -> T:
        """The same batch with every tensor on ``device``."""
        return _to(self, device)


@dataclass
class GenChunk(_Movable):
    """Generation rows of ``size`` whole queries starting at query ``first`` of the micro-batch.

    ``rows``: ``width`` (prompt, candidate) rows per query; ``ref``: each query's (positive, hardest negative)
    rows, scored by the frozen base for DPO (None when the objective has no DPO part).
    """

    rows: Batch
    first: int
    size: int
    ref: Batch | None = None


@dataclass
class MicroBatch(_Movable):
    """``n`` queries: embedding chunks (empty when no part embeds) and generation chunks (empty when none generates)."""

    n: int
    queries: list[Batch] = field(default_factory=list)
    passages: list[Batch] = field(default_factory=list)
    gen: list[GenChunk] = field(default_factory=list)


@dataclass
class JointBatch(_Movable):
    """LLaRA rows: ``segments`` 0 shared passage, 1 EBAE prompt, 2 EBAR prompt, -1 padding; ``*_index`` the
    placeholder positions; ``bow_self`` / ``bow_next`` the unique target token ids (padded with -1)."""

    input_ids: torch.Tensor
    attention_mask: torch.Tensor
    segments: torch.Tensor
    position_ids: torch.Tensor
    ebae_index: torch.Tensor
    ebar_index: torch.Tensor
    bow_self: torch.Tensor
    bow_next: torch.Tensor
