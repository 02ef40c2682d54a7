"""``train(cfg) -> Path``: LLaRA adaptation or GRL-family fine-tuning of a base model into a "model" artifact.

The artifact (INTERFACES.md): ``adapter/`` (peft LoRA, plus the rows of added tokens), ``tokenizer/``,
``encoder.json`` (base spec + EncoderOptions, so ``retr index --encoder <artifact>`` encodes exactly as training
did), ``train_config.yaml`` (the resolved config, usable as ``--config``), ``train_log.jsonl`` and ``loss.png``.

Run it with ``torchrun --nproc-per-node N -m retr train ...`` for N processes (DDP; see docs/training.md).
Checkpoints live in the artifact's tmp dir; re-running the same command after a crash or kill resumes exactly.
"""

from __future__ import annotations

import json
import math
import time
from contextlib import nullcontext
from pathlib import Path

import torch

from retr.data.artifacts import ArtifactError, ArtifactWriter, MANIFEST, config_dict, open_artifact, sha256_json
from retr.data.datasets import Dataset
from retr.retrieval.hardware import resolve_precision  # auto: bf16 only where the hardware computes it
from retr.training import checkpoint
from retr.training import distributed as D
from retr.training.base import base_spec, load_base
from retr.training.config import TrainConfig
from retr.training.data import PassagePair, QueryExample, Schedule, read_passage_pairs, read_training_set, sample_group
from retr.training.llara import add_placeholders, encode_pairs, encoder_templates
from retr.training.log import TrainLog, plot_losses
from retr.training.lora import apply_lora, trainable_parameters
from retr.training.modeling import prompt_length, training_encoder
from retr.training.step import Trainee, build_batch, run_micro_batch, to_device

__all__ = ["TrainConfig", "train"]

LLARA_DEFAULT_DATA = "wikipedia/passages.jsonl.gz"


def _load_examples(cfg: TrainConfig) -> tuple[list[QueryExample] | list[PassagePair], dict]:
    """The examples and the manifest input record of the data."""
    if cfg.objective == "llara":
        spec = cfg.data or LLARA_DEFAULT_DATA
        return read_passage_pairs(spec, cfg.max_examples), Dataset(spec).as_input(None)
    if not cfg.data:
        raise ArtifactError("--data: fine-tuning needs a training-set artifact; make one with `retr mine`")
    artifact = open_artifact(cfg.data, kind="training-set", verify=False)
    artifact.verify(["train.jsonl"])
    return read_training_set(artifact.file("train.jsonl"), cfg.max_examples), artifact.as_input()


def encoder_options(cfg: TrainConfig, tokenizer) -> dict:
    """EncoderOptions of the trained model (field names of retr.retrieval.encoder.EncoderOptions)."""
    options = {
        "pooling": cfg.pooling,
        "attention": cfg.attention,
        "query_template": cfg.query_template,
        "passage_template": cfg.passage_template,
        "normalize": True,
        "max_query_length": cfg.max_query_length,
        "max_passage_length": cfg.max_passage_length,
        "dtype": "auto",
        "quantize": None,
    }
    if cfg.objective == "llara":
        # LLaRA's prompts, causal attention and the mean of the k placeholder states (the last k tokens: the encoder
        # truncates inside the text only, so the budgets grow by the prompt's length), as in training.
        templates = encoder_templates(cfg.llara_tokens)
        options.update(templates, attention="causal", pooling=f"last{cfg.llara_tokens}")
        for side in ("query", "passage"):
            budget = cfg.max_query_length if side == "query" else cfg.max_passage_length
            options[f"max_{side}_length"] = budget + prompt_length(tokenizer, templates[f"{side}_template"])
    return options


class _Batches:
    """This process's share of global micro-batch ``m``, as tensors on the device."""

    def __init__(self, examples, encoder, cfg: TrainConfig, ctx: D.Context):
        if cfg.batch_size % ctx.world:
            raise ValueError(f"batch_size {cfg.batch_size} is not divisible by the {ctx.world} processes")
        self.examples, self.encoder, self.cfg, self.ctx = examples, encoder, cfg, ctx
        self.schedule = Schedule(len(examples), cfg.batch_size, cfg.seed)
        self.local = cfg.batch_size // ctx.world

    def __call__(self, m: int) -> dict:
        epoch, indices = self.schedule.batch(m)
        mine = indices[self.ctx.rank * self.local : (self.ctx.rank + 1) * self.local]
        cfg = self.cfg
        if cfg.objective == "llara":
            pairs = [(self.examples[i].passage, self.examples[i].next) for i in mine]
            mb = encode_pairs(self.encoder.tokenizer, pairs, cfg.max_passage_length, cfg.llara_tokens)
        else:
            groups = [sample_group(self.examples[i], cfg.negatives, cfg.seed, epoch, i) for i in mine]
            mb = build_batch(groups, self.encoder, cfg)
        return to_device(mb, self.ctx.device)


def _precision(cfg: TrainConfig, device: torch.device):
    bf16 = resolve_precision(cfg.precision, device.type) == "bf16"
    return (lambda: torch.autocast(device.type, dtype=torch.bfloat16)) if bf16 else nullcontext


def total_steps(cfg: TrainConfig, per_epoch: int) -> int:
    return cfg.max_steps or max(1, math.floor(cfg.epochs * per_epoch / cfg.grad_accum))


def train(cfg: TrainConfig) -> Path:
    ctx = D.init(cfg.device)
    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    if (cfg.out / MANIFEST).exists() and not cfg.overwrite:
        raise ArtifactError(f"{cfg.out}: already exists; pass --overwrite or choose another output")

    examples, data_input = _load_examples(cfg)
    torch.manual_seed(cfg.seed)  # identical initialisation (new token rows, LoRA A) on every process
    model, tokenizer, base_input = load_base(cfg.model)
    model.config.use_cache = False
    new_tokens = sum(add_placeholders(tokenizer, model, cfg.llara_tokens), []) if cfg.objective == "llara" else None
    model = apply_lora(model, cfg.lora_r, cfg.lora_alpha, cfg.lora_dropout, cfg.lora_targets, new_tokens)
    if cfg.gradient_checkpointing:
        model.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
    model.to(ctx.device).train()
    params = trainable_parameters(model)
    encoder = training_encoder(model, tokenizer, encoder_options(cfg, tokenizer))
    batches = _Batches(examples, encoder, cfg, ctx)
    steps = total_steps(cfg, batches.schedule.per_epoch)
    optimizer = torch.optim.AdamW(params.values(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    from transformers import get_linear_schedule_with_warmup

    scheduler = get_linear_schedule_with_warmup(optimizer, round(cfg.warmup_ratio * steps), steps)
    module = D.wrap(Trainee(model, encoder, cfg, ctx), ctx)

    config = config_dict(cfg)
    inputs = [base_input, data_input]
    fingerprint = sha256_json({"config": config, "inputs": inputs, "world": ctx.world})
    writer = ArtifactWriter(cfg.out, "model", config, inputs, overwrite=cfg.overwrite) if ctx.main else None
    with writer or nullcontext():
        workdir = Path(D.broadcast(str(writer.dir) if writer else None, ctx))
        start = checkpoint.restore(workdir, params, optimizer, scheduler, fingerprint, ctx)
        if start == 0:
            torch.manual_seed(cfg.seed + 1 + ctx.rank)  # dropout stream of this process
        log = TrainLog(workdir / "train_log.jsonl", start) if ctx.main else None
        seconds = _fit(module, batches, optimizer, scheduler, params, cfg, ctx, start, steps, log, workdir, fingerprint)
        if ctx.main:
            assert writer is not None and log is not None
            records = log.records()
            _write_model(writer.dir, model, tokenizer, cfg)
            plot_losses(records, writer.dir / "loss.png", f"retr train --objective {cfg.objective}")
            checkpoint.remove(writer.dir)
            writer.metrics.update(_metrics(records, params, len(examples), steps, ctx))
            writer.metrics["precision"] = resolve_precision(cfg.precision, ctx.device.type)
            samples = (steps - start) * cfg.batch_size * cfg.grad_accum
            writer.timing.update(train_seconds=round(seconds, 3), samples_per_s=round(samples / max(seconds, 1e-9), 3))
    D.barrier(ctx)
    return cfg.out


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
        if cfg.max_grad_norm:
            torch.nn.utils.clip_grad_norm_(list(params.values()), cfg.max_grad_norm)
        optimizer.step()
        scheduler.step()
        optimizer.zero_grad(set_to_none=True)
        record = D.mean_over_processes(sums, ctx)
        elapsed = time.perf_counter() - t0
        record = {"step": step + 1, **{k: round(v, 6) for k, v in record.items()}}
        record.update(lr=scheduler.get_last_lr()[0], samples_per_s=round(cfg.batch_size * cfg.grad_accum / elapsed, 3))
        if log is not None:
            log.write(record)
        bar.set_postfix({k: f"{v:.4g}" for k, v in record.items() if k not in ("step", "lr")}, refresh=False)
        bar.update()
        done = step + 1
        if done < steps and cfg.checkpoint_every and done % cfg.checkpoint_every == 0:
            checkpoint.save(workdir, done, params, optimizer, scheduler, fingerprint, ctx)
    bar.close()
    return time.perf_counter() - began


def _write_model(directory: Path, model, tokenizer, cfg: TrainConfig) -> None:
    import yaml

    model.save_pretrained(directory / "adapter", save_embedding_layers=False)
    tokenizer.save_pretrained(directory / "tokenizer")
    encoder = {"base": base_spec(cfg.model), "adapter": "adapter", "options": encoder_options(cfg, tokenizer)}
    (directory / "encoder.json").write_text(json.dumps(encoder, indent=2) + "\n")
    (directory / "train_config.yaml").write_text(yaml.safe_dump(config_dict(cfg), sort_keys=False))


def _metrics(records: list[dict], params: dict, n_examples: int, steps: int, ctx: D.Context) -> dict:
    last = records[-1] if records else {}
    first = records[0] if records else {}
    return {
        "steps": steps,
        "examples": n_examples,
        "processes": ctx.world,
        "trainable_parameters": sum(p.numel() for p in params.values()),
        "first_loss": first.get("loss"),
        "final_loss": last.get("loss"),
        "final_parts": {k: v for k, v in last.items() if k not in ("step", "lr", "samples_per_s", "loss")},
    }
