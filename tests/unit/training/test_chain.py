"""The LLaRA -> CL chain keeps its embedding format (issue 12): the CL model trained from a LLaRA artifact inherits
``last<k>`` pooling, causal attention and the EBAE / EBAR prompts; an explicit option (attention bidirectional)
overrides one field and is recorded as overridden; and ``retr index`` of the result pools exactly the hidden states
that training pooled (the placeholder states of the EBAE prompt)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from retr.data.artifacts import open_artifact
from retr.training import train as train_module
from retr.training.config import TrainConfig
from retr.training.train import train

K = 2  # LLaRA placeholders of the tiny chain (the paper uses 8)
TEXT_BUDGET = {"query": 12, "passage": 20}


def _cfg(model, data, out, **overrides) -> TrainConfig:
    values = dict(data=str(data), model=str(model), out=out, batch_size=4, chunk_size=4, negatives=1,
                  lora_r=4, lora_alpha=8, max_steps=2, checkpoint_every=0, threads=1, lr=5e-3, seed=0)
    values.update(overrides)
    return TrainConfig(**values)


@pytest.fixture(scope="module")
def llara_model(tiny_llama, passages, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("chain") / "llara"
    return train(_cfg(tiny_llama, passages, out, objective="llara", llara_tokens=K,
                      max_passage_length=TEXT_BUDGET["passage"]))


@pytest.fixture
def spy_model(monkeypatch):
    """The in-memory model at the end of training, as handed to _write_model."""
    seen = {}
    original = train_module._write_model

    def spy(directory, model, tokenizer, cfg, fmt, state=None):
        seen["model"], seen["tokenizer"] = model, tokenizer
        original(directory, model, tokenizer, cfg, fmt, state)

    monkeypatch.setattr(train_module, "_write_model", spy)
    return seen


def _corpus(path: Path) -> tuple[Path, list[str]]:
    docs = [{"_id": f"d{i}", "title": f"title {i}", "text": text} for i, text in enumerate([
        "star planet orbit rocket moon galaxy comet telescope",
        "bread cheese apple soup butter pasta salad cook oven spice and more bread",
        "guitar piano melody",
        "ocean wave fish boat coral whale tide harbor sailor island " * 4,  # longer than the passage budget
    ])]
    path.write_text("".join(json.dumps(d) + "\n" for d in docs))
    return path, [f"{d['title']} {d['text']}" for d in docs]


@pytest.mark.parametrize("attention", [None, "bidirectional"])
def test_llara_then_cl_keeps_the_format_and_indexing_pools_what_training_pooled(
        attention, llara_model, training_set, tmp_path, spy_model):
    from retr.indexing.dense import IndexConfig, build_index, load_embeddings
    from retr.retrieval import prompts
    from retr.retrieval.encoder import load_encoder
    from retr.training.modeling import training_encoder

    llara_options = json.loads((llara_model / "encoder.json").read_text())["options"]
    preset = prompts.llara(K)
    assert llara_options["pooling"] == f"last{K}" and llara_options["attention"] == "causal"
    assert (llara_options["query_template"], llara_options["passage_template"]) == (preset.query, preset.passage)

    out = train(_cfg(llara_model, training_set, tmp_path / "cl", objective="cl", attention=attention))
    encoder_json = json.loads((out / "encoder.json").read_text())
    options, record = encoder_json["options"], encoder_json["format"]
    manifest = open_artifact(out, kind="model", verify=True).manifest
    assert manifest["encoder_format"] == record  # the manifest and encoder.json say the same
    assert encoder_json["base"] == str(llara_model.resolve())

    # inherited from LLaRA: the placeholder pooling, both prompts and the length budgets (prompt tokens included)
    for name in ("pooling", "query_template", "passage_template", "max_query_length", "max_passage_length"):
        assert options[name] == llara_options[name], name
        assert record["inherited"][name] == llara_options[name], name
        assert name not in record["overridden"], name
    if attention is None:  # causal, as LLaRA trained
        assert options["attention"] == record["inherited"]["attention"] == "causal"
        assert record["overridden"] == {}
    else:  # the ULLME side of the question: an explicit option wins and says so
        assert options["attention"] == record["overridden"]["attention"] == "bidirectional"
        assert "attention" not in record["inherited"]

    # `retr index` of the CL model: vectors equal the training encoder's embeddings of the same passages
    corpus, texts = _corpus(tmp_path / "corpus.jsonl")
    index = build_index(IndexConfig(corpus=str(corpus), encoder=str(out), out=tmp_path / "index", chunk_size=2))
    artifact = open_artifact(index, kind="dense-index", verify=True)
    assert artifact.manifest["inputs"][1]["options"] == options
    ids, vectors = load_embeddings(artifact)
    assert ids == ["d0", "d1", "d2", "d3"]
    model, tokenizer = spy_model["model"].eval(), spy_model["tokenizer"]
    trained = training_encoder(model, tokenizer, options)
    with torch.no_grad():
        expected = trained.encode(texts, "passage")
    np.testing.assert_allclose(vectors, expected, atol=1e-5, rtol=1e-4)
    loaded = load_encoder(str(out), device="cpu")
    np.testing.assert_allclose(loaded.encode(texts, "query"), trained.encode(texts, "query"), atol=1e-5, rtol=1e-4)

    # ... and those are the states of the K placeholders at the end of the EBAE prompt, under the chosen attention
    from retr.retrieval.attention import forward_hidden

    placeholders = tokenizer.convert_tokens_to_ids([f"<s{i}>" for i in range(1, K + 1)])
    sequences = trained.tokenize(texts, "passage")
    assert all(seq[-K:] == placeholders for seq in sequences)  # the long text was cut inside, the prompt kept
    assert max(map(len, sequences)) == options["max_passage_length"]
    pooled = []
    with torch.no_grad():
        for seq in sequences:
            ids_ = torch.tensor([seq])
            hidden = forward_hidden(model, ids_, torch.ones_like(ids_), options["attention"])
            pooled.append(torch.nn.functional.normalize(hidden[0, -K:].mean(0), dim=-1))
    np.testing.assert_allclose(vectors, torch.stack(pooled).numpy(), atol=1e-5, rtol=1e-4)

    # the attention option is real: the other attention embeds differently
    other = "causal" if options["attention"] == "bidirectional" else "bidirectional"
    flipped = training_encoder(model, tokenizer, {**options, "attention": other})
    with torch.no_grad():
        assert not np.allclose(flipped.encode(texts, "passage"), expected, atol=1e-4)


def test_llara_continues_from_a_llara_artifact(llara_model, passages, tmp_path):
    """The study's LLaRA curve trains in segments (configs/study-cpu.yaml): LLaRA from a LLaRA artifact reuses its
    placeholders (no second set), keeps the format and trains a new adapter on top of the merged one."""
    from retr.retrieval.encoder import load_encoder

    out = train(_cfg(llara_model, passages, tmp_path / "llara-2", objective="llara", llara_tokens=K,
                     max_passage_length=TEXT_BUDGET["passage"], seed=1))
    first = json.loads((llara_model / "encoder.json").read_text())
    second = json.loads((out / "encoder.json").read_text())
    assert second["options"] == first["options"] and second["base"] == str(llara_model.resolve())
    vocab = [len(json.loads((m / "tokenizer" / "tokenizer.json").read_text())["added_tokens"]) for m in (llara_model, out)]
    assert vocab[0] == vocab[1]
    texts = ["star planet orbit rocket", "bread cheese apple soup butter"]
    before, after = load_encoder(str(llara_model), device="cpu"), load_encoder(str(out), device="cpu")
    assert not np.allclose(before.encode(texts, "passage"), after.encode(texts, "passage"), atol=1e-4)
