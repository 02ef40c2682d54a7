"""The training configuration (one flat dataclass, so YAML files and CLI options map 1:1 onto it; the shared
encoder-format fields come from EncoderOptions by :func:`retr.data.options.include`).

Kept free of heavy imports: the CLI builds its options from these fields and their ``help`` metadata. The
objectives come from their registry (:mod:`retr.training.objectives`); the embedding-format fields default to None,
which means "as the starting model, else the encoder's default" (:mod:`retr.training.format`).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from retr.data.options import include, option
from retr.retrieval.encoder_options import EncoderOptions
from retr.training.log import REPORT_TO
from retr.training.objectives import OBJECTIVES, get as get_objective

PARALLEL = ("ddp", "fsdp")  # how torchrun processes share the model (retr.training.distributed.wrap)
GEN_TEMPLATE = "Given a search query, write a passage that answers it.\nQuery: {query}\nPassage:"


@dataclass
@include(EncoderOptions, after="seed", only=("pooling", "attention", "query_template", "passage_template"),
         unset="Default: the starting model's, else {default}")
class TrainConfig:
    # what to train, on what, from what
    objective: str = option("grl", f"training objective: {', '.join(OBJECTIVES)}")
    data: list[str] = option([], "training-set artifacts (from `retr mine`; repeat the option for several, sampled "
                             "in proportion to their sizes) for fine-tuning; passage corpus specs for llara "
                             "(default for llara: wikipedia/passages.jsonl.gz under the data dir)")
    model: str = option("default", "base model: 'default' (SmolLM2-135M), a local HF dir or a 'model' artifact dir")
    out: Path = option(Path("runs/train"), "output 'model' artifact directory")
    overwrite: bool = option(False, "replace an existing output artifact")
    seed: int = option(0, "random seed (data order, negatives sampling, dropout)")
    # embedding format (recorded in encoder.json, so `retr index` encodes as training did). None = the starting
    # model's (a model artifact's encoder.json), else the encoder default; an objective may fix some (llara).
    # pooling, attention, query_template and passage_template are EncoderOptions' fields (added by @include after
    # `seed`); the lengths are training's own: text budgets, the prompt's tokens not counted (retr.training.format).
    max_query_length: int | None = option(None, "query text tokens, the prompt's tokens not counted (unset: the "
                                          f"starting model's, else {EncoderOptions.max_query_length})")
    max_passage_length: int | None = option(None, "passage text tokens, the prompt's tokens not counted (unset: "
                                            f"the starting model's, else {EncoderOptions.max_passage_length})")
    # objectives
    temperature: float = option(0.05, "contrastive (InfoNCE) temperature on cosine similarities")
    negatives: int = option(3, "hard negatives per query (sampled from the mined list each epoch)")
    lambda_cl: float = option(1.0, "weight of the contrastive loss in grl / grl-sft / cl+sft")
    lambda_dpo: float = option(0.5, "weight of the DPO loss in grl")
    lambda_kl: float = option(1.0, "weight of the KL loss in grl / grl-sft")
    lambda_sft: float = option(1.0, "weight of the SFT loss in grl-sft / cl+sft")
    dpo_beta: float = option(0.1, "DPO beta (sigmoid loss)")
    gen_temperature: float = option(1.0, "temperature of the generation relevance distribution in KL")
    gen_template: str = option(GEN_TEMPLATE, "prompt of the generation side with {query}; ' ' + the passage follows")
    # LLaRA
    llara_tokens: int = option(8, "placeholder tokens per LLaRA prompt (EBAE and EBAR each)")
    llara_lm_weight: float = option(0.0, "weight of the next-token loss on the passage added to the LLaRA BOW losses")
    max_examples: int = option(0, "use at most this many training examples (0 = all)")
    # LoRA
    lora_r: int = option(16, "LoRA rank")
    lora_alpha: int = option(32, "LoRA alpha")
    lora_dropout: float = option(0.2, "LoRA dropout")
    lora_targets: str = option("all-linear", "LoRA target modules (peft syntax; comma-separated names or all-linear)")
    # optimisation
    batch_size: int = option(
        8, "queries (llara: passages) per micro-batch over all processes; a step sees batch_size x grad_accum"
    )
    grad_accum: int = option(1, "micro-batches accumulated per optimizer step")
    epochs: float = option(1.0, "passes over the training data (ignored when max_steps > 0)")
    max_steps: int = option(0, "optimizer steps (0 = derived from epochs)")
    lr: float = option(2e-4, "AdamW learning rate")
    weight_decay: float = option(0.0, "AdamW weight decay")
    warmup_ratio: float = option(0.1, "linear warm-up as a fraction of the steps, then linear decay")
    max_grad_norm: float = option(1.0, "gradient clipping (0 = off)")
    grad_cache: bool = option(
        True, "GradCache: loss on cached chunk outputs, chunks replayed one at a time (memory of one chunk)"
    )
    chunk_size: int = option(8, "sequences per forward chunk, embedding and generation sides (GradCache or not)")
    gradient_checkpointing: bool = option(False, "recompute activations in backward (saves memory, costs time)")
    precision: str = option("auto", "auto (bf16 autocast on a GPU or a CPU with native bf16: AVX512-BF16/AMX; else "
                                    "fp32), bf16 or fp32")
    parallel: str = option("ddp", "multi-process training under torchrun: ddp (a full replica per process) or fsdp "
                                  "(FSDP2: parameters, gradients and optimizer state sharded over the processes, "
                                  "one decoder layer gathered at a time); no effect on a plain process")
    device: str = option("auto", "auto, cpu, cuda or cuda:N (torchrun sets one GPU per process)")
    threads: int = option(0, "torch CPU threads (0 = torch's default)")
    checkpoint_every: int = option(50, "steps between resumable checkpoints (inside the tmp output dir); loss.png "
                                       "is redrawn at each")
    report_to: str = option("none", "none, or tensorboard: scalars (each loss part, lr, samples/s, gradient norm) "
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
