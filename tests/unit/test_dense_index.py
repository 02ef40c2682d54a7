"""`retr index` and dense search on a tiny model and a synthetic corpus: manifest, resume after a crash or a
SIGKILL, sharding + merge, FAISS factories, encoder lineage, the CLI and the bm25 dispatch."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import textwrap
import types
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from retr.data.artifacts import ArtifactError, open_artifact
from retr.data.trec import write_run
from retr.data.errors import UsageError
from retr.indexing import dense, encode as encoding
from retr.indexing.dense import IndexConfig, MergeConfig, build_index, load_embeddings, merge_shards
from retr.retrieval.dense_search import search_dense
from retr.retrieval.encoder import load_encoder
from tests.unit.tiny_models import SENTENCES, make_tiny_model

ROOT = Path(__file__).resolve().parents[2]
QUERIES = {"q1": "the cat and the dog", "q2": "proteins in the cell", "q3": "embedding model vectors"}


@pytest.fixture(scope="module")
def setup(tmp_path_factory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("dense")
    corpus = root / "corpus.jsonl"
    with open(corpus, "w") as out:
        for i in range(45):
            words = SENTENCES[i % 6].split()
            text = f"number {i} " + " ".join(words[: 3 + (i * 7) % len(words)])
            out.write(json.dumps({"_id": f"doc{i}", "title": f"title {i % 4}", "text": text}) + "\n")
    return {"root": root, "corpus": corpus, "model": make_tiny_model(root / "llama", "llama"),
            "other": make_tiny_model(root / "qwen2", "qwen2", seed=3)}


def config(setup, out: Path, **overrides) -> IndexConfig:
    values = dict(corpus=str(setup["corpus"]), encoder=str(setup["model"]), out=out, chunk_size=8,
                  max_passage_length=32, max_query_length=32)
    return IndexConfig(**{**values, **overrides})


def run_file(index: Path, path: Path) -> str:
    write_run(path, search_dense(open_artifact(index), QUERIES, k=10))
    return path.read_text()


@pytest.fixture(scope="module")
def reference(setup) -> Path:
    """An uninterrupted single-process index."""
    return build_index(config(setup, setup["root"] / "reference"))


def test_index_manifest_ids_and_vectors(setup, reference: Path) -> None:
    artifact = open_artifact(reference, kind="dense-index", verify=True)
    metrics = artifact.manifest["metrics"]
    assert metrics["docs"] == 45 and metrics["chunks"] == 6 and metrics["vectors"] == 45 and metrics["dim"] == 32
    assert metrics["encoded_docs"] == 45 and metrics["resumed_docs"] == 0 and metrics["tokens"] > 45
    assert metrics["compute"] == "float32", "what the encoder computed in (the suite pins RETR_NATIVE_BF16=0)"
    assert artifact.manifest["timing"]["items_per_s"] > 0
    kinds = [record["kind"] for record in artifact.manifest["inputs"]]
    assert kinds == ["dataset", "encoder"]
    encoder_record = artifact.manifest["inputs"][1]
    assert encoder_record["options"]["max_passage_length"] == 32 and encoder_record["backbone"]["sha256"]
    ids, vectors = load_embeddings(artifact)
    assert ids == [f"doc{i}" for i in range(45)] == (reference / "ids.txt").read_text().split()
    docs = [json.loads(line) for line in setup["corpus"].read_text().splitlines()]
    encoder = load_encoder(str(setup["model"]), max_passage_length=32)
    expected = encoder.encode_passages([f"{d['title']} {d['text']}" for d in docs])
    np.testing.assert_allclose(vectors, expected, atol=2e-5)


def test_search_finds_each_document_by_its_own_text(setup, reference: Path) -> None:
    docs = [json.loads(line) for line in setup["corpus"].read_text().splitlines()][:10]
    run = search_dense(reference, {d["_id"]: f"{d['title']} {d['text']}" for d in docs}, k=3)
    assert all(max(run[qid], key=run[qid].get) == qid for qid in run), "a passage is its own nearest neighbour"
    assert all(len(hits) == 3 for hits in run.values())


def test_crash_midway_then_rerun_gives_the_same_index(setup, reference: Path, monkeypatch) -> None:
    out = setup["root"] / "crashed"

    write = encoding.ChunkStore.write

    def write_then_crash(store, chunk: int, ids, vectors) -> None:
        write(store, chunk, ids, vectors)  # the chunk is committed, then the run dies
        if chunk == 2:
            raise RuntimeError("crash after chunk 2")

    monkeypatch.setattr(encoding.ChunkStore, "write", write_then_crash)
    with pytest.raises(RuntimeError, match="crash after chunk 2"):
        build_index(config(setup, out))
    assert not out.exists()
    [tmp] = list(out.parent.glob("crashed.tmp-*"))
    assert encoding.ChunkStore(tmp / "embeddings").finished() == [0, 1, 2]
    tmp.rename(out.parent / "crashed.tmp-999999999")  # the crashed run's pid, now dead
    monkeypatch.setattr(encoding.ChunkStore, "write", write)
    build_index(config(setup, out))
    resumed = open_artifact(out, verify=True).manifest["metrics"]
    assert resumed["resumed_docs"] == 24 and resumed["encoded_docs"] == 21
    assert_same_index(reference, out)


def test_sigkill_midway_then_rerun_gives_the_same_index(setup, reference: Path) -> None:
    out = setup["root"] / "killed"
    script = textwrap.dedent(f"""
        import os, signal
        from retr.indexing import encode
        from retr.indexing.dense import IndexConfig, build_index
        write = encode.ChunkStore.write
        def write_then_die(store, chunk, ids, vectors):  # the chunk is committed, then the process is killed
            write(store, chunk, ids, vectors)
            if chunk == 3:
                os.kill(os.getpid(), signal.SIGKILL)
        encode.ChunkStore.write = write_then_die
        build_index(IndexConfig(corpus={str(setup['corpus'])!r}, encoder={str(setup['model'])!r},
                                out={str(out)!r}, chunk_size=8, max_passage_length=32, max_query_length=32))
    """)
    proc = subprocess.run([sys.executable, "-c", script], cwd=ROOT, capture_output=True, text=True, timeout=300,
                          env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert proc.returncode == -9, proc.stderr[-2000:]
    assert not out.exists()
    [tmp] = list(out.parent.glob("killed.tmp-*"))
    assert encoding.ChunkStore(tmp / "embeddings").finished() == [0, 1, 2, 3]
    build_index(config(setup, out))
    metrics = open_artifact(out, verify=True).manifest["metrics"]
    assert metrics["resumed_docs"] == 32 and metrics["encoded_docs"] == 13
    assert not list(out.parent.glob("killed.tmp-*"))
    assert_same_index(reference, out)


def assert_same_index(a: Path, b: Path) -> None:
    ids_a, vectors_a = load_embeddings(a)
    ids_b, vectors_b = load_embeddings(b)
    assert ids_a == ids_b and len(ids_a) == len(set(ids_a))
    assert np.array_equal(vectors_a, vectors_b)
    assert (a / "ids.txt").read_text() == (b / "ids.txt").read_text()


def test_two_shards_merged_give_the_single_process_run_file(setup, reference: Path, tmp_path: Path) -> None:
    shards = [build_index(config(setup, tmp_path / f"shard{i}", shard=f"{i}/2")) for i in range(2)]
    for i, shard in enumerate(shards):
        artifact = open_artifact(shard, kind="dense-shard")
        owned = [c for c in range(6) if c % 2 == i]
        assert encoding.ChunkStore(shard / "embeddings").finished() == owned
        assert not (shard / "index.faiss").exists()
    with pytest.raises(ArtifactError, match="missing"):
        merge_shards(MergeConfig(shards=[str(shards[0])], out=tmp_path / "merged"))
    merged = merge_shards(MergeConfig(shards=[str(s) for s in reversed(shards)], out=tmp_path / "merged"))
    assert_same_index(reference, merged)
    assert run_file(merged, tmp_path / "merged.trec") == run_file(reference, tmp_path / "single.trec")
    inputs = [r["kind"] for r in open_artifact(merged).manifest["inputs"]]
    assert inputs == ["dataset", "encoder", "dense-shard", "dense-shard"]
    other = build_index(config(setup, tmp_path / "other1", shard="1/2", max_passage_length=16))
    with pytest.raises(ArtifactError, match="another config"):
        merge_shards(MergeConfig(shards=[str(shards[0]), str(other)], out=tmp_path / "bad"))
    with pytest.raises(ValueError, match="i/n"):
        encoding.Shard.parse("2")
    with pytest.raises(ValueError, match="0 <= i < n"):
        encoding.Shard.parse("2/2")


def test_torchrun_launch_encodes_on_every_process_and_merges(setup, reference: Path, tmp_path: Path) -> None:
    """`torchrun --nproc-per-node 2 -m retr index` = shards 0/2 and 1/2 from RANK/WORLD_SIZE, then rank 0's merge."""
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    out = tmp_path / "launched"
    command = [sys.executable, "-m", "torch.distributed.run", "--nproc-per-node=2", "--nnodes=1",
               f"--master-port={port}", "-m", "retr", "index", f"--corpus={setup['corpus']}",
               f"--encoder={setup['model']}", f"--out={out}", "--chunk-size=8", "--max-passage-length=32",
               "--max-query-length=32", "--threads=1"]
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}
    proc = subprocess.run(command, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert_same_index(reference, out)
    assert run_file(out, tmp_path / "launched.trec") == run_file(reference, tmp_path / "single.trec")
    manifest = open_artifact(out, kind="dense-index", verify=True).manifest
    assert manifest["config"]["merged_shards"] == 2
    assert [r["kind"] for r in manifest["inputs"]] == ["dataset", "encoder", "dense-shard", "dense-shard"]
    for rank in range(2):  # each process encoded its own chunks (0, 2, 4 and 1, 3, 5)
        assert manifest["metrics"]["shards"][str(rank)]["encode_seconds"] > 0
    assert not dense.shards_folder(out).exists()  # the launch's own shards are gone once merged


def test_torchrun_launch_refusals_and_shard_reuse(setup, tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("WORLD_SIZE", "2")
    monkeypatch.setenv("RANK", "1")
    with pytest.raises(UsageError, match="drop --shard"):
        build_index(config(setup, tmp_path / "x", shard="1/2"))
    with pytest.raises(UsageError, match="without torchrun"):
        build_index(config(setup, tmp_path / "x", encoder="bm25"))
    taken = tmp_path / "taken"
    taken.mkdir()
    (taken / "notes.txt").write_text("mine")
    with pytest.raises(ArtifactError, match="taken"):  # refused before any encoding
        build_index(config(setup, taken))
    monkeypatch.delenv("WORLD_SIZE")
    monkeypatch.delenv("RANK")
    # a shard finished by an earlier launch of the same run is reused; one of another config is not
    shard = config(setup, tmp_path / "s", shard="1/2")
    dense._build(shard, reuse=True)
    monkeypatch.setattr(encoding, "encode_corpus", lambda *a, **k: pytest.fail("re-encoded a finished shard"))
    assert dense._build(shard, reuse=True) == shard.out
    with pytest.raises(ArtifactError, match="already exists"):
        dense._build(config(setup, tmp_path / "s", shard="1/2", max_passage_length=16), reuse=True)


def test_search_refuses_another_encoder_but_accepts_a_copy(setup, reference: Path, tmp_path: Path) -> None:
    with pytest.raises(ArtifactError, match="built with encoder") as error:
        search_dense(reference, QUERIES, k=5, encoder=str(setup["other"]))
    assert "\n" not in str(error.value)
    copy = tmp_path / "copy"
    shutil.copytree(setup["model"], copy)
    assert search_dense(reference, QUERIES, k=5, encoder=str(copy)) == search_dense(reference, QUERIES, k=5)


def test_factories_subsets_and_search_params(setup, tmp_path: Path) -> None:
    ivf = build_index(config(setup, tmp_path / "ivf", factory="IVF4,Flat", search_params="nprobe=4", train_size=40))
    flat_run = search_dense(build_index(config(setup, tmp_path / "flat")), QUERIES, k=5)
    ivf_run = search_dense(ivf, QUERIES, k=5)
    for qid in QUERIES:  # nprobe = nlist: the IVF search is exhaustive
        assert ivf_run[qid] == pytest.approx(flat_run[qid], abs=1e-5)
    hnsw = build_index(config(setup, tmp_path / "hnsw", factory="HNSW8"))
    assert set(search_dense(hnsw, QUERIES, k=5)) == set(QUERIES)
    with pytest.raises(ValueError, match="index_factory"):
        build_index(config(setup, tmp_path / "bad", factory="Nonsense42"))
    keep = tmp_path / "keep.txt"
    keep.write_text("# subset\ndoc3\ndoc7\ndoc40\nnot-a-doc\n")
    subset = build_index(config(setup, tmp_path / "subset", doc_ids=keep))
    assert (subset / "ids.txt").read_text().split() == ["doc3", "doc7", "doc40"]
    assert open_artifact(subset).manifest["metrics"]["doc_ids_not_in_corpus"] == 1
    limited = build_index(config(setup, tmp_path / "limited", limit=5))
    assert (limited / "ids.txt").read_text().split() == [f"doc{i}" for i in range(5)]


def test_cli_index_and_bm25_dispatch(setup, tmp_path: Path, monkeypatch) -> None:
    from retr.cli import app

    runner = CliRunner()
    out = tmp_path / "cli"
    result = runner.invoke(app, ["index", "--corpus", str(setup["corpus"]), "--encoder", str(setup["model"]),
                                 "--out", str(out), "--limit", "10", "--pooling", "last", "--prompt", "e5"])
    assert result.exit_code == 0, result.output
    options = open_artifact(out).manifest["inputs"][1]["options"]
    assert options["pooling"] == "last" and options["query_template"].startswith("Instruct:")
    result = runner.invoke(app, ["index", "--corpus", str(setup["corpus"]), "--encoder", str(setup["model"]),
                                 "--out", str(out)])
    assert result.exit_code == 2 and "already exists" in result.output
    result = runner.invoke(app, ["index", "--corpus", str(setup["corpus"]), "--encoder", str(setup["model"]),
                                 "--out", str(tmp_path / "x"), "--pooling", "max"])
    assert result.exit_code == 2 and "unknown pooling" in result.output

    calls = []
    fake = types.ModuleType("retr.indexing.bm25")

    class BM25IndexConfig:
        def __init__(self, corpus, out, threads=2, overwrite=False):
            self.corpus, self.out, self.threads, self.overwrite = corpus, out, threads, overwrite

    def build_bm25_index(cfg):
        calls.append(cfg)
        return cfg.out

    fake.BM25IndexConfig, fake.build_bm25_index = BM25IndexConfig, build_bm25_index
    monkeypatch.setitem(sys.modules, "retr.indexing.bm25", fake)
    result = runner.invoke(app, ["index", "--corpus", "scifact", "--encoder", "bm25", "--out", str(tmp_path / "bm")])
    assert result.exit_code == 0, result.output
    assert [(c.corpus, Path(c.out)) for c in calls] == [("scifact", tmp_path / "bm")]


def test_query_side_options_change_at_search_time_and_are_recorded(setup, reference: Path, tmp_path: Path) -> None:
    from retr.retrieval.search import SearchConfig, search

    queries = {q: text * 4 for q, text in QUERIES.items()}  # long enough for a budget of 4 tokens to bite
    plain, short = search_dense(reference, queries, k=5), search_dense(reference, queries, k=5,
                                                                      query_side={"max_query_length": 4})
    assert plain != short
    assert search_dense(reference, queries, k=5, query_side={"max_query_length": None}) == plain
    assert search_dense(reference, queries, k=5, query_side={"query_template": "find: {text}"}) != plain
    with pytest.raises(ArtifactError, match="max_passage_length would change the indexed vectors"):
        search_dense(reference, queries, k=5, query_side={"max_passage_length": 8})
    data = tmp_path / "qs"
    data.mkdir()
    (data / "corpus.jsonl").write_text(setup["corpus"].read_text())
    (data / "queries.jsonl").write_text("".join(json.dumps({"_id": q, "text": t}) + "\n" for q, t in queries.items()))
    out = search(SearchConfig(index=reference, queries=str(data), split=None, k=5, out=tmp_path / "run",
                              max_query_length=4))
    assert open_artifact(out).manifest["metrics"]["query_options"] == {"query_template": "{text}",
                                                                       "max_query_length": 4}


def test_the_query_budget_follows_the_models_declared_limit(setup, tmp_path: Path) -> None:
    model = tmp_path / "declares"
    shutil.copytree(setup["model"], model)
    assert load_encoder(str(model)).options.max_query_length == 64  # no declaration: our default
    (model / "sentence_bert_config.json").write_text('{"max_seq_length": 100}')
    options = load_encoder(str(model)).options
    assert (options.max_query_length, options.max_passage_length) == (100, 100)
    assert load_encoder(str(model), max_query_length=20).options.max_query_length == 20
