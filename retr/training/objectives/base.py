"""An objective: the loss parts it sums with their weights, the data it reads, and the hooks that build a
micro-batch and compute its parts.

This base class is the fine-tuning family on mined training sets (query, positives, hard negatives): its parts are
taken from :data:`FINE_TUNING_PARTS`, computed by :mod:`retr.training.step` (contrastive on embeddings, SFT / DPO /
KL on the generation side). An objective with other data or another loss (LLaRA) subclasses it and overrides the
hooks. Adding an objective is one module in this package that defines ``OBJECTIVES`` (a tuple of instances); the
registry (``__init__``) finds it, and tests/unit/training/test_objectives.py runs every registered objective.

Kept free of heavy imports at module level: the CLI lists the objectives without loading torch.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Callable, Sequence

from retr.data.errors import UsageError

if TYPE_CHECKING:
    import torch

    from retr.training.batch import MicroBatch
    from retr.training.config import TrainConfig
    from retr.training.distributed import Context
    from retr.training.format import EncoderFormat

EMBEDDING_PARTS = frozenset({"cl", "kl"})  # need query and passage embeddings
GENERATION_PARTS = frozenset({"sft", "dpo", "kl"})  # need log p(passage | query) from the LM head
NEGATIVE_PARTS = frozenset({"dpo", "kl"})  # compare the positive with hard negatives
FINE_TUNING_PARTS = frozenset({"cl"}) | GENERATION_PARTS

Weight = float | str  # a constant, or the name of the TrainConfig field that holds it


@dataclass(frozen=True)
class Objective:
    """``parts``: loss part -> weight; the loss is the weighted sum, and every part is logged."""

    name: str
    parts: dict[str, Weight]
    summary: str

    @property
    def needs_generation(self) -> bool:
        return bool(GENERATION_PARTS & self.parts.keys())

    @property
    def needs_embeddings(self) -> bool:
        return bool(EMBEDDING_PARTS & self.parts.keys())

    def weights(self, cfg: TrainConfig) -> dict[str, float]:
        return {part: float(getattr(cfg, w) if isinstance(w, str) else w) for part, w in self.parts.items()}

    # ------------------------------------------------------------------ hooks (fine-tuning family defaults)
    def validate(self, cfg: TrainConfig) -> None:
        """Refuse a configuration this objective cannot train with (a UsageError naming the option)."""
        unknown = set(self.parts) - FINE_TUNING_PARTS
        if unknown:
            raise TypeError(f"objective {self.name}: parts {sorted(unknown)} need their own loss hook")
        if NEGATIVE_PARTS & self.parts.keys() and cfg.negatives < 1:
            raise UsageError(f"--negatives: objective {self.name} needs at least 1 hard negative per query")

    def load(self, cfg: TrainConfig) -> tuple[list[Any], list[dict[str, Any]]]:
        """The training examples and one manifest input record per data source."""
        from retr.training.sources import training_sets

        return training_sets(cfg.data, cfg.max_examples)

    def new_tokens(self, tokenizer: Any, model: torch.nn.Module, cfg: TrainConfig) -> list[int] | None:
        """Token ids this objective adds to the vocabulary (trained through peft's trainable tokens)."""
        return None

    def required_format(self, cfg: TrainConfig) -> dict[str, Any]:
        """Embedding-format fields this objective fixes (they win over options and the starting model)."""
        return {}

    def build(self, examples: Sequence[Any], indices: list[int], epoch: int, encoder: Any, fmt: EncoderFormat,
              cfg: TrainConfig) -> Any:
        """The tensors of these examples (CPU): each query with its sampled positive and negatives for this epoch."""
        from retr.training.data import sample_group
        from retr.training.step import build_batch

        groups = [sample_group(examples[i], cfg.negatives, cfg.seed, epoch, i) for i in indices]
        return build_batch(groups, encoder, fmt, cfg, self)

    def loss(self, trainee: Any, mb: MicroBatch) -> dict[str, torch.Tensor]:
        """Every unweighted part of one micro-batch, all graphs kept (the uncached computation)."""
        from retr.training.step import fine_tuning_terms

        return fine_tuning_terms(trainee, mb)

    def run(self, module: torch.nn.Module, mb: Any, cfg: TrainConfig, ctx: Context, sync: bool, scale: float,
            autocast: Callable) -> dict[str, float]:
        """Forward and backward of one micro-batch; GradCache when the config asks for it."""
        from retr.training import step

        runner = step.run_cached if cfg.grad_cache else step.run_plain
        return runner(module, mb, self, cfg, ctx, sync, scale, autocast)
