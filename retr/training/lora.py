"""LoRA adapters through peft; new tokens (LLaRA placeholders) are trained with peft's trainable tokens.

Trainable tokens store only the rows of the added tokens (tied LM heads follow), are saved in the adapter's
safetensors and merged by ``merge_and_unload``; the rest of the model stays frozen.
"""

from __future__ import annotations

import torch


def apply_lora(
    model: torch.nn.Module,
    r: int,
    alpha: int,
    dropout: float,
    targets: str,
    new_token_ids: list[int] | None = None,
) -> torch.nn.Module:
    from peft import LoraConfig, get_peft_model

    target_modules: str | list[str] = targets if targets == "all-linear" else [t.strip() for t in targets.split(",")]
    config = LoraConfig(
        r=r,
        lora_alpha=alpha,
        lora_dropout=dropout,
        target_modules=target_modules,
        trainable_token_indices=list(new_token_ids) if new_token_ids else None,
        task_type="CAUSAL_LM",
    )
    return get_peft_model(model, config)


def trainable_parameters(model: torch.nn.Module) -> dict[str, torch.nn.Parameter]:
    return {name: p for name, p in model.named_parameters() if p.requires_grad}
