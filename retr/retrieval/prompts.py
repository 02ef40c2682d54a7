"""Query and passage prompt templates, with named presets.

A template is a string holding ``{text}`` once (replaced literally, so other braces are allowed). Wherever a
template is expected, a preset name may be given instead and resolves to that preset's query or passage side.

- ``none``: the bare text (sentence-transformers models, our default).
- ``e5``: the E5-mistral / ULLME instruction on the query side only:
  ``Instruct: <task>\\nQuery: {text}``; :func:`instruction` builds it for another task description.
- ``llara``: LLaRA's prompts (Li et al., 2023): passages with the EBAE prompt (``"<passage>", summarize the above
  passage within eight words: <s1>...<s8>``), queries with the EBAR prompt (``"<query>", predict the following
  passage within eight words: <s9>...<s16>``). The ``<sN>`` markers are new tokens that training adds.
"""

from __future__ import annotations

from dataclasses import dataclass

PLACEHOLDER = "{text}"
DEFAULT_TASK = "Given a web search query, retrieve relevant passages that answer the query"
LLARA_PASSAGE_MARKERS = tuple(f"<s{i}>" for i in range(1, 9))
LLARA_QUERY_MARKERS = tuple(f"<s{i}>" for i in range(9, 17))


@dataclass(frozen=True)
class PromptPreset:
    query: str
    passage: str


def instruction(task: str = DEFAULT_TASK) -> str:
    """E5-style instructed query template for a task description."""
    return f"Instruct: {task}\nQuery: {PLACEHOLDER}"


PRESETS: dict[str, PromptPreset] = {
    "none": PromptPreset(PLACEHOLDER, PLACEHOLDER),
    "e5": PromptPreset(instruction(), PLACEHOLDER),
    "llara": PromptPreset(
        f'"{PLACEHOLDER}", predict the following passage within eight words: {"".join(LLARA_QUERY_MARKERS)}',
        f'"{PLACEHOLDER}", summarize the above passage within eight words: {"".join(LLARA_PASSAGE_MARKERS)}',
    ),
}


def resolve(template: str, side: str) -> str:
    """A template string, or a preset name resolved to its ``side`` ("query" or "passage")."""
    if side not in ("query", "passage"):
        raise ValueError(f"side must be 'query' or 'passage', not {side!r}")
    if template in PRESETS:
        return getattr(PRESETS[template], side)
    if template.count(PLACEHOLDER) != 1:
        raise ValueError(
            f"{side} template {template!r} must contain {PLACEHOLDER} exactly once "
            f"(or be a preset: {', '.join(PRESETS)})"
        )
    return template


def apply(template: str, text: str) -> tuple[str, int]:
    """The prompt for ``text`` and the character offset where ``text`` starts in it."""
    start = template.index(PLACEHOLDER)
    return template[:start] + text + template[start + len(PLACEHOLDER):], start
