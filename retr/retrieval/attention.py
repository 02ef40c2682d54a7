"""One forward pass of a decoder-only backbone with bidirectional or causal attention.

Bidirectional attention is asked per call (``is_causal=False``, transformers 5.x, eager and sdpa) and is never
written into the model's config, so a saved model stays a normal causal LM.
"""

from __future__ import annotations

import torch

ATTENTIONS = ("bidirectional", "causal")


def forward_hidden(
    model: torch.nn.Module,
    input_ids: torch.Tensor,
    attention_mask: torch.Tensor,
    attention: str = "bidirectional",
) -> torch.Tensor:
    """Last-layer hidden states [batch, seq, dim] of a base model or a causal-LM wrapper (LM head skipped).

    Position ids are derived from the mask (cumulative count of real tokens), so left and right padding give the
    same states for the real tokens; GPT-2 needs this since it does not derive them itself.
    """
    if attention not in ATTENTIONS:
        raise ValueError(f"unknown attention {attention!r}; choose one of {', '.join(ATTENTIONS)}")
    position_ids = (attention_mask.long().cumsum(-1) - 1).clamp(min=0)
    kwargs = {"input_ids": input_ids, "attention_mask": attention_mask, "position_ids": position_ids}
    if attention == "bidirectional":
        kwargs["is_causal"] = False
    out = _backbone(model)(**kwargs)
    return out.last_hidden_state if hasattr(out, "last_hidden_state") else out[0]


def _backbone(model: torch.nn.Module) -> torch.nn.Module:
    """The transformer body without the LM head (works through peft wrappers and *ForCausalLM classes)."""
    if hasattr(model, "get_base_model"):
        model = model.get_base_model()
    decoder = getattr(model, "get_decoder", None)
    if callable(decoder) and hasattr(model, "lm_head"):
        return decoder()
    for name in ("model", "transformer"):
        inner = getattr(model, name, None)
        if isinstance(inner, torch.nn.Module) and hasattr(model, "lm_head"):
            return inner
    return model
