"""The training configuration (one flat dataclass, so YAML files and CLI options map 1:1 onto it).

Kept free of heavy imports: the CLI builds its options from these fields and their ``help`` metadata. The
objectives come from their registry (:mod:`retr.training.objectives`); the embedding-format fields default to None,
which means "as the starting model, else the encoder's default" (:mod:`retr.training.format`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from retr.training.log import REPORT_TO
from retr.training.objectives import OBJECTIVES, get as get_objective

PARALLEL = ("ddp", "fsdp")  # how torchrun processes share the model (retr.training.distributed.wrap)
GEN_TEMPLATE = "Given a search query, write a passage that answers it.\nQuery: {query}\nPassage:"


def _opt(default, help: str):  # noqa: A002 - mirrors typer's keyword
    return field(default=default, metadata={"help": help})


@dataclass
class TrainConfig:
    # what to train, on what, from what
    objective: str = _opt("grl", f"training objective: {', '.join(OBJECTIVES)}")
    data: list[str] = field(
        default_factory=list,
        metadata={"help": "training-set artifacts (from `retr mine`; repeat the option for several, sampled in "
                          "proportion to their sizes) for fine-tuning; passage corpus specs for llara "
                          "(default for llara: wikipedia/passages.jsonl.gz under the data dir)"},
    )
    model: str = _opt("default", "base model: 'default' (SmolLM2-135M), a local HF dir or a 'model' artifact dir")
    out: Path = _opt(Path("runs/train"), "output 'model' artifact directory")
    overwrite: bool = _opt(False, "replace an existing output artifact")
    seed: int = _opt(0, "random seed (data order, negatives sampling, dropout)")
    # embedding format (recorded in encoder.json, so `retr index` encodes as training did). None = the starting
    # model's (a model artifact's encoder.json), else the encoder default; an objective may fix some (llara).
    pooling: str | None = _opt(None, "pooling of token states: mean, last, first, weighted_mean, last<k> "
                                     "(unset: the starting model's, else mean)")
    attention: str | None = _opt(None, "attention of the embedding side: bidirectional or causal "
                                       "(unset: the starting model's, else bidirectional)")
    query_template: str | None = _opt(None, "query prompt template with {text}, or a preset: none, e5, llara "
                                            "(unset: the starting model's, else {text})")
    passage_template: str | None = _opt(None, "passage ('title text') prompt template with {text}, or a preset "
                                              "(unset: the starting model's, else {text})")
    max_query_length: int | None = _opt(None, "query text tokens, the prompt's tokens not counted "
                                              "(unset: the starting model's, else 64)")
    max_passage_length: int | None = _opt(None, "passage text tokens, the prompt's tokens not counted "
                                                "(unset: the starting model's, else 256)")
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
    precision: str = _opt("auto", "auto (bf16 autocast on a GPU or a CPU with native bf16: AVX512-BF16/AMX; else fp32), bf16 or fp32")
    parallel: str = _opt("ddp", "multi-process training under torchrun: ddp (a full replica per process) or fsdp "
                                "(FSDP2: parameters, gradients and optimizer state sharded over the processes, "
                                "one decoder layer gathered at a time); no effect on a plain process")
    device: str = _opt("auto", "auto, cpu, cuda or cuda:N (torchrun sets one GPU per process)")
    threads: int = _opt(0, "torch CPU threads (0 = torch's default)")
    checkpoint_every: int = _opt(50, "steps between resumable checkpoints (inside the tmp output dir); loss.png "
                                     "is redrawn at each")
    report_to: str = _opt("none", "none, or tensorboard: scalars (each loss part, lr, samples/s, gradient norm) "
                                  "written as training runs into tensorboard/ of the output")

    def __post_init__(self) -> None:
        self.out = Path(self.out)
        self.data = [self.data] if isinstance(self.data, (str, Path)) else list(self.data or [])
        self.data = [str(d) for d in self.data]
        if self.batch_size < 1 or self.grad_accum < 1 or self.chunk_size < 1:
            raise ValueError("batch_size, grad_accum and chunk_size must be >= 1")
        if self.max_steps < 0 or self.epochs <= 0 or self.lr <= 0:
            raise ValueError("max_steps must be >= 0 (0: from epochs), epochs and lr > 0")
        if self.report_to not in REPORT_TO:
            raise ValueError(f"unknown report_to {self.report_to!r}; choose one of {', '.join(REPORT_TO)}")
        if self.parallel not in PARALLEL:
            raise ValueError(f"unknown parallel {self.parallel!r}; choose one of {', '.join(PARALLEL)}")
        if self.precision not in ("auto", "bf16", "fp32"):
            raise ValueError(f"unknown precision {self.precision!r}; choose auto, bf16 or fp32")
        get_objective(self.objective).validate(self)
