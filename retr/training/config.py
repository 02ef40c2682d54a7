"""The training configuration (one flat dataclass, so YAML files and CLI options map 1:1 onto it).

Kept free of heavy imports: the CLI builds its options from these fields and their ``help`` metadata.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

OBJECTIVES = ("llara", "cl", "sft", "dpo", "kl", "grl", "grl-sft", "cl+sft")

GEN_TEMPLATE = "Given a search query, write a passage that answers it.\nQuery: {query}\nPassage:"


def _opt(default, help: str):  # noqa: A002 - mirrors typer's keyword
    return field(default=default, metadata={"help": help})


@dataclass
class TrainConfig:
    # what to train, on what, from what
    objective: str = _opt("grl", f"training objective: {', '.join(OBJECTIVES)}")
    data: str | None = _opt(
        None,
        "training-set artifact (from `retr mine`) for fine-tuning; a passage corpus spec for llara "
        "(default for llara: wikipedia/passages.jsonl.gz under the data dir)",
    )
    model: str = _opt("default", "base model: 'default' (SmolLM2-135M), a local HF dir or a 'model' artifact dir")
    out: Path = _opt(Path("runs/train"), "output 'model' artifact directory")
    overwrite: bool = _opt(False, "replace an existing output artifact")
    seed: int = _opt(0, "random seed (data order, negatives sampling, dropout)")
    # embedding side (recorded in encoder.json, so `retr index` encodes as training did)
    pooling: str = _opt("mean", "pooling of token states: mean, last, first, weighted_mean")
    attention: str = _opt("bidirectional", "attention of the embedding side: bidirectional or causal (ablation)")
    query_template: str = _opt("{text}", "query prompt template with {text}, or a preset: none, e5, llara")
    passage_template: str = _opt("{text}", "passage ('title text') prompt template with {text}, or a preset")
    max_query_length: int = _opt(64, "max query tokens")
    max_passage_length: int = _opt(256, "max passage tokens")
    # objectives
    temperature: float = _opt(0.05, "contrastive (InfoNCE) temperature on cosine similarities")
    negatives: int = _opt(3, "hard negatives per query (sampled from the mined list each epoch)")
    lambda_cl: float = _opt(1.0, "weight of the contrastive loss in grl / grl-sft / cl+sft")
    lambda_dpo: float = _opt(0.5, "weight of the DPO loss in grl")
    lambda_kl: float = _opt(1.0, "weight of the KL loss in grl / grl-sft")
    lambda_sft: float = _opt(1.0, "weight of the SFT loss in grl-sft / cl+sft")
    dpo_beta: float = _opt(0.1, "DPO beta (sigmoid loss)")
    gen_temperature: float = _opt(1.0, "temperature of the generation relevance distribution in KL")
    gen_template: str = _opt(GEN_TEMPLATE, "prompt of the generation side with {query}; ' ' + the passage follows")
    # LLaRA
    llara_tokens: int = _opt(8, "placeholder tokens per LLaRA prompt (EBAE and EBAR each)")
    llara_lm_weight: float = _opt(0.0, "weight of the next-token loss on the passage added to the LLaRA BOW losses")
    max_examples: int = _opt(0, "use at most this many training examples (0 = all)")
    # LoRA
    lora_r: int = _opt(16, "LoRA rank")
    lora_alpha: int = _opt(32, "LoRA alpha")
    lora_dropout: float = _opt(0.2, "LoRA dropout")
    lora_targets: str = _opt("all-linear", "LoRA target modules (peft syntax; comma-separated names or all-linear)")
    # optimisation
    batch_size: int = _opt(
        8, "queries (llara: passages) per micro-batch over all processes; a step sees batch_size x grad_accum"
    )
    grad_accum: int = _opt(1, "micro-batches accumulated per optimizer step")
    epochs: float = _opt(1.0, "passes over the training data (ignored when max_steps > 0)")
    max_steps: int = _opt(0, "optimizer steps (0 = derived from epochs)")
    lr: float = _opt(2e-4, "AdamW learning rate")
    weight_decay: float = _opt(0.0, "AdamW weight decay")
    warmup_ratio: float = _opt(0.1, "linear warm-up as a fraction of the steps, then linear decay")
    max_grad_norm: float = _opt(1.0, "gradient clipping (0 = off)")
    grad_cache: bool = _opt(
        True, "GradCache: loss on cached chunk outputs, chunks replayed one at a time (memory of one chunk)"
    )
    chunk_size: int = _opt(8, "sequences per forward chunk, embedding and generation sides (GradCache or not)")
    gradient_checkpointing: bool = _opt(False, "recompute activations in backward (saves memory, costs time)")
    precision: str = _opt("auto", "auto (bf16 autocast on GPU, fp32 on CPU), bf16 or fp32")
    device: str = _opt("auto", "auto, cpu, cuda or cuda:N (torchrun sets one GPU per process)")
    threads: int = _opt(0, "torch CPU threads (0 = torch's default)")
    checkpoint_every: int = _opt(50, "steps between resumable checkpoints (inside the tmp output dir)")

    def __post_init__(self) -> None:
        self.out = Path(self.out)
        if self.objective not in OBJECTIVES:
            raise ValueError(f"unknown objective {self.objective!r}; choose one of {', '.join(OBJECTIVES)}")
        if self.batch_size < 1 or self.grad_accum < 1 or self.chunk_size < 1:
            raise ValueError("batch_size, grad_accum and chunk_size must be >= 1")
        if self.precision not in ("auto", "bf16", "fp32"):
            raise ValueError(f"unknown precision {self.precision!r}; choose auto, bf16 or fp32")
        if self.negatives < 1 and self.objective in ("dpo", "kl", "grl", "grl-sft"):
            raise ValueError(f"objective {self.objective} needs negatives >= 1")
