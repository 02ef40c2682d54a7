"""Encoder options: prompts and presets, truncation inside the text, EOS for last pooling, token-budget batches,
order preservation, normalisation, int8 quantisation."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from retr.retrieval import prompts
from retr.retrieval.encoder import EncoderOptions, load_encoder, token_budget_batches
from tests.unit.tiny_models import make_tiny_model

LONG = " ".join(["dense retrieval encodes queries and passages into vectors"] * 20)


@pytest.fixture(scope="module")
def llama(tmp_path_factory) -> Path:
    return make_tiny_model(tmp_path_factory.mktemp("enc") / "llama", "llama")


@pytest.fixture(scope="module")
def bert(tmp_path_factory) -> Path:
    return make_tiny_model(tmp_path_factory.mktemp("enc") / "bert", "bert")


def test_options_validate_and_resolve_presets() -> None:
    options = EncoderOptions(query_template="e5", passage_template="llara")
    assert options.query_template.startswith("Instruct: ") and options.query_template.endswith("Query: {text}")
    assert "summarize the above passage" in options.passage_template and "<s8>" in options.passage_template
    assert EncoderOptions(query_template="llara").query_template == prompts.PRESETS["llara"].query
    for bad in ({"pooling": "max"}, {"attention": "sideways"}, {"quantize": "int4"}, {"dtype": "int8"},
                {"query_template": "no placeholder"}, {"passage_template": "{text} {text}"}):
        with pytest.raises(ValueError):
            EncoderOptions(**bad)
    assert prompts.apply("a {text} b", "{x}") == ("a {x} b", 2), "braces in the text are kept literally"


def test_truncation_keeps_the_prompt_and_cuts_the_text(llama: Path) -> None:
    template = "Instruct: find it\nQuery: {text} (end of query)"
    encoder = load_encoder(str(llama), query_template=template, max_query_length=48)
    [ids] = encoder.tokenize([LONG], "query")
    assert len(ids) == 48
    prompt_only = encoder.tokenizer("Instruct: find it\nQuery:")["input_ids"]
    suffix = encoder.tokenizer(" (end of query)")["input_ids"]
    assert ids[: len(prompt_only)] == prompt_only and ids[-len(suffix):] == suffix
    [short] = encoder.tokenize(["cat"], "query")
    assert short == encoder.tokenizer(template.replace("{text}", "cat"))["input_ids"], "untruncated = joint tokens"


def test_last_pooling_appends_eos_within_the_budget(llama: Path) -> None:
    encoder = load_encoder(str(llama), pooling="last", max_passage_length=10)
    eos = encoder.tokenizer.eos_token_id
    [long_ids, short_ids] = encoder.tokenize([LONG, "the cat"], "passage")
    assert len(long_ids) == 10 and long_ids[-1] == eos and short_ids[-1] == eos
    assert long_ids.count(eos) == 1
    mean = load_encoder(str(llama), pooling="mean", max_passage_length=10)
    assert mean.tokenize(["the cat"], "passage")[0][-1] != eos


def test_encoder_model_keeps_its_special_tokens_when_truncating(bert: Path) -> None:
    encoder = load_encoder(str(bert), max_passage_length=12)
    [ids] = encoder.tokenize([LONG], "passage")
    tokenizer = encoder.tokenizer
    assert len(ids) == 12 and ids[0] == tokenizer.cls_token_id and ids[-1] == tokenizer.sep_token_id


def test_token_budget_batches_cover_everything_longest_first() -> None:
    lengths = [5, 50, 7, 50, 1, 20, 20, 3]
    batches = list(token_budget_batches(lengths, budget=100))
    flat = [i for batch in batches for i in batch]
    assert sorted(flat) == list(range(len(lengths)))
    assert [lengths[i] for i in flat] == sorted(lengths, reverse=True)
    for batch in batches:
        assert len(batch) * max(lengths[i] for i in batch) <= 100
    assert list(token_budget_batches([500], budget=100)) == [[0]], "an over-long text still gets a batch"
    assert all(len(b) <= 2 for b in token_budget_batches([1] * 9, budget=100, max_size=2))


def test_batched_encoding_keeps_order_and_normalises(llama: Path) -> None:
    texts = ["the cat sat", LONG, "proteins fold into shapes", "", "a dog"]
    encoder = load_encoder(str(llama), max_passage_length=32)
    encoder.batch_tokens = 40  # several batches
    batched = encoder.encode_passages(texts)
    singles = np.stack([encoder.encode_passages([t])[0] for t in texts])
    assert batched.dtype == np.float32 and batched.shape == (5, encoder.dim)
    np.testing.assert_allclose(batched, singles, atol=2e-5)
    np.testing.assert_allclose(np.linalg.norm(batched, axis=1), 1.0, atol=1e-5)
    raw = load_encoder(str(llama), normalize=False, max_passage_length=32).encode_passages(texts)
    assert not np.allclose(np.linalg.norm(raw, axis=1), 1.0, atol=1e-3)
    np.testing.assert_allclose(raw / np.linalg.norm(raw, axis=1, keepdims=True), batched, atol=2e-5)


def test_query_and_passage_sides_use_their_own_templates(llama: Path) -> None:
    encoder = load_encoder(str(llama), query_template="query: {text}", passage_template="passage: {text}")
    q, p = encoder.encode_queries(["the cat"]), encoder.encode_passages(["the cat"])
    assert not np.allclose(q, p)
    plain = load_encoder(str(llama))
    np.testing.assert_allclose(plain.encode_queries(["the cat"]), plain.encode_passages(["the cat"]), atol=1e-6)


def test_pooling_modes_differ(llama: Path) -> None:
    vectors = {mode: load_encoder(str(llama), pooling=mode).encode_passages(["the cat sat on the mat"])[0]
               for mode in ("mean", "last", "first", "weighted_mean")}
    for a in vectors:
        for b in vectors:
            if a < b:
                assert not np.allclose(vectors[a], vectors[b], atol=1e-4), (a, b)


def test_last_k_pooling_is_the_mean_of_the_last_k_states(llama: Path) -> None:
    from retr.retrieval.attention import forward_hidden

    encoder = load_encoder(str(llama), pooling="last3", normalize=False, attention="causal")
    ids = encoder.tokenize(["the cat sat on the mat", "proteins fold"], "passage")
    assert ids[0][-1] != encoder.tokenizer.eos_token_id, "no EOS is appended for last<k>"
    for side in ("right", "left"):
        input_ids, mask = encoder.collate(ids, padding_side=side)
        with torch.no_grad():
            got = encoder.embed(input_ids, mask)
            for row, seq in enumerate(ids):
                x = torch.tensor([seq])
                hidden = forward_hidden(encoder.model, x, torch.ones_like(x), "causal")[0]
                torch.testing.assert_close(got[row], hidden[-3:].mean(0), atol=2e-5, rtol=1e-4)
    with pytest.raises(ValueError, match="last<k>"):
        EncoderOptions(pooling="lastk")


def test_int8_quantises_linear_layers_and_stays_close(llama: Path) -> None:
    fp32 = load_encoder(str(llama))
    int8 = load_encoder(str(llama), quantize="int8")
    from torch.ao.nn.quantized.dynamic import Linear as DynamicLinear

    assert isinstance(int8.model.model.layers[0].self_attn.q_proj, DynamicLinear)
    assert isinstance(int8.model.lm_head, torch.nn.Linear), "the unused LM head is not quantised"
    texts = ["the cat sat on the mat", "proteins fold into shapes"]
    a, b = fp32.encode_passages(texts), int8.encode_passages(texts)
    assert not np.array_equal(a, b)
    assert (a * b).sum(1).min() > 0.95, "int8 embeddings stay close to fp32 ones"
    assert int8.identity()["sha256"] != fp32.identity()["sha256"]


@pytest.mark.parametrize("flags, expected", [({"avx2", "fma"}, "float32"), ({"avx512f", "avx512_bf16"}, "bf16-autocast"),
                                             ({"amx_bf16"}, "bf16-autocast")])
def test_dtype_auto_uses_bf16_autocast_only_on_a_cpu_with_native_bf16(llama: Path, monkeypatch, flags, expected) -> None:
    from retr.retrieval import hardware

    monkeypatch.delenv("RETR_NATIVE_BF16")  # the suite pins it to 0; here the flags decide
    monkeypatch.setattr(hardware, "cpu_flags", lambda *a: set(flags))
    encoder = load_encoder(str(llama), device="cpu")
    assert encoder.compute == expected
    assert next(encoder.model.parameters()).dtype == torch.float32, "autocast keeps fp32 weights"
    assert load_encoder(str(llama), device="cpu", quantize="int8").compute == "int8", "an explicit int8 wins"


def test_bf16_autocast_computes_in_bf16_and_stays_close_to_fp32(llama: Path) -> None:
    fp32 = load_encoder(str(llama), device="cpu", dtype="float32")
    bf16 = load_encoder(str(llama), device="cpu", dtype="bf16-autocast")
    seen = []
    bf16.model.model.layers[0].mlp.down_proj.register_forward_hook(lambda m, i, o: seen.append(o.dtype))
    texts = ["the cat sat on the mat", "proteins fold into shapes"]
    a, b = fp32.encode_passages(texts), bf16.encode_passages(texts)
    assert seen and seen[0] == torch.bfloat16, "the matmuls run in bf16"
    assert b.dtype == np.float32 and not np.array_equal(a, b)
    assert (a * b).sum(1).min() > 0.99
    assert fp32.compute == "float32" and bf16.identity()["sha256"] != fp32.identity()["sha256"]


def test_wrap_gives_training_the_same_inputs_and_gradients(llama: Path) -> None:
    from peft import LoraConfig, get_peft_model

    from retr.retrieval.encoder import Encoder

    loaded = load_encoder(str(llama), pooling="last", passage_template="llara")
    peft_model = get_peft_model(loaded.model, LoraConfig(r=2, target_modules=["q_proj"]))
    wrapped = Encoder.wrap(peft_model, loaded.tokenizer, loaded.options)
    assert wrapped.is_decoder and wrapped.tokenize([LONG], "passage") == loaded.tokenize([LONG], "passage")
    vectors = wrapped.embed(*wrapped.collate(wrapped.tokenize(["the cat", "a dog sat"], "passage")))
    vectors.sum().backward()
    grads = [p.grad for n, p in peft_model.named_parameters() if "lora_" in n]
    assert grads and all(g is not None for g in grads)
