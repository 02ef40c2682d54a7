"""Training on real data with a tiny random model: a SciFact training set mined by `retr mine` (BM25) feeds GRL,
and LLaRA reads the Wikipedia passages (ids '<pageid>-<k>'). Checks the formats meet, not model quality."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import pytest

from retr.data.artifacts import open_artifact
from retr.training.config import TrainConfig
from retr.training.data import read_passage_pairs, read_training_set
from retr.training.train import train
from tests.unit.tiny_models import make_tiny_model

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def tiny(tmp_path_factory) -> Path:
    return make_tiny_model(tmp_path_factory.mktemp("tiny"), "llama", tied=True, max_positions=512)


def test_grl_on_a_mined_scifact_training_set(data_dir: Path, tiny: Path, tmp_path: Path) -> None:
    from retr.training.mining import MineConfig, mine

    mined = mine(MineConfig(dataset="scifact", split="train", out=tmp_path / "mined", negatives=4,
                            bm25_cache=tmp_path / "cache"))
    examples = read_training_set(mined / "train.jsonl")
    assert len(examples) > 500 and all(len(e.negatives) == 4 for e in examples)
    out = train(TrainConfig(objective="grl", data=str(mined), model=str(tiny), out=tmp_path / "grl", negatives=3,
                            batch_size=4, max_steps=2, max_query_length=16, max_passage_length=32, lora_r=4,
                            threads=1))
    manifest = open_artifact(out, kind="model", verify=True).manifest
    assert manifest["inputs"][1]["sha256"] == open_artifact(mined).sha256
    assert manifest["metrics"]["examples"] == len(examples)
    assert {"cl", "dpo", "kl"} <= set(manifest["metrics"]["final_parts"])


def test_llara_on_wikipedia_passages(data_dir: Path, tiny: Path, tmp_path: Path) -> None:
    pairs = read_passage_pairs("wikipedia/passages.jsonl.gz", limit=50)
    with gzip.open(data_dir / "wikipedia/passages.jsonl.gz", "rt") as handle:
        docs = [json.loads(line) for line in handle]
    text = {d["_id"]: f"{d['title']} {d['text']}".strip() for d in docs}
    expected = []
    for d in docs:
        page, k = d["_id"].rsplit("-", 1)
        if f"{page}-{int(k) + 1}" in text and len(expected) < 50:
            expected.append((text[d["_id"]], text[f"{page}-{int(k) + 1}"]))
    assert [(p.passage, p.next) for p in pairs] == expected
    out = train(TrainConfig(objective="llara", model=str(tiny), out=tmp_path / "llara", batch_size=4, max_steps=2,
                            max_examples=50, max_passage_length=48, llara_tokens=4, lora_r=4, threads=1))
    manifest = open_artifact(out, kind="model", verify=True).manifest
    assert manifest["inputs"][1]["kind"] == "dataset" and manifest["inputs"][1]["path"].endswith("passages.jsonl.gz")
    assert {"ebae", "ebar"} <= set(manifest["metrics"]["final_parts"])
