"""The base model to adapt: ``retr.retrieval.backbone.load_backbone`` (the project's one loader), as a causal LM.

Until that loader is present, a local Hugging Face directory is loaded directly with transformers (offline).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from retr.data.artifacts import MANIFEST, open_artifact


def base_spec(spec: str) -> str:
    """How encoder.json names the base: 'default' or an HF id as given, a local dir as an absolute path."""
    path = Path(spec).expanduser()
    return str(path.resolve()) if path.exists() else spec


def input_record(spec: str, identity: dict[str, Any] | None) -> dict[str, Any]:
    """The manifest input entry of the base: a 'model' artifact's own record, else the loader's identity."""
    path = Path(spec).expanduser()
    if (path / MANIFEST).is_file():
        return open_artifact(path, kind="model").as_input()
    record = dict(identity or {})
    record.setdefault("kind", "backbone")
    record.setdefault("path", base_spec(spec))
    return record


def load_base(spec: str) -> tuple[torch.nn.Module, Any, dict[str, Any]]:
    """(causal LM in float32, tokenizer with a pad token, manifest input record)."""
    try:
        from retr.retrieval.backbone import load_backbone
    except ImportError:
        load_backbone = None
    if load_backbone is not None:
        model, tokenizer, identity = load_backbone(spec, dtype="float32")  # fp32 weights; bf16 comes from autocast
    else:
        model, tokenizer, identity = _load_local(spec)
    if model.get_output_embeddings() is None:
        raise ValueError(f"{spec}: the generation objectives and LLaRA need a causal LM with an LM head")
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    return model.float(), tokenizer, input_record(spec, identity)


def _load_local(spec: str):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    path = Path(spec).expanduser()
    if not (path / "config.json").is_file():
        raise FileNotFoundError(
            f"{spec}: not a local Hugging Face model dir (config.json), and retr.retrieval.backbone, which "
            "resolves 'default' and model artifacts, is not available in this version"
        )
    model = AutoModelForCausalLM.from_pretrained(path, dtype=torch.float32)
    tokenizer = AutoTokenizer.from_pretrained(path)
    return model, tokenizer, {"kind": "backbone", "path": str(path.resolve())}
