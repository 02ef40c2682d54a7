"""LLaRA: one joint [passage][EBAE][EBAR] pass equals two separate passes; placeholders come from the tokenizer;
the BOW losses train only LoRA and the added token rows."""

from __future__ import annotations

import pytest
import torch

from retr.retrieval.attention import forward_hidden
from retr.retrieval.encoder import tokenize_prompted
from retr.retrieval import prompts
from retr.training.llara import add_placeholders, encode_pairs, joint_hidden, llara_losses

PAIRS = [
    ("star planet orbit rocket moon galaxy comet", "ocean wave fish boat"),
    ("bread cheese", "guitar piano melody song drum choir violin rhythm concert tune and the oak"),
    ("football tennis runner goal match", "forest leaf"),
]


def _load(path, attn):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    model = AutoModelForCausalLM.from_pretrained(path, attn_implementation=attn, dtype=torch.float32).eval()
    return model, AutoTokenizer.from_pretrained(path)


def _separate(model, tokenizer, prompt_ids_list):
    """Right-padded [passage][prompt] rows through the plain causal model."""
    width = max(map(len, prompt_ids_list))
    ids = torch.tensor([r + [tokenizer.pad_token_id] * (width - len(r)) for r in prompt_ids_list])
    mask = torch.tensor([[1] * len(r) + [0] * (width - len(r)) for r in prompt_ids_list])
    return forward_hidden(model, ids, mask, "causal")


@pytest.mark.parametrize("arch", ["tiny_llama", "tiny_qwen2"])
@pytest.mark.parametrize("attn", ["eager", "sdpa"])
def test_joint_pass_equals_separate_passes(arch, attn, request):
    model, tokenizer = _load(request.getfixturevalue(arch), attn)
    torch.manual_seed(0)
    ebae_ids, ebar_ids = add_placeholders(tokenizer, model, 3)
    batch = encode_pairs(tokenizer, PAIRS, 64, len(ebae_ids))
    with torch.no_grad():
        joint = joint_hidden(model, batch)
        # the two prompts as separate sequences, tokenised as the encoder does
        preset = prompts.llara(3)
        ebae_rows = tokenize_prompted(tokenizer, [p for p, _ in PAIRS], preset.passage, 200)
        ebar_rows = tokenize_prompted(tokenizer, [p for p, _ in PAIRS], preset.query, 200)
        alone_ae = _separate(model, tokenizer, ebae_rows)
        alone_ar = _separate(model, tokenizer, ebar_rows)
    for i, (ae_row, ar_row) in enumerate(zip(ebae_rows, ebar_rows)):
        ae_pos = list(range(len(ae_row) - 3, len(ae_row)))
        ar_pos = list(range(len(ar_row) - 3, len(ar_row)))
        # the placeholders are where the batch says they are
        assert batch.input_ids[i, batch.ebae_index[i]].tolist() == ebae_ids
        assert batch.input_ids[i, batch.ebar_index[i]].tolist() == ebar_ids
        torch.testing.assert_close(joint[i, batch.ebae_index[i]], alone_ae[i, ae_pos], atol=1e-5, rtol=1e-4)
        torch.testing.assert_close(joint[i, batch.ebar_index[i]], alone_ar[i, ar_pos], atol=1e-5, rtol=1e-4)
    # and the mask matters: without it, EBAR states would see the EBAE prompt and differ
    plain = forward_hidden(model, batch.input_ids, batch.attention_mask, "causal")
    last = len(ebar_rows[0])
    assert not torch.allclose(plain[0, batch.ebar_index[0]], alone_ar[0, last - 3 : last], atol=1e-3)


def test_placeholders_are_new_special_tokens(tiny_llama):
    model, tokenizer = _load(tiny_llama, "sdpa")
    before = len(tokenizer)
    ebae_ids, ebar_ids = add_placeholders(tokenizer, model, 4)
    assert len(tokenizer) == before + 8
    assert sorted(ebae_ids + ebar_ids) == list(range(before, before + 8))
    assert model.get_input_embeddings().num_embeddings == len(tokenizer)
    # each placeholder is one token, whatever the surrounding text
    assert tokenizer("x<s1><s8>y", add_special_tokens=False)["input_ids"].count(ebae_ids[0]) == 1
    # adding again (a LLaRA-adapted base) changes nothing
    assert add_placeholders(tokenizer, model, 4) == (ebae_ids, ebar_ids)
    assert len(tokenizer) == before + 8


def test_bow_targets_are_the_passage_and_the_next_passage(tiny_llama):
    model, tokenizer = _load(tiny_llama, "sdpa")
    ebae_ids, ebar_ids = add_placeholders(tokenizer, model, 2)
    batch = encode_pairs(tokenizer, PAIRS[:1], 64, len(ebae_ids))
    own = set(tokenizer(PAIRS[0][0], add_special_tokens=False)["input_ids"])
    following = set(tokenizer(PAIRS[0][1], add_special_tokens=False)["input_ids"])
    assert {t for t in batch.bow_self[0].tolist() if t >= 0} == own
    assert {t for t in batch.bow_next[0].tolist() if t >= 0} == following


def test_llara_loss_trains_lora_and_new_rows_only(tiny_llama):
    from retr.training.lora import apply_lora, trainable_parameters

    model, tokenizer = _load(tiny_llama, "sdpa")
    torch.manual_seed(0)
    ebae_ids, ebar_ids = add_placeholders(tokenizer, model, 2)
    rows_before = model.get_input_embeddings().weight.detach().clone()
    model = apply_lora(model, 8, 16, 0.0, "all-linear", ebae_ids + ebar_ids).train()
    batch = encode_pairs(tokenizer, PAIRS, 64, len(ebae_ids))
    params = trainable_parameters(model)
    assert params and all("lora_" in n or "trainable_tokens" in n for n in params)
    frozen = {n: p.detach().clone() for n, p in model.named_parameters() if not p.requires_grad}
    optimizer = torch.optim.AdamW(params.values(), lr=1e-2)
    losses = []
    for _ in range(8):
        parts = llara_losses(model, batch, with_lm=True)
        assert set(parts) == {"ebae", "ebar", "lm"} and all(torch.isfinite(v) for v in parts.values())
        loss = (parts["ebae"] + parts["ebar"]) / 2 + 0.5 * parts["lm"]
        loss.backward()
        if losses:  # from the 2nd step on (lora_B starts at 0, so lora_A's first gradient is 0)
            assert [n for n, p in params.items() if p.grad is None or not p.grad.abs().sum() > 0] == []
        optimizer.step()
        optimizer.zero_grad()
        losses.append(float(loss.detach()))
    assert losses[-1] < losses[0]
    for n, p in model.named_parameters():
        if not p.requires_grad:
            assert torch.equal(p, frozen[n]), n
    # the added rows did move (through the trainable-tokens adapter), the others did not
    rows_after = model.get_input_embeddings()(torch.arange(len(tokenizer))).detach()
    moved = (rows_after - rows_before).abs().sum(1) > 0
    assert moved.nonzero().flatten().tolist() == sorted(ebae_ids + ebar_ids)


def test_prompts_are_the_papers_for_eight_tokens_and_follow_k():
    preset = prompts.llara(8)
    assert preset.passage == (
        '"{text}", summarize the above passage within eight words: <s1><s2><s3><s4><s5><s6><s7><s8>'
    )
    assert preset.query == (
        '"{text}", predict the following passage within eight words: <s9><s10><s11><s12><s13><s14><s15><s16>'
    )
    assert prompts.PRESETS["llara"] == preset
    assert prompts.llara(2) == prompts.PromptPreset(
        '"{text}", predict the following passage within two words: <s3><s4>',
        '"{text}", summarize the above passage within two words: <s1><s2>',
    )
    assert "within 20 words" in prompts.llara(20).query
