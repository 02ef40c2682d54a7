"""The embedding format a trained model uses: prompt templates, pooling, attention and length budgets.

Each field of the format is decided by the first of:

1. the objective's requirement (LLaRA: its EBAE / EBAR prompts, causal attention, ``last<k>`` pooling);
2. an explicit option (a TrainConfig field that is not None);
3. the starting model's ``encoder.json`` when ``--model`` is a model artifact (so LLaRA -> CL keeps LLaRA's
   prompts, pooling and attention: the chain keeps its format, as fine-tuning does in the LLaRA paper);
4. the encoder's default (:class:`retr.retrieval.encoder.EncoderOptions`).

Length options are *text* budgets: the recorded ``max_*_length`` is the budget plus the tokens of that side's
prompt (the encoder truncates inside the text only, so a prompt never eats the text's budget). An inherited length
is turned back into a text budget with the starting model's template, so a changed template keeps the budget.
The result goes to ``encoder.json`` ("options", and "format": what was inherited and what was overridden) and the
manifest (``encoder_format``), and the embedding side of training uses exactly these options.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any, Callable

from retr.data.errors import UsageError

FIELDS = ("query_template", "passage_template", "pooling", "attention", "max_query_length", "max_passage_length")
SIDES = ("query", "passage")


def defaults() -> dict[str, Any]:
    """The encoder's defaults of the format fields, plus the fields training does not vary (normalize, ...)."""
    from retr.retrieval.encoder import EncoderOptions

    return {f.name: f.default for f in dataclasses.fields(EncoderOptions)}


@dataclass(frozen=True)
class EncoderFormat:
    """``options``: the complete EncoderOptions dict; ``inherited`` / ``overridden``: the fields taken from the
    starting model / set by an option or the objective; ``budgets``: the text budget of each side."""

    options: dict[str, Any]
    inherited: dict[str, Any] = field(default_factory=dict)
    overridden: dict[str, Any] = field(default_factory=dict)
    budgets: dict[str, int] = field(default_factory=dict)

    def text_budget(self, side: str) -> int:
        return self.budgets[side]

    def record(self) -> dict[str, Any]:
        """What encoder.json ("format") and the manifest (``encoder_format``) say about where each field came from."""
        return {"inherited": self.inherited, "overridden": self.overridden}


def resolve(
    explicit: dict[str, Any],
    inherited: dict[str, Any],
    required: dict[str, Any],
    prompt_tokens: Callable[[str], int],
    objective: str = "",
) -> EncoderFormat:
    """The format from the four sources (see the module docstring).

    ``explicit``: option values (None = not given); ``inherited``: the starting model's encoder.json options ({} for
    a plain backbone); ``required``: the objective's fixed fields; ``prompt_tokens(template)``: how many tokens a
    template adds around its text. An explicit option that contradicts the objective's requirement is refused.
    """
    from retr.retrieval import prompts

    explicit = {k: v for k, v in explicit.items() if v is not None}
    for name, value in required.items():
        given = explicit.get(name)
        if given is not None and _canonical(name, given) != _canonical(name, value):
            raise UsageError(f"--{name.replace('_', '-')} {given!r}: objective {objective} requires {value!r}; "
                             "leave the option unset")
    base = defaults()
    options = dict(base)
    inherited_used: dict[str, Any] = {}
    overridden: dict[str, Any] = {}
    for name in FIELDS:
        if name.startswith("max_"):
            continue
        if name in required:
            options[name] = required[name]
        elif name in explicit:
            options[name] = explicit[name]
        elif name in inherited:
            options[name] = inherited[name]
            inherited_used[name] = inherited[name]
            continue
        else:
            continue
        if _differs(name, options[name], inherited):
            overridden[name] = options[name]
    for name in ("query_template", "passage_template"):
        options[name] = prompts.resolve(options[name], name.split("_")[0])
    budgets = {}
    for side in SIDES:
        name, template = f"max_{side}_length", options[f"{side}_template"]
        if name in explicit:
            budgets[side] = int(explicit[name])
        elif name in inherited:
            old_template = prompts.resolve(inherited.get(f"{side}_template", "{text}"), side)
            budgets[side] = max(1, int(inherited[name]) - prompt_tokens(old_template))
        else:
            budgets[side] = int(base[name])
        options[name] = budgets[side] + prompt_tokens(template)
        if name in inherited and options[name] == int(inherited[name]):
            inherited_used[name] = options[name]
        elif name in explicit or name in inherited:
            overridden[name] = options[name]
    return EncoderFormat(options, inherited_used, overridden, budgets)


def _canonical(name: str, value: Any) -> Any:
    if name.endswith("_template"):
        from retr.retrieval import prompts

        return prompts.resolve(value, name.split("_")[0])
    return value


def _differs(name: str, value: Any, inherited: dict[str, Any]) -> bool:
    """Whether a set value is an override: anything set when nothing is inherited, else a different value."""
    return name not in inherited or _canonical(name, inherited[name]) != _canonical(name, value)
