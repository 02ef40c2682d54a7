"""The two sides of one backbone: the embedding side and the generation side.

- Embedding side: retr's own :class:`retr.retrieval.encoder.Encoder` around the model being trained, with the
  options that ``encoder.json`` records: the same tokenisation (prompt kept whole, text truncated, EOS for last
  pooling), attention (bidirectional, or causal for the ablation) and pooling as ``retr index`` uses later.
- Generation side, always causal: the log-probability of a passage given a query under the prompt
  ``gen_template.format(query=query) + " " + passage`` (default template in :mod:`retr.training.config`:
  "Given a search query, write a passage that answers it.\\nQuery: {query}\\nPassage:"). Only passage tokens are
  scored; the prompt gets the tokenizer's special tokens (BOS where it has one), the passage none.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from retr.retrieval.attention import forward_hidden
from retr.training.batch import Batch


def unwrap(model: torch.nn.Module) -> torch.nn.Module:
    """The transformers model inside a peft wrapper (the one holding ``lm_head``)."""
    return model.get_base_model() if hasattr(model, "get_base_model") else model


def lm_head(model: torch.nn.Module) -> torch.nn.Module:
    return unwrap(model).get_output_embeddings()


def training_encoder(model: torch.nn.Module, tokenizer, options: dict):
    """An Encoder (tokenize, collate, differentiable embed) over the model being trained."""
    from retr.retrieval.encoder import Encoder

    return Encoder.wrap(model, tokenizer, spec="training", **options)


def tokenize_side(encoder, texts: list[str], side: str) -> Batch:
    """``side`` = "query" or "passage": the encoder's prompts, truncation and padding."""
    input_ids, attention_mask = encoder.collate(encoder.tokenize(texts, side))
    return {"input_ids": input_ids, "attention_mask": attention_mask}


def embed(encoder, batch: Batch) -> torch.Tensor:
    """Pooled (normalized when the options say so) embeddings [n, dim] in float32, with their graph."""
    return encoder.embed(batch["input_ids"], batch["attention_mask"]).float()


def prompt_length(tokenizer, template: str) -> int:
    """Tokens of a template without its text: what a text budget grows by (texts are truncated, prompts never)."""
    return len(tokenizer(template.replace("{text}", ""))["input_ids"])


def tokenize_generation(
    tokenizer, queries: list[str], passages: list[str], template: str, max_query: int, max_passage: int
) -> Batch:
    """The prompt (``template`` with ``{query}``; the query cut to ``max_query`` tokens, the instruction kept, by
    the encoder's ``tokenize_prompted``) followed by " " + the passage (cut to ``max_passage`` tokens).

    ``target_mask`` marks the passage tokens, the ones whose log-probability is scored.
    """
    from retr.retrieval.encoder import tokenize_prompted

    prompt = template.replace("{query}", "{text}")
    prompts = tokenize_prompted(tokenizer, queries, prompt, max_query + prompt_length(tokenizer, prompt))
    rows, targets = [], []
    for prompt_ids, passage in zip(prompts, passages):
        passage_ids = tokenizer(" " + passage, add_special_tokens=False, truncation=True, max_length=max_passage)
        rows.append(prompt_ids + passage_ids["input_ids"])
        targets.append([0] * len(prompt_ids) + [1] * len(passage_ids["input_ids"]))
    width = max(map(len, rows))
    pad = tokenizer.pad_token_id
    input_ids = torch.tensor([r + [pad] * (width - len(r)) for r in rows])
    attention_mask = torch.tensor([[1] * len(r) + [0] * (width - len(r)) for r in rows])
    target_mask = torch.tensor([t + [0] * (width - len(t)) for t in targets])
    return {"input_ids": input_ids, "attention_mask": attention_mask, "target_mask": target_mask}


def sequence_logprobs(model: torch.nn.Module, batch: Batch) -> torch.Tensor:
    """Per sequence, the sum of the target tokens' log-probabilities (causal attention).

    The LM head runs only on the states that predict a target token, which keeps the [tokens, vocab] logits small.
    """
    hidden = forward_hidden(model, batch["input_ids"], batch["attention_mask"], "causal")
    predicts = batch["target_mask"][:, 1:].bool()  # state t predicts token t+1
    rows = torch.nonzero(predicts, as_tuple=True)[0]
    logits = lm_head(model)(hidden[:, :-1][predicts]).float()
    token_logps = -F.cross_entropy(logits, batch["input_ids"][:, 1:][predicts], reduction="none")
    sums = torch.zeros(predicts.shape[0], dtype=token_logps.dtype, device=token_logps.device)
    return sums.index_add(0, rows, token_logps)


def target_counts(batch: Batch) -> torch.Tensor:
    """How many tokens :func:`sequence_logprobs` scores per sequence."""
    return batch["target_mask"][:, 1:].sum(1).float()
