"""train(): the "model" artifact, a loader that rebuilds the trained encoder from it, exact resume after a kill,
the CLI, and bad input."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors.torch import load_file

from retr.data.artifacts import open_artifact
from retr.data.errors import DataError
from retr.training import train as train_module
from retr.training.config import TrainConfig
from retr.training.train import train

ROOT = Path(__file__).resolve().parents[3]


def _cfg(model_dir, data, out, **overrides) -> TrainConfig:
    values = dict(
        objective="grl", data=str(data), model=str(model_dir), out=out, negatives=2, batch_size=4, chunk_size=4,
        max_query_length=12, max_passage_length=20, lora_r=4, lora_alpha=8, max_steps=5, checkpoint_every=2,
        threads=1, lr=5e-3,
    )
    values.update(overrides)
    return TrainConfig(**values)


def _adapter(path: Path) -> dict[str, torch.Tensor]:
    return load_file(str(path / "adapter" / "adapter_model.safetensors"))


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


@pytest.mark.parametrize("objective", ["grl", "llara"])
def test_model_artifact_rebuilds_the_trained_encoder(objective, tiny_llama, training_set, passages, tmp_path, spy_model):
    data = passages if objective == "llara" else training_set
    out = train(_cfg(tiny_llama, data, tmp_path / "model", objective=objective, llara_tokens=2))
    artifact = open_artifact(out, kind="model", verify=True)
    names = {o["path"] for o in artifact.manifest["outputs"]}
    assert {"encoder.json", "train_log.jsonl", "loss.png", "train_config.yaml", "adapter/adapter_model.safetensors",
            "adapter/adapter_config.json"} <= names
    assert not any(n.startswith("checkpoint") for n in names)
    data_kind = "dataset" if objective == "llara" else "training-set"
    assert [r["kind"] for r in artifact.manifest["inputs"]] == ["backbone", data_kind]
    log = [json.loads(line) for line in (out / "train_log.jsonl").read_text().splitlines()]
    assert [r["step"] for r in log] == [1, 2, 3, 4, 5]
    assert artifact.manifest["metrics"]["final_loss"] == log[-1]["loss"]
    encoder = json.loads((out / "encoder.json").read_text())
    assert encoder["base"] == str(Path(tiny_llama).resolve()) and encoder["adapter"] == "adapter"
    if objective == "llara":
        assert encoder["options"]["passage_template"].endswith("<s1><s2>")
        assert "<s3>" in open_artifact(out).file("tokenizer/tokenizer.json").read_text()

    # retr's loader (what `retr index --encoder <artifact>` uses): base + tokenizer/ + adapter merged
    from retr.retrieval.encoder import load_encoder
    from retr.training.modeling import training_encoder

    loaded = load_encoder(str(out), device="cpu")
    assert loaded.options.as_dict() == encoder["options"]
    trained = training_encoder(spy_model["model"].eval(), spy_model["tokenizer"], encoder["options"])
    texts = ["star planet orbit rocket", "bread cheese apple soup butter"]
    for side in ("query", "passage"):
        expected = trained.encode(texts, side)
        np.testing.assert_allclose(loaded.encode(texts, side), expected, atol=1e-5, rtol=1e-4)
    # and the adapter is not a no-op: the base model embeds differently
    plain = load_encoder(str(tiny_llama), device="cpu", **encoder["options"])
    assert not np.allclose(plain.encode(texts, "query"), trained.encode(texts, "query"), atol=1e-4)
    if objective == "llara":  # indexing pools exactly what LLaRA training pooled: the EBAE placeholder states
        from retr.training.llara import encode_pairs, joint_hidden

        model, tokenizer = spy_model["model"], spy_model["tokenizer"]
        batch = encode_pairs(tokenizer, [(t, t) for t in texts], 20, 2)  # max_passage_length and k of _cfg
        with torch.no_grad():
            hidden = joint_hidden(model, batch)
        rows = torch.arange(len(texts))[:, None]
        pooled = torch.nn.functional.normalize(hidden[rows, batch.ebae_index].mean(1), dim=-1)
        np.testing.assert_allclose(loaded.encode(texts, "passage"), pooled.numpy(), atol=1e-5, rtol=1e-4)


KILLER = """
import json, os, signal, sys
from retr.training import checkpoint
from retr.training.train import TrainConfig, train
original, calls = checkpoint.save, []
def save(*args, **kwargs):
    calls.append(1)
    if len(calls) == 2:  # killed between checkpoints: steps after the first checkpoint are lost
        os.kill(os.getpid(), signal.SIGKILL)
    original(*args, **kwargs)
checkpoint.save = save
train(TrainConfig(**json.loads(sys.argv[1])))
"""


def test_resume_after_kill_equals_uninterrupted(tiny_llama, training_set, tmp_path):
    common = dict(objective="grl", grad_cache=True, lora_dropout=0.2, max_steps=6, checkpoint_every=2)
    straight = train(_cfg(tiny_llama, training_set, tmp_path / "straight", **common))
    out = tmp_path / "killed"
    cfg = _cfg(tiny_llama, training_set, out, **common)
    payload = {k: (str(v) if isinstance(v, Path) else v) for k, v in cfg.__dict__.items()}
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    run = subprocess.run([sys.executable, "-c", KILLER, json.dumps(payload)], env=env, capture_output=True, text=True)
    assert run.returncode == -9, run.stderr[-2000:]
    partial = list(tmp_path.glob("killed.tmp-*"))
    assert len(partial) == 1 and (partial[0] / "checkpoint" / "state.json").is_file()
    assert not out.exists()
    assert json.loads((partial[0] / "checkpoint" / "state.json").read_text())["step"] == 2
    # the killed run logged past its checkpoint; those lines must not survive the resume
    assert len((partial[0] / "train_log.jsonl").read_text().splitlines()) == 4

    resumed = train(cfg)
    assert open_artifact(resumed).manifest["metrics"]["resumed_from_step"] == 2  # restored, not started afresh
    a, b = _adapter(straight), _adapter(resumed)
    assert a.keys() == b.keys()
    assert all(torch.equal(a[k], b[k]) for k in a)
    log = [json.loads(line) for line in (resumed / "train_log.jsonl").read_text().splitlines()]
    assert [r["step"] for r in log] == list(range(1, 7))
    straight_log = [json.loads(line) for line in (straight / "train_log.jsonl").read_text().splitlines()]
    assert [r["loss"] for r in log] == [r["loss"] for r in straight_log]
    assert not list(tmp_path.glob("killed.tmp-*"))


def test_same_seed_same_adapter_other_seed_differs(tiny_llama, training_set, tmp_path):
    a = _adapter(train(_cfg(tiny_llama, training_set, tmp_path / "a", objective="cl", max_steps=2)))
    b = _adapter(train(_cfg(tiny_llama, training_set, tmp_path / "b", objective="cl", max_steps=2)))
    c = _adapter(train(_cfg(tiny_llama, training_set, tmp_path / "c", objective="cl", max_steps=2, seed=1)))
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert any(not torch.equal(a[k], c[k]) for k in a)


def test_cli_trains_and_refuses_bad_input(tiny_llama, training_set, tmp_path):
    from typer.testing import CliRunner

    from retr.cli import app

    runner = CliRunner()
    out = tmp_path / "cli-model"
    args = ["train", "--objective", "cl+sft", "--data", str(training_set), "--model", str(tiny_llama),
            "--out", str(out), "--max-steps", "2", "--batch-size", "4", "--negatives", "1", "--lora-r", "2",
            "--max-passage-length", "16", "--threads", "1", "--no-grad-cache", "--chunk-size", "2"]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    manifest = open_artifact(out, kind="model").manifest
    assert manifest["config"]["objective"] == "cl+sft" and manifest["config"]["grad_cache"] is False
    assert manifest["config"]["lora_alpha"] == 32  # a default filled in

    again = runner.invoke(app, args)
    assert again.exit_code == 2 and "already exists" in again.output
    wrong = runner.invoke(app, ["train", "--objective", "nope", "--out", str(tmp_path / "x")])
    assert wrong.exit_code != 0 and "unknown objective" in wrong.output
    no_data = runner.invoke(app, ["train", "--objective", "cl", "--model", str(tiny_llama), "--out", str(tmp_path / "y")])
    assert no_data.exit_code != 0 and "training-set" in no_data.output
    not_a_set = runner.invoke(app, ["train", "--data", str(out), "--model", str(tiny_llama), "--out", str(tmp_path / "z")])
    assert not_a_set.exit_code == 2 and "expected training-set" in not_a_set.output


def test_bad_training_lines_name_file_and_line(tmp_path):
    from retr.training.data import read_passage_pairs, read_training_set

    path = tmp_path / "train.jsonl"
    good = {"query": "q", "positives": [{"text": "p"}], "negatives": [{"text": "n", "rank": 1}]}
    path.write_text(json.dumps(good) + "\n{oops\n")
    with pytest.raises(DataError, match=r"train.jsonl:2: malformed JSON"):
        read_training_set(path)
    path.write_text(json.dumps({**good, "negatives": []}) + "\n")
    with pytest.raises(DataError, match=r"train.jsonl:1: .*no negative"):
        read_training_set(path)
    corpus = tmp_path / "c.jsonl"
    corpus.write_text(json.dumps({"_id": "abc", "text": "x"}) + "\n")
    with pytest.raises(DataError, match="not '<pageid>-<k>'"):
        read_passage_pairs(str(corpus))


def test_passage_pairs_follow_page_order(passages):
    from retr.training.data import read_passage_pairs

    pairs = read_passage_pairs(str(passages))
    assert len(pairs) == 6 * 3  # 4 passages per page -> 3 (k, k+1) pairs
    docs = [json.loads(line) for line in passages.read_text().splitlines()]
    contents = {d["_id"]: f"{d['title']} {d['text']}" for d in docs}
    assert pairs[0].passage == contents["100-0"] and pairs[0].next == contents["100-1"]


def test_gradient_accumulation_equals_the_larger_batch(tiny_llama, training_set, tmp_path):
    """SFT is a mean over queries, so 2 micro-batches of 2 give the gradient of one batch of 4 (same examples:
    the epoch order does not depend on the batch size)."""
    common = dict(objective="sft", lora_dropout=0.0, max_steps=2, warmup_ratio=0.0)
    big = _adapter(train(_cfg(tiny_llama, training_set, tmp_path / "big", batch_size=4, **common)))
    accumulated = _adapter(train(_cfg(tiny_llama, training_set, tmp_path / "acc", batch_size=2, grad_accum=2, **common)))
    for name, value in big.items():
        torch.testing.assert_close(accumulated[name], value, atol=1e-6, rtol=1e-5, msg=name)
    single = _adapter(train(_cfg(tiny_llama, training_set, tmp_path / "one", batch_size=2, **common)))
    assert any(not torch.allclose(single[n], v, atol=1e-6) for n, v in big.items())
