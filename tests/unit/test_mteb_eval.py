"""MTEB on a local dataset through mteb.evaluate agrees with the ranx path on the same encoder and data."""

from __future__ import annotations

import json
import random
from pathlib import Path

import pytest

from retr.data.artifacts import open_artifact
from retr.data.datasets import Dataset
from retr.evaluation import mteb_eval
from retr.evaluation.metrics import evaluate
from retr.evaluation.report import ScoreConfig, score

WORDS = [f"w{i}" for i in range(300)]


def synthetic_beir(root: Path, seed: int = 0) -> Path:
    """80 docs of random words; 25 queries drawn from a doc's words, judged (graded) on it and a near neighbour."""
    rng = random.Random(seed)
    root.mkdir(parents=True)
    docs = {f"d{i}": " ".join(rng.choices(WORDS, k=30)) for i in range(80)}
    with open(root / "corpus.jsonl", "w") as out:
        for i, (doc, text) in enumerate(docs.items()):
            out.write(json.dumps({"_id": doc, "title": f"title {i % 7}" if i % 2 else "", "text": text}) + "\n")
    lines, queries = ["query-id\tcorpus-id\tscore"], []
    for q in range(25):
        target = f"d{rng.randrange(80)}"
        queries.append({"_id": f"q{q}", "text": " ".join(rng.sample(docs[target].split(), 4))})
        lines += [f"q{q}\t{target}\t2", f"q{q}\td{rng.randrange(80)}\t1", f"q{q}\td{rng.randrange(80)}\t0"]
    queries.append({"_id": "unjudged", "text": "w1 w2"})
    (root / "queries.jsonl").write_text("".join(json.dumps(q) + "\n" for q in queries))
    (root / "qrels").mkdir()
    (root / "qrels" / "test.tsv").write_text("\n".join(lines) + "\n")
    return root


def test_mteb_agrees_with_ranx(tmp_path: Path, hash_encoder, exact_search) -> None:
    dataset = Dataset(str(synthetic_beir(tmp_path / "toy")))
    result = mteb_eval.evaluate_mteb(hash_encoder, str(dataset.root), "test")
    ours = evaluate(dataset.qrels("test"), exact_search(hash_encoder, dataset, "test"),
                    ["ndcg@10", "mrr@10", "recall@100", "map"])  # fmt: skip
    mteb = result["scores"]
    assert 0.2 < ours["ndcg@10"] < 0.99  # a real ranking problem, not a trivial one
    assert mteb["ndcg_at_10"] == pytest.approx(ours["ndcg@10"], abs=0.005)
    assert mteb["mrr_at_10"] == pytest.approx(ours["mrr@10"], abs=0.005)
    assert mteb["recall_at_100"] == pytest.approx(ours["recall@100"], abs=0.005)
    assert mteb["map_at_1000"] == pytest.approx(ours["map"], abs=0.005)
    assert result["identity"] == hash_encoder.identity() and result["split"] == "test"
    assert result["dataset"]["kind"] == "dataset" and result["mteb_version"].startswith("2.")


def test_mteb_sees_the_encoder_texts(tmp_path: Path, hash_encoder) -> None:
    """Queries go to encode_queries, documents (title + text, as Doc.contents) to encode_passages."""
    dataset = Dataset(str(synthetic_beir(tmp_path / "toy")))
    seen: dict[str, list[str]] = {"queries": [], "passages": []}

    class Spy(type(hash_encoder)):
        def encode_queries(self, texts, progress=False):
            seen["queries"] += texts
            return super().encode_queries(texts)

        def encode_passages(self, texts, progress=False):
            seen["passages"] += texts
            return super().encode_passages(texts)

    mteb_eval.evaluate_mteb(Spy(), str(dataset.root), "test")
    assert sorted(seen["queries"]) == sorted(dataset.queries("test").values())
    assert "unjudged" not in seen["queries"]
    assert sorted(seen["passages"]) == sorted(d.contents for d in dataset.corpus())


def test_score_with_mteb_joins_the_report(tmp_path: Path, hash_encoder, monkeypatch) -> None:
    data = synthetic_beir(tmp_path / "toy")
    asked = {}

    def fake_load(spec, **options):
        asked["spec"] = spec
        return hash_encoder

    monkeypatch.setattr(mteb_eval, "_load_encoder", fake_load)
    out = score(ScoreConfig(mteb=True, encoder="some-model", dataset=str(data), out=tmp_path / "report"))
    assert asked["spec"] == "some-model"
    report = json.loads((out / "report.json").read_text())
    assert 0.2 < report["mteb"]["scores"]["ndcg_at_10"] < 0.99
    assert "## MTEB" in (out / "report.md").read_text()
    manifest = open_artifact(out, kind="report").manifest
    assert hash_encoder.identity() in manifest["inputs"]
    assert manifest["metrics"]["mteb"]["ndcg_at_10"] == report["mteb"]["scores"]["ndcg_at_10"]
