"""How texts become vectors (:class:`EncoderOptions`): the one definition of the encoder options.

Kept free of torch, because the CLI builds the options of `retr index` and `retr train` from these fields
(:func:`retr.data.options.include`) before any model is loaded; :mod:`retr.retrieval.encoder` uses them.
"""

from __future__ import annotations

import dataclasses
import re
from dataclasses import dataclass
from typing import Any

from retr.data.errors import UsageError
from retr.data.options import option
from retr.retrieval import prompts

QUANTIZE = (None, "int8")
DTYPES = ("auto", "float32", "bfloat16", "float16", "bf16-autocast")
LAST_K = re.compile(r"^last(\d+)$")  # "last8": mean of the last 8 tokens (LLaRA's 8 prompt placeholders)


@dataclass
class EncoderOptions:
    """How texts become vectors. Templates may also be preset names (see :mod:`retr.retrieval.prompts`).

    ``pooling``: one of :data:`retr.retrieval.pooling.POOLINGS`, or ``last<k>`` = the mean of the last k tokens
    (LLaRA embeds a text as the mean of its prompt's k placeholder states, which end the sequence).
    """

    pooling: str = option("mean", "Pooling of token states: mean | last | first | weighted_mean | last<k> (the "
                          "mean of the last k tokens)")
    attention: str = option("bidirectional", "bidirectional | causal (decoders only)")
    query_template: str = option("{text}", "Query template with {text}, or a preset name (none, e5, llara)")
    passage_template: str = option("{text}", "Passage template with {text}, or a preset name (none, e5, llara)")
    normalize: bool = option(True, "L2-normalise vectors")
    max_query_length: int = option(64, "Max query tokens, prompt included")
    max_passage_length: int = option(256, "Max passage tokens, prompt included")
    dtype: str = option("auto", "auto (bf16 on a GPU; bf16-autocast on a CPU with native bf16, AVX512-BF16/AMX; "
                                "else float32) | float32 | bfloat16 | float16 | bf16-autocast (fp32 weights, bf16 "
                                "matmuls)")
    quantize: str | None = option(None, "int8: dynamic int8 quantisation of Linear layers (CPU)")

    def __post_init__(self) -> None:
        from retr.retrieval.attention import ATTENTIONS  # torch: only once options are made
        from retr.retrieval.pooling import POOLINGS

        if self.pooling not in POOLINGS and not LAST_K.match(self.pooling):
            raise UsageError(f"unknown pooling {self.pooling!r}; choose one of {', '.join(POOLINGS)} or last<k>")
        if self.attention not in ATTENTIONS:
            raise UsageError(f"unknown attention {self.attention!r}; choose one of {', '.join(ATTENTIONS)}")
        if self.quantize not in QUANTIZE:
            raise UsageError(f"unknown quantize {self.quantize!r}; choose int8 or leave it unset")
        if self.dtype not in DTYPES:
            raise UsageError(f"unknown dtype {self.dtype!r}; choose one of {', '.join(DTYPES)}")
        for name in ("max_query_length", "max_passage_length"):
            if int(getattr(self, name)) < 1:
                raise UsageError(f"{name} must be at least 1")
        self.query_template = prompts.resolve(self.query_template, "query")
        self.passage_template = prompts.resolve(self.passage_template, "passage")

    @classmethod
    def fields(cls) -> set[str]:
        return {f.name for f in dataclasses.fields(cls)}

    def as_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)
