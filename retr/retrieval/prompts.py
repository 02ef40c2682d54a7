"""Query and passage prompt templates, with named presets.

A template is a string holding ``{text}`` once (replaced literally, so other braces are allowed). Wherever a
template is expected, a preset name may be given instead and resolves to that preset's query or passage side.

- ``none``: the bare text (sentence-transformers models, our default).
- ``e5``: the E5-mistral / ULLME instruction on the query side only:
  ``Instruct: <task>\\nQuery: {text}``; :func:`instruction` builds it for another task description.
- ``llara``: LLaRA's prompts (Li et al., 2023) for k = 8 placeholders, built by :func:`llara`: passages with the
  EBAE prompt (``"<passage>", summarize the above passage within eight words: <s1>...<s8>``), queries with the
  EBAR prompt (``"<query>", predict the following passage within eight words: <s9>...<s16>``). The ``<sN>``
  markers are new tokens that LLaRA training adds.
"""

from __future__ import annotations

from dataclasses import dataclass

PLACEHOLDER = "{text}"
DEFAULT_TASK = "Given a web search query, retrieve relevant passages that answer the query"
NUMBERS = ("zero one two three four five six seven eight nine ten eleven twelve thirteen fourteen fifteen "
           "sixteen").split()


@dataclass(frozen=True)
class PromptPreset:
    query: str
    passage: str


def instruction(task: str = DEFAULT_TASK) -> str:
    """E5-style instructed query template for a task description."""
    return f"Instruct: {task}\nQuery: {PLACEHOLDER}"


def llara_markers(k: int) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """The 2k placeholder tokens: ``<s1>..<sk>`` end the EBAE (passage) prompt, ``<sk+1>..<s2k>`` the EBAR one."""
    names = tuple(f"<s{i}>" for i in range(1, 2 * k + 1))
    return names[:k], names[k:]


def llara(k: int) -> PromptPreset:
    """LLaRA's EBAR (query) and EBAE (passage) prompts with k placeholders; k is written as a word as the paper
    does ("eight"), so k = 8 gives the paper's prompts word for word."""
    if k < 1:
        raise ValueError(f"LLaRA needs at least one placeholder token, not {k}")
    words = NUMBERS[k] if k < len(NUMBERS) else str(k)
    ebae, ebar = llara_markers(k)
    return PromptPreset(
        query=f'"{PLACEHOLDER}", predict the following passage within {words} words: {"".join(ebar)}',
        passage=f'"{PLACEHOLDER}", summarize the above passage within {words} words: {"".join(ebae)}',
    )


PRESETS: dict[str, PromptPreset] = {
    "none": PromptPreset(PLACEHOLDER, PLACEHOLDER),
    "e5": PromptPreset(instruction(), PLACEHOLDER),
    "llara": llara(8),
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
