"""The loss definitions of the fine-tuning step on a tiny random model: DPO starts at log 2 and compares the positive
with the hardest negative against the frozen base; GRL weights its parts; GradCache gives the gradients of the
uncached computation, dropout included (every registered objective's learning test: test_objectives.py)."""

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
from retr.training.modeling import training_encoder
from retr.training.objectives import get
from retr.training.step import Trainee, build_batch, run_micro_batch
from retr.training.train import encoder_format


def _setup(model_dir, training_set, objective, dropout=0.0, **overrides):
    values = dict(negatives=2, batch_size=4, chunk_size=3, max_query_length=16, max_passage_length=24)
    cfg = TrainConfig(objective=objective, model=str(model_dir), data=[str(training_set)], lora_dropout=dropout,
                      **{**values, **overrides})
    torch.manual_seed(0)
    model, tokenizer, _ = load_base(cfg.model)
    model = apply_lora(model, cfg.lora_r, cfg.lora_alpha, cfg.lora_dropout, cfg.lora_targets).train()
    fmt = encoder_format(cfg, tokenizer)
    encoder = training_encoder(model, tokenizer, fmt.options)
    examples = read_training_set(training_set / "train.jsonl")[:4]
    groups = [sample_group(e, cfg.negatives, 0, 0, i) for i, e in enumerate(examples)]
    objective = get(cfg.objective)
    mb = build_batch(groups, encoder, fmt, cfg, objective)
    return cfg, model, Trainee(model, encoder, objective, cfg, Context()), mb


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
        assert all(len(getattr(mb, side)) > 1 for side in ("queries", "passages", "gen") if getattr(mb, side))
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


def test_dpo_compares_positive_and_hardest_negative_against_the_frozen_base(tiny_llama, training_set):
    """The logged DPO term, recomputed from per-pair log-probs (policy with LoRA, reference without)."""
    from retr.training.modeling import sequence_logprobs, tokenize_generation

    cfg, model, module, mb = _setup(tiny_llama, training_set, "dpo", chunk_size=2)
    optimizer = torch.optim.AdamW(trainable_parameters(model).values(), lr=1e-2)
    for _ in range(2):  # move the policy away from the reference
        run_micro_batch(module, mb, cfg, Context(), sync=True, scale=1.0, autocast=nullcontext)
        optimizer.step()
        optimizer.zero_grad()
    logged = run_micro_batch(module, mb, cfg, Context(), sync=True, scale=1.0, autocast=nullcontext)
    examples = read_training_set(training_set / "train.jsonl")[:4]
    groups = [sample_group(e, cfg.negatives, 0, 0, i) for i, e in enumerate(examples)]
    tokenizer = module.encoder.tokenizer

    def logp(query, passage):
        batch = tokenize_generation(tokenizer, [query], [passage], cfg.gen_template, 16, 24)
        return float(sequence_logprobs(model, batch)[0])

    losses = []
    with torch.no_grad():
        for g in groups:
            policy = logp(g.query, g.positive) - logp(g.query, g.negatives[0])
            with model.disable_adapter():
                reference = logp(g.query, g.positive) - logp(g.query, g.negatives[0])
            losses.append(-torch.nn.functional.logsigmoid(torch.tensor(0.1 * (policy - reference))))
    assert math.isclose(logged["dpo"], float(sum(losses) / len(losses)), rel_tol=1e-4)
    assert logged["dpo"] < math.log(2)
