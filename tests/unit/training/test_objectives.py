"""Every registered objective, wired as ``retr train`` wires it (load, new tokens, format, build, run), learns a
fixed micro-batch on a tiny model through LoRA (and added token rows) only, and logs exactly its parts.

Adding an objective: one module in retr/training/objectives/ plus its line in PARTS below.
"""

from __future__ import annotations

import math
from contextlib import nullcontext

import pytest
import torch

from retr.training.base import load_base
from retr.training.config import TrainConfig
from retr.training.distributed import Context
from retr.training.lora import apply_lora, trainable_parameters
from retr.training.modeling import training_encoder
from retr.training.objectives import OBJECTIVES, REGISTRY, get
from retr.training.step import Trainee
from retr.training.train import encoder_format

PARTS = {  # objective -> the parts it logs besides "loss" (at default weights)
    "cl": {"cl"},
    "sft": {"sft"},
    "dpo": {"dpo"},
    "kl": {"kl"},
    "grl": {"cl", "dpo", "kl"},
    "grl-sft": {"cl", "sft", "kl"},
    "cl+sft": {"cl", "sft"},
    "llara": {"ebae", "ebar"},
}


def test_registry_lists_every_objective_once():
    assert set(PARTS) == set(REGISTRY) and len(OBJECTIVES) == len(REGISTRY)
    assert get("grl").needs_generation and get("grl").needs_embeddings
    assert not get("cl").needs_generation and not get("sft").needs_embeddings


def _wire(name, model_dir, data, **overrides):
    values = dict(negatives=2, batch_size=4, chunk_size=3, max_query_length=16, max_passage_length=24,
                  llara_tokens=2, lora_dropout=0.0, lora_r=4, lora_alpha=8)
    cfg = TrainConfig(objective=name, model=str(model_dir), data=[str(data)], **{**values, **overrides})
    objective = get(name)
    examples, inputs = objective.load(cfg)
    torch.manual_seed(0)
    model, tokenizer, _ = load_base(cfg.model)
    new_tokens = objective.new_tokens(tokenizer, model, cfg)
    fmt = encoder_format(cfg, tokenizer, objective)
    model = apply_lora(model, cfg.lora_r, cfg.lora_alpha, cfg.lora_dropout, cfg.lora_targets, new_tokens).train()
    encoder = training_encoder(model, tokenizer, fmt.options)
    mb = objective.build(examples, [0, 1, 2, 3], 0, encoder, fmt, cfg)
    return cfg, model, Trainee(model, encoder, objective, cfg, Context()), mb


@pytest.mark.parametrize("name", sorted(REGISTRY))
def test_objective_learns_a_fixed_batch_through_lora_only(name, tiny_llama, training_set, passages):
    cfg, model, module, mb = _wire(name, tiny_llama, passages if name == "llara" else training_set)
    objective = module.objective
    params = trainable_parameters(model)
    assert params and all("lora_" in n or "trainable_tokens" in n for n in params)
    frozen = {n: p.detach().clone() for n, p in model.named_parameters() if not p.requires_grad}
    optimizer = torch.optim.AdamW(params.values(), lr=1e-2)
    weights = objective.weights(cfg)
    losses = []
    for step in range(12):
        logged = objective.run(module, mb, cfg, Context(), sync=True, scale=1.0, autocast=nullcontext)
        assert set(logged) == {"loss", *PARTS[name]}
        assert all(math.isfinite(v) for v in logged.values())
        assert math.isclose(logged["loss"], sum(weights[k] * logged[k] for k in PARTS[name]), rel_tol=1e-6)
        if step == 1:  # lora_B starts at 0, so lora_A's first gradient is 0; from then on every part moves
            assert [n for n, p in params.items() if p.grad is None or not p.grad.abs().sum() > 0] == []
        assert all(p.grad is None for p in model.parameters() if not p.requires_grad)
        optimizer.step()
        optimizer.zero_grad()
        losses.append(logged["loss"])
    assert losses[-1] < losses[0] - 1e-3, losses
    assert all(torch.equal(p, frozen[n]) for n, p in model.named_parameters() if not p.requires_grad)
