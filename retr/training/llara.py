"""LLaRA (Li et al. 2023, "Llama2Vec"): unsupervised adaptation of a decoder LLM into an embedder.

Each passage is followed by two prompts, each ending in ``k`` placeholder tokens (special tokens added to the
tokenizer; the model's embeddings are resized and the new rows are trained and saved with the adapter)::

    "<passage>", summarize the above passage within k words: <s1>...<sk>          (EBAE)
    "<passage>", predict the following passage within k words: <sk+1>...<s2k>     (EBAR)

Both prompts share one forward pass: the sequence is ``[passage][EBAE][EBAR]`` with a 4D attention mask in which
EBAR tokens see the passage and EBAR but not EBAE, and EBAR position ids restart where EBAE starts; so each
placeholder state equals that of a separate ``[passage][prompt]`` pass (tested). The mean of the ``k`` placeholder
states is the embedding (as LLaRA's inference code does). Through the LM head it predicts a bag of words: the
passage's own tokens for EBAE, the next passage's tokens for EBAR; each BOW loss is the mean negative log-prob of
the unique target tokens, and the loss is their mean (plus, optionally, the passage's next-token loss).

The mask is built by transformers' own ``create_causal_mask`` with an extra ``and_mask_function``, so it has the
format the attention implementation expects (a boolean mask for sdpa, an additive float mask for eager); a 4D
mask is passed to the model as is (``masking_utils._preprocess_mask_arguments``).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from retr.retrieval import prompts
from retr.training.batch import JointBatch
from retr.training.modeling import lm_head, prompt_length, unwrap

MASKABLE = ("eager", "sdpa", "flex_attention")


def add_placeholders(tokenizer, model: torch.nn.Module, k: int) -> tuple[list[int], list[int]]:
    """Add the 2k placeholder tokens (no-op when present, e.g. a LLaRA-adapted base) and size the embeddings."""
    ebae, ebar = prompts.llara_markers(k)
    tokenizer.add_tokens(list(ebae + ebar), special_tokens=True)
    if len(tokenizer) > model.get_input_embeddings().num_embeddings:
        model.resize_token_embeddings(len(tokenizer))
    ids = tokenizer.convert_tokens_to_ids(list(ebae + ebar))
    return ids[:k], ids[k:]


def encode_pairs(tokenizer, pairs: list[tuple[str, str]], max_length: int, k: int) -> JointBatch:
    """Joint ``[passage][EBAE][EBAR]`` rows, right-padded, with segments, positions and BOW targets.

    Each side is tokenised exactly as the encoder will (``tokenize_prompted`` with the prompts of
    :func:`retr.retrieval.prompts.llara`, the passage cut to ``max_length`` tokens); the two token lists share
    their common prefix (the passage and the prompt's first tokens), which appears once.
    """
    from retr.retrieval.encoder import tokenize_prompted

    preset = prompts.llara(k)
    passages = [passage for passage, _ in pairs]
    sides = [
        tokenize_prompted(tokenizer, passages, t, max_length + prompt_length(tokenizer, t))
        for t in (preset.passage, preset.query)
    ]
    special = set(tokenizer.all_special_ids)

    def bag(text: str) -> list[int]:
        ids = tokenizer(text, add_special_tokens=False, truncation=True, max_length=max_length)["input_ids"]
        return sorted(set(ids) - special)

    rows, segments, positions, ebae_index, ebar_index = [], [], [], [], []
    for ae, ar in zip(*sides):
        shared = next(i for i, (a, b) in enumerate(zip(ae, ar)) if a != b)  # the placeholders always differ
        rows.append(ae + ar[shared:])
        segments.append([0] * shared + [1] * (len(ae) - shared) + [2] * (len(ar) - shared))
        positions.append(list(range(len(ae))) + list(range(shared, len(ar))))
        ebae_index.append(list(range(len(ae) - k, len(ae))))
        ebar_index.append(list(range(len(rows[-1]) - k, len(rows[-1]))))
    bows = [bag(passage) for passage in passages], [bag(following) for _, following in pairs]
    width, n_bow = max(map(len, rows)), max(1, max(len(b) for side in bows for b in side))

    def pad(seqs: list[list[int]], size: int, value: int) -> torch.Tensor:
        return torch.tensor([s + [value] * (size - len(s)) for s in seqs])

    return JointBatch(
        input_ids=pad(rows, width, tokenizer.pad_token_id),
        attention_mask=pad([[1] * len(r) for r in rows], width, 0),
        segments=pad(segments, width, -1),
        position_ids=pad(positions, width, 0),
        ebae_index=torch.tensor(ebae_index),
        ebar_index=torch.tensor(ebar_index),
        bow_self=pad(bows[0], n_bow, -1),
        bow_next=pad(bows[1], n_bow, -1),
    )


def joint_mask(model: torch.nn.Module, batch: JointBatch, dtype: torch.dtype):
    """The 4D mask: causal, padding, and 'a token sees the passage and its own prompt only'."""
    from transformers.masking_utils import create_causal_mask

    config = unwrap(model).config
    if config._attn_implementation not in MASKABLE:
        raise ValueError(
            f"LLaRA needs a custom 4D attention mask, which attn_implementation={config._attn_implementation!r} "
            f"does not take; load the model with one of {', '.join(MASKABLE)}"
        )
    segments = batch.segments

    def own_block(batch_idx, head_idx, q_idx, kv_idx):
        return (segments[batch_idx, kv_idx] == 0) | (segments[batch_idx, kv_idx] == segments[batch_idx, q_idx])

    shape = segments.shape
    return create_causal_mask(
        config=config,
        inputs_embeds=torch.empty(*shape, 0, dtype=dtype, device=segments.device),
        attention_mask=batch.attention_mask,
        past_key_values=None,
        position_ids=batch.position_ids,
        and_mask_function=own_block,
    )


def joint_hidden(model: torch.nn.Module, batch: JointBatch) -> torch.Tensor:
    """Last-layer states [batch, seq, dim] of the joint pass."""
    decoder = unwrap(model).get_decoder()
    mask = joint_mask(model, batch, model.get_input_embeddings().weight.dtype)
    out = decoder(input_ids=batch.input_ids, attention_mask=mask, position_ids=batch.position_ids)
    return out.last_hidden_state


def bow_loss(state: torch.Tensor, targets: torch.Tensor, head: torch.nn.Module) -> torch.Tensor:
    """Mean over examples of the mean -log p(token) over each example's unique target tokens (-1 = padding)."""
    logp = F.log_softmax(head(state).float(), dim=-1)
    valid = targets >= 0
    picked = logp.gather(1, targets.clamp(min=0)) * valid
    return -(picked.sum(1) / valid.sum(1).clamp(min=1)).mean()


def llara_losses(model: torch.nn.Module, batch: JointBatch, with_lm: bool = False) -> dict[str, torch.Tensor]:
    """The unweighted parts: ``ebae``, ``ebar`` and, with ``with_lm``, the passage's next-token loss ``lm``."""
    hidden = joint_hidden(model, batch)
    rows = torch.arange(hidden.shape[0], device=hidden.device)[:, None]
    head = lm_head(model)
    parts = {
        "ebae": bow_loss(hidden[rows, batch.ebae_index].mean(1), batch.bow_self, head),
        "ebar": bow_loss(hidden[rows, batch.ebar_index].mean(1), batch.bow_next, head),
    }
    if with_lm:
        passage = batch.segments == 0
        predicts = passage[:, :-1] & passage[:, 1:]
        logits = head(hidden[:, :-1][predicts]).float()
        parts["lm"] = F.cross_entropy(logits, batch.input_ids[:, 1:][predicts])
    return parts
