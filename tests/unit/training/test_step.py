"""Every fine-tuning objective on a tiny random model: finite, decreasing on a fixed batch, LoRA-only gradients;
DPO starts at log 2; GradCache gives the gradients of the uncached computation, dropout included."""

from __future__ import annotations

import math
from contextlib import nullcontext

import pytest
import torch

from retr.training.base import load_base
from retr.training.config import TrainConfig
from retr.training.data import read_training_set, sample_group
from retr.training.distributed import Context
from retr.training.lora import apply_lora, trainable_parameters
from retr.training.step import PARTS, Trainee, build_batch, run_micro_batch


def _setup(model_dir, training_set, objective, dropout=0.0, **overrides):
    cfg = TrainConfig(
        objective=objective, model=str(model_dir), negatives=2, batch_size=4, chunk_size=3,
        max_query_length=16, max_passage_length=24, lora_dropout=dropout, **overrides,
    )
    torch.manual_seed(0)
    model, tokenizer, _ = load_base(cfg.model)
    model = apply_lora(model, cfg.lora_r, cfg.lora_alpha, cfg.lora_dropout, cfg.lora_targets).train()
    examples = read_training_set(training_set / "train.jsonl")[:4]
    groups = [sample_group(e, cfg.negatives, 0, 0, i) for i, e in enumerate(examples)]
    return cfg, model, Trainee(model, cfg, Context()), build_batch(groups, tokenizer, cfg)


@pytest.mark.parametrize("objective", sorted(PARTS))
def test_objective_learns_a_fixed_batch_through_lora_only(objective, tiny_llama, training_set):
    cfg, model, module, mb = _setup(tiny_llama, training_set, objective)
    params = trainable_parameters(model)
    assert params and all("lora_" in n for n in params)
    frozen = {n: p.detach().clone() for n, p in model.named_parameters() if not p.requires_grad}
    optimizer = torch.optim.AdamW(params.values(), lr=1e-2)
    losses = []
    for step in range(12):
        logged = run_micro_batch(module, mb, cfg, Context(), sync=True, scale=1.0, autocast=nullcontext)
        assert set(logged) == {"loss", *PARTS[objective]}
        assert all(math.isfinite(v) for v in logged.values())
        if step == 1:  # lora_B starts at 0, so lora_A's first gradient is 0; from then on every part moves
            assert [n for n, p in params.items() if p.grad is None or not p.grad.abs().sum() > 0] == []
        assert all(p.grad is None for p in model.parameters() if not p.requires_grad)
        optimizer.step()
        optimizer.zero_grad()
        losses.append(logged["loss"])
    assert losses[-1] < losses[0] - 1e-3, losses
    assert all(torch.equal(p, frozen[n]) for n, p in model.named_parameters() if not p.requires_grad)


def test_dpo_is_log2_at_initialisation(tiny_llama, training_set):
    cfg, model, module, mb = _setup(tiny_llama, training_set, "dpo", dropout=0.2)
    logged = run_micro_batch(module, mb, cfg, Context(), sync=True, scale=1.0, autocast=nullcontext)
    assert math.isclose(logged["dpo"], math.log(2), rel_tol=1e-6)


def test_grl_weights_its_parts(tiny_llama, training_set):
    cfg, model, module, mb = _setup(tiny_llama, training_set, "grl")
    logged = run_micro_batch(module, mb, cfg, Context(), sync=True, scale=1.0, autocast=nullcontext)
    assert math.isclose(logged["loss"], logged["cl"] + 0.5 * logged["dpo"] + logged["kl"], rel_tol=1e-6)


def _grads(model):
    return {n: p.grad.detach().clone() for n, p in trainable_parameters(model).items()}


@pytest.mark.parametrize("objective", ["cl", "grl", "grl-sft"])
def test_gradcache_equals_uncached_gradients_with_dropout(objective, tiny_llama, training_set):
    grads = {}
    for cached in (False, True):
        cfg, model, module, mb = _setup(tiny_llama, training_set, objective, dropout=0.2, grad_cache=cached)
        assert all(len(mb[side]) > 1 for side in ("queries", "passages", "gen") if side in mb)  # several chunks
        torch.manual_seed(123)
        run_micro_batch(module, mb, cfg, Context(), sync=True, scale=1.0, autocast=nullcontext)
        grads[cached] = _grads(model)
    for name, g in grads[False].items():
        torch.testing.assert_close(grads[True][name], g, atol=1e-5, rtol=1e-4, msg=name)


def test_gradcache_without_rng_replay_differs(tiny_llama, training_set, monkeypatch):
    """The replay is what makes the test above pass: dropping it changes the gradients."""
    from retr.training import gradcache, step

    original = gradcache.backward_chunks
    monkeypatch.setattr(step, "backward_chunks", lambda f, c, s, g, x: original(f, c, [None] * len(s), g, x))
    grads = {}
    for cached in (False, True):
        cfg, model, module, mb = _setup(tiny_llama, training_set, "cl", dropout=0.2, grad_cache=cached)
        torch.manual_seed(123)
        run_micro_batch(module, mb, cfg, Context(), sync=True, scale=1.0, autocast=nullcontext)
        grads[cached] = _grads(model)
    assert any(not torch.allclose(grads[True][n], g, atol=1e-5, rtol=1e-4) for n, g in grads[False].items())


def test_gradient_checkpointing_and_bf16_autocast_keep_the_step(tiny_llama, training_set):
    grads = {}
    for checkpointing in (False, True):
        cfg, model, module, mb = _setup(tiny_llama, training_set, "grl", dropout=0.2, grad_cache=True)
        if checkpointing:
            model.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
        torch.manual_seed(7)
        run_micro_batch(module, mb, cfg, Context(), sync=True, scale=1.0, autocast=nullcontext)
        grads[checkpointing] = _grads(model)
    for name, g in grads[False].items():
        torch.testing.assert_close(grads[True][name], g, atol=1e-5, rtol=1e-4, msg=name)
    # bf16 autocast (what a GPU run uses) gives finite losses close to fp32 ones
    cfg, model, module, mb = _setup(tiny_llama, training_set, "grl")
    fp32 = run_micro_batch(module, mb, cfg, Context(), sync=True, scale=1.0, autocast=nullcontext)
    bf16 = run_micro_batch(
        module, mb, cfg, Context(), sync=True, scale=1.0, autocast=lambda: torch.autocast("cpu", dtype=torch.bfloat16)
    )
    assert all(math.isfinite(v) for v in bf16.values())
    assert abs(bf16["loss"] - fp32["loss"]) < 0.1 * abs(fp32["loss"]) + 0.05
