"""LLaRA (Li et al. 2023): unsupervised EBAE + EBAR bag-of-words prediction on consecutive passages.

Its data are passage corpora (pairs ``p-k``, ``p-(k+1)``), it adds 2k placeholder tokens, and it fixes the
embedding format (the EBAE / EBAR prompts, causal attention, the mean of the k placeholder states). The model code
lives in :mod:`retr.training.llara`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Callable, Sequence

from retr.data.errors import UsageError
from retr.training.objectives.base import Objective

if TYPE_CHECKING:
    import torch

    from retr.training.batch import JointBatch
    from retr.training.config import TrainConfig
    from retr.training.distributed import Context
    from retr.training.format import EncoderFormat


class Llara(Objective):
    def validate(self, cfg: TrainConfig) -> None:
        if cfg.llara_tokens < 1:
            raise UsageError("--llara-tokens: LLaRA needs at least 1 placeholder token per prompt")

    def load(self, cfg: TrainConfig) -> tuple[list[Any], list[dict[str, Any]]]:
        from retr.training.sources import passage_corpora

        return passage_corpora(cfg.data, cfg.max_examples)

    def new_tokens(self, tokenizer: Any, model: torch.nn.Module, cfg: TrainConfig) -> list[int]:
        from retr.training.llara import add_placeholders

        ebae, ebar = add_placeholders(tokenizer, model, cfg.llara_tokens)
        return ebae + ebar

    def required_format(self, cfg: TrainConfig) -> dict[str, Any]:
        """Passages get the EBAE prompt, queries the EBAR prompt; causal attention; the k placeholders pooled."""
        from retr.retrieval import prompts

        preset = prompts.llara(cfg.llara_tokens)
        return {"query_template": preset.query, "passage_template": preset.passage, "attention": "causal",
                "pooling": f"last{cfg.llara_tokens}"}

    def build(self, examples: Sequence[Any], indices: list[int], epoch: int, encoder: Any, fmt: EncoderFormat,
              cfg: TrainConfig) -> JointBatch:
        from retr.training.llara import encode_pairs

        pairs = [(examples[i].passage, examples[i].next) for i in indices]
        return encode_pairs(encoder.tokenizer, pairs, fmt.text_budget("passage"), cfg.llara_tokens)

    def loss(self, trainee: Any, mb: JointBatch) -> dict[str, torch.Tensor]:
        from retr.training.llara import llara_losses

        return llara_losses(trainee.model, mb, with_lm=bool(trainee.cfg.llara_lm_weight))

    def run(self, module: torch.nn.Module, mb: JointBatch, cfg: TrainConfig, ctx: Context, sync: bool,
            scale: float, autocast: Callable) -> dict[str, float]:
        """One joint pass, no chunks: GradCache does not apply."""
        from retr.training import step

        return step.run_plain(module, mb, self, cfg, ctx, sync, scale, autocast)


OBJECTIVES = (
    Llara("llara", {"ebae": 0.5, "ebar": 0.5, "lm": "llara_lm_weight"},
          "LLaRA EBAE + EBAR bag-of-words prediction on a passage corpus (unsupervised)"),
)
