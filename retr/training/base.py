"""The base model to adapt, through the project's one loader, ``retr.retrieval.backbone.load_backbone``."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch


def base_spec(spec: str) -> str:
    """How encoder.json names the base: 'default' or an HF id as given, a local dir as an absolute path."""
    path = Path(spec).expanduser()
    return str(path.resolve()) if path.exists() else spec


def load_base(spec: str) -> tuple[torch.nn.Module, Any, dict[str, Any]]:
    """(causal LM in float32, tokenizer with a pad token, manifest input record: the loader's identity, which for a
    model artifact is its own input record)."""
    from retr.retrieval.backbone import load_backbone

    model, tokenizer, identity = load_backbone(spec, dtype="float32")  # fp32 weights; bf16 comes from autocast
    if model.get_output_embeddings() is None:
        raise ValueError(f"{spec}: the generation objectives and LLaRA need a causal LM with an LM head")
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    return model, tokenizer, {**identity, "path": identity.get("path", base_spec(spec))}

