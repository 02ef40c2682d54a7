"""``train(cfg) -> Path``: train a base model with one objective (:mod:`retr.training.objectives`: LLaRA
adaptation, or GRL-family fine-tuning) into a "model" artifact.

The artifact (docs/training.md): ``adapter/`` (peft LoRA, plus the rows of added tokens), ``tokenizer/``,
``encoder.json`` (base spec, EncoderOptions and where the format came from, :mod:`retr.training.format`; so
``retr index --encoder <artifact>`` encodes exactly as training did), ``train_config.yaml`` (the config, usable as
``--config``), ``train_log.jsonl`` and ``loss.png``.

Run it with ``torchrun --nproc-per-node N -m retr train ...`` for N processes (DDP, or FSDP with
``--parallel fsdp``; see docs/training.md).
Checkpoints live in the artifact's tmp dir; re-running the same command after a crash or kill resumes exactly.
"""

from __future__ import annotations

import json
import math
import time
from contextlib import nullcontext
from pathlib import Path

import torch

from retr.data.artifacts import ArtifactWriter, check_output, config_dict, sha256_json
from retr.retrieval.allocator import keep_freed_memory
from retr.retrieval.hardware import resolve_precision
from retr.training import checkpoint
from retr.training import distributed as D
from retr.training import format as F
from retr.training.base import base_spec, load_base
from retr.training.config import TrainConfig
from retr.training.data import Schedule
from retr.training.log import NOT_LOSSES, TrainLog
from retr.training.lora import apply_lora, trainable_parameters
from retr.training.modeling import prompt_length, training_encoder
from retr.training.objectives import Objective, get as get_objective
from retr.training.step import Trainee, run_micro_batch

__all__ = ["TrainConfig", "train", "encoder_format"]


def encoder_format(cfg: TrainConfig, tokenizer, objective: Objective | None = None) -> F.EncoderFormat:
    """The embedding format of the trained model: objective > option > the starting model's > default."""
    from retr.retrieval.backbone import artifact_encoder_json, is_model_artifact

    objective = objective or get_objective(cfg.objective)
    inherited = (artifact_encoder_json(cfg.model).get("options") or {}) if is_model_artifact(cfg.model) else {}
    explicit = {name: getattr(cfg, name) for name in F.FIELDS}
    return F.resolve(explicit, inherited, objective.required_format(cfg), lambda t: prompt_length(tokenizer, t),
                     objective.name)


class _Batches:
    """This process's share of global micro-batch ``m``, as tensors on the device."""

    def __init__(self, examples, objective: Objective, encoder, fmt: F.EncoderFormat, cfg: TrainConfig,
                 ctx: D.Context):
        if cfg.batch_size % ctx.world:
            raise ValueError(f"batch_size {cfg.batch_size} is not divisible by the {ctx.world} processes")
        self.examples, self.objective, self.encoder, self.fmt, self.cfg, self.ctx = (
            examples, objective, encoder, fmt, cfg, ctx)
        self.schedule = Schedule(len(examples), cfg.batch_size, cfg.seed)
        self.local = cfg.batch_size // ctx.world

    def __call__(self, m: int):
        epoch, indices = self.schedule.batch(m)
        mine = indices[self.ctx.rank * self.local : (self.ctx.rank + 1) * self.local]
        mb = self.objective.build(self.examples, mine, epoch, self.encoder, self.fmt, self.cfg)
        return mb.to(self.ctx.device)


def _precision(cfg: TrainConfig, device: torch.device):
    """bf16 autocast or a no-op; ``auto`` takes bf16 only where the hardware computes it natively."""
    bf16 = resolve_precision(cfg.precision, device.type) == "bf16"
    return (lambda: torch.autocast(device.type, dtype=torch.bfloat16)) if bf16 else nullcontext


def total_steps(cfg: TrainConfig, per_epoch: int) -> int:
    return cfg.max_steps or max(1, math.floor(cfg.epochs * per_epoch / cfg.grad_accum))


def train(cfg: TrainConfig) -> Path:
    check_output(cfg.out, "model", cfg.overwrite)  # before any data or model is loaded
    keep_freed_memory()
    ctx = D.init(cfg.device)
    if cfg.threads:
        torch.set_num_threads(cfg.threads)

    objective = get_objective(cfg.objective)
    examples, data_inputs = objective.load(cfg)
    torch.manual_seed(cfg.seed)  # identical initialisation (new token rows, LoRA A) on every process
    model, tokenizer, base_input = load_base(cfg.model)
    model.config.use_cache = False
    new_tokens = objective.new_tokens(tokenizer, model, cfg)
    fmt = encoder_format(cfg, tokenizer, objective)  # after new tokens: a prompt's length counts them as one each
    model = apply_lora(model, cfg.lora_r, cfg.lora_alpha, cfg.lora_dropout, cfg.lora_targets, new_tokens)
    if cfg.gradient_checkpointing:
        model.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
    model.to(ctx.device).train()
    encoder = training_encoder(model, tokenizer, fmt.options)
    batches = _Batches(examples, objective, encoder, fmt, cfg, ctx)
    steps = total_steps(cfg, batches.schedule.per_epoch)
    module = D.wrap(Trainee(model, encoder, objective, cfg, ctx), ctx, cfg.parallel)
    params = trainable_parameters(model)  # after wrapping: FSDP replaces each parameter by its shard
    optimizer = torch.optim.AdamW(params.values(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    from transformers import get_linear_schedule_with_warmup

    scheduler = get_linear_schedule_with_warmup(optimizer, round(cfg.warmup_ratio * steps), steps)

    config = config_dict(cfg)
    inputs = [base_input, *data_inputs]
    fingerprint = sha256_json({"config": config, "inputs": inputs, "world": ctx.world})
    writer = None
    if ctx.main:
        writer = ArtifactWriter(cfg.out, "model", config, inputs, overwrite=cfg.overwrite,
                                extra={"encoder_format": fmt.record()})
    with writer or nullcontext():
        workdir = Path(D.broadcast(str(writer.dir) if writer else None, ctx))
        start = checkpoint.restore(workdir, params, optimizer, scheduler, fingerprint, ctx)
        if start == 0:
            torch.manual_seed(cfg.seed + 1 + ctx.rank)  # dropout stream of this process
        board = workdir / "tensorboard" if cfg.report_to == "tensorboard" else None
        log = TrainLog(workdir / "train_log.jsonl", start, board) if ctx.main else None
        seconds = _fit(module, batches, optimizer, scheduler, params, cfg, ctx, start, steps, log, workdir, fingerprint)
        adapter = adapter_state(model)  # every process takes part in gathering FSDP shards
        if ctx.main:
            assert writer is not None and log is not None
            records = log.records()
            _write_model(writer.dir, model, tokenizer, cfg, fmt, adapter)
            log.checkpoint(_title(cfg))
            log.close()
            checkpoint.remove(writer.dir)
            writer.metrics.update(_metrics(records, params, len(examples), steps, ctx, cfg.parallel))
            if ctx.distributed:  # what rank 0 held: the share of the model's parameters FSDP left it
                writer.metrics["distributed"].update(D.held(model))
            writer.metrics["precision"] = resolve_precision(cfg.precision, ctx.device.type)
            writer.metrics["resumed_from_step"] = start  # 0: not resumed from a checkpoint
            samples = (steps - start) * cfg.batch_size * cfg.grad_accum
            writer.timing.update(train_seconds=round(seconds, 3), samples_per_s=round(samples / max(seconds, 1e-9), 3))
            if ctx.device.type == "cuda":
                writer.timing["peak_gpu_mib"] = round(torch.cuda.max_memory_allocated(ctx.device) / 2**20, 1)
    D.barrier(ctx)
    return cfg.out


def _title(cfg: TrainConfig) -> str:
    return f"retr train --objective {cfg.objective}"


def _fit(module, batches, optimizer, scheduler, params, cfg, ctx, start, steps, log, workdir, fingerprint) -> float:
    from tqdm.auto import tqdm

    autocast = _precision(cfg, ctx.device)
    bar = tqdm(total=steps, initial=start, desc=f"train {cfg.objective}", disable=not ctx.main, dynamic_ncols=True)
    began = time.perf_counter()
    for step in range(start, steps):
        t0 = time.perf_counter()
        sums: dict[str, float] = {}
        for a in range(cfg.grad_accum):
            mb = batches(step * cfg.grad_accum + a)
            last = a == cfg.grad_accum - 1
            logged = run_micro_batch(module, mb, cfg, ctx, sync=last, scale=1.0 / cfg.grad_accum, autocast=autocast)
            for k, v in logged.items():
                sums[k] = sums.get(k, 0.0) + v / cfg.grad_accum
        grad_norm = D.full(torch.nn.utils.clip_grad_norm_(list(params.values()), cfg.max_grad_norm or float("inf")))
        optimizer.step()
        scheduler.step()
        optimizer.zero_grad(set_to_none=True)
        record = D.mean_over_processes(sums, ctx)
        elapsed = time.perf_counter() - t0
        record = {"step": step + 1, **{k: round(v, 6) for k, v in record.items()}}
        record.update(lr=scheduler.get_last_lr()[0], samples_per_s=round(cfg.batch_size * cfg.grad_accum / elapsed, 3),
                      grad_norm=round(float(grad_norm), 6))
        if log is not None:
            log.write(record)
        bar.set_postfix({k: f"{v:.4g}" for k, v in record.items() if k not in ("step", "lr")}, refresh=False)
        bar.update()
        done = step + 1
        if done < steps and cfg.checkpoint_every and done % cfg.checkpoint_every == 0:
            checkpoint.save(workdir, done, params, optimizer, scheduler, fingerprint, ctx)
            if log is not None:
                log.checkpoint(_title(cfg))
    bar.close()
    return time.perf_counter() - began


def adapter_state(model: torch.nn.Module) -> dict[str, torch.Tensor] | None:
    """The trained (not frozen) weights whole, on the CPU, when FSDP shards them (a collective; None elsewhere);
    else None, and peft reads them from the model itself."""
    if not any(D.is_sharded(p) for p in model.parameters()):
        return None
    from torch.distributed.checkpoint.state_dict import StateDictOptions, get_model_state_dict

    options = StateDictOptions(full_state_dict=True, cpu_offload=True, ignore_frozen_params=True)
    return get_model_state_dict(model, options=options)


def _write_model(directory: Path, model, tokenizer, cfg: TrainConfig, fmt: F.EncoderFormat,
                 state: dict[str, torch.Tensor] | None = None) -> None:
    import yaml

    extra = {"state_dict": state} if state is not None else {}
    model.save_pretrained(directory / "adapter", save_embedding_layers=False, **extra)
    tokenizer.save_pretrained(directory / "tokenizer")
    encoder = {"base": base_spec(cfg.model), "adapter": "adapter", "options": fmt.options, "format": fmt.record()}
    (directory / "encoder.json").write_text(json.dumps(encoder, indent=2) + "\n")
    (directory / "train_config.yaml").write_text(yaml.safe_dump(config_dict(cfg), sort_keys=False))


def _metrics(records: list[dict], params: dict, n_examples: int, steps: int, ctx: D.Context, parallel: str) -> dict:
    last = records[-1] if records else {}
    first = records[0] if records else {}
    return {
        "steps": steps,
        "examples": n_examples,
        "processes": ctx.world,
        "distributed": D.describe(ctx, parallel),
        "trainable_parameters": sum(p.numel() for p in params.values()),
        "first_loss": first.get("loss"),
        "final_loss": last.get("loss"),
        "final_parts": {k: v for k, v in last.items() if k not in NOT_LOSSES | {"loss"}},
    }
