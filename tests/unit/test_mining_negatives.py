"""Better negatives in `retr mine`: the positive-aware ratio filter (TopK-PercPos) and re-mining with a dense index."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from retr.data.artifacts import open_artifact
from retr.data.trec import read_run
from retr.indexing.dense import IndexConfig, build_index
from retr.training.mining import Hit, MineConfig, mine, negative_ceiling, ranked, sample_negatives
from tests.unit.test_bm25 import make_tiny_beir
from tests.unit.tiny_models import make_tiny_model


def _hits(scores: dict[str, float]) -> list[Hit]:
    return ranked(scores)


def test_ceiling_is_ratio_of_best_positive() -> None:
    hits = _hits({"p": 10.0, "p2": 4.0, "a": 9.8, "b": 9.0})
    assert negative_ceiling(hits, {"p", "p2"}, 0.95) == pytest.approx(9.5)
    assert negative_ceiling(hits, {"p"}, None) is None
    assert negative_ceiling(hits, {"absent"}, 0.95) is None  # the positive's score is unknown


def test_ceiling_with_negative_positive_score_still_drops_higher_scores() -> None:
    hits = _hits({"p": -2.0, "a": -1.0, "b": -3.0})
    ceiling = negative_ceiling(hits, {"p"}, 0.5)
    assert ceiling == pytest.approx(-4.0)  # below the positive's score, as with positive scores


def test_filter_drops_near_positive_candidates() -> None:
    scores = {"p": 10.0, "a": 9.9, "b": 9.6, "c": 9.4, "d": 8.0, "e": 7.0}
    cfg = MineConfig(k=10, rank_min=1, rank_max=10, negatives=3, max_negative_ratio=0.95)
    picked = sample_negatives(_hits(scores), {"p"}, cfg, "q")
    assert picked is not None and {h.id for h in picked} == {"c", "d", "e"}
    unfiltered = MineConfig(k=10, rank_min=1, rank_max=10, negatives=5)
    assert {h.id for h in sample_negatives(_hits(scores), {"p"}, unfiltered, "q") or []} == set("abcde")


def test_filter_can_leave_a_query_short() -> None:
    cfg = MineConfig(k=10, rank_min=1, rank_max=10, negatives=3, max_negative_ratio=0.5)
    assert sample_negatives(_hits({"p": 10.0, "a": 9.0, "b": 8.0, "c": 4.0}), {"p"}, cfg, "q") is None


def test_ratio_must_be_positive() -> None:
    with pytest.raises(ValueError, match="max_negative_ratio"):
        MineConfig(max_negative_ratio=0)


def test_mine_records_the_filter(tmp_path: Path) -> None:
    tiny = make_tiny_beir(tmp_path / "beir")
    common = dict(dataset=str(tiny.root), k=40, rank_min=1, rank_max=40, negatives=2, bm25_cache=tmp_path / "c")
    plain = mine(MineConfig(out=tmp_path / "plain", **common))
    filtered = mine(MineConfig(out=tmp_path / "filtered", max_negative_ratio=0.8, **common))
    metrics = open_artifact(filtered, kind="training-set", verify=True).manifest["metrics"]
    assert metrics["max_negative_ratio"] == 0.8 and metrics["candidates"] == "bm25"
    assert metrics["negatives_dropped_by_ratio"] > 0
    run = read_run(filtered / "bm25.trec")
    for line in (filtered / "train.jsonl").read_text().splitlines():
        record = json.loads(line)
        best = max(run[record["query_id"]].get(p["id"], float("-inf")) for p in record["positives"])
        if best > float("-inf"):
            assert all(n["score"] <= 0.8 * best + 1e-6 for n in record["negatives"])
    assert open_artifact(plain).manifest["metrics"]["negatives_dropped_by_ratio"] == 0


@pytest.fixture(scope="module")
def dense_setup(tmp_path_factory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("remine")
    tiny = make_tiny_beir(root / "beir")
    model = make_tiny_model(root / "llama", "llama")
    index = build_index(IndexConfig(corpus=str(tiny.root), encoder=str(model), out=root / "dense", chunk_size=16,
                                    max_passage_length=32, max_query_length=32))
    return {"beir": tiny.root, "index": Path(index), "root": root}


def test_remine_with_a_dense_index(dense_setup: dict[str, Path], tmp_path: Path) -> None:
    out = mine(MineConfig(dataset=str(dense_setup["beir"]), out=tmp_path / "m", k=30, rank_min=1, rank_max=30,
                          negatives=3, index=dense_setup["index"]))
    artifact = open_artifact(out, kind="training-set", verify=True)
    assert (out / "dense.trec").is_file() and not (out / "bm25.trec").exists()
    assert artifact.manifest["metrics"]["candidates"] == "dense"
    kinds = [record.get("kind") for record in artifact.manifest["inputs"]]
    assert "dense-index" in kinds and "bm25-index" not in kinds
    run = read_run(out / "dense.trec")
    records = [json.loads(line) for line in (out / "train.jsonl").read_text().splitlines()]
    assert records
    for record in records:
        order = [h.id for h in ranked(run[record["query_id"]])]
        for negative in record["negatives"]:
            assert order[negative["rank"] - 1] == negative["id"]
            assert negative["id"] not in {p["id"] for p in record["positives"]}


def test_remine_refuses_an_artifact_that_is_not_a_dense_index(tmp_path: Path) -> None:
    tiny = make_tiny_beir(tmp_path / "beir")
    bm25 = mine(MineConfig(dataset=str(tiny.root), out=tmp_path / "m", k=40, rank_min=1, rank_max=40, negatives=2,
                           bm25_cache=tmp_path / "c"))
    with pytest.raises(Exception, match="dense-index"):
        mine(MineConfig(dataset=str(tiny.root), out=tmp_path / "m2", index=bm25))
    assert not (tmp_path / "m2").exists()


def test_max_queries_mines_a_seeded_sample_with_unchanged_negatives(tmp_path: Path) -> None:
    tiny = make_tiny_beir(tmp_path / "beir")
    common = dict(dataset=str(tiny.root), k=40, rank_min=1, rank_max=40, negatives=2, bm25_cache=tmp_path / "c")

    def lines(path: Path) -> dict[str, dict]:
        records = [json.loads(line) for line in (path / "train.jsonl").read_text().splitlines()]
        return {r["query_id"]: r for r in records}

    full = lines(mine(MineConfig(out=tmp_path / "full", **common)))
    sample = mine(MineConfig(out=tmp_path / "sample", max_queries=6, **common))
    metrics = open_artifact(sample, kind="training-set", verify=True).manifest["metrics"]
    assert metrics["queries"] == 6 and metrics["split_queries"] == len(tiny.qrels["train"]) == 18
    picked = lines(sample)
    assert len(picked) <= 6 and set(picked) <= set(full)
    for qid, record in picked.items():  # a query's negatives are its own (seeded by its id), sample or not
        assert record == full[qid]
    again = lines(mine(MineConfig(out=tmp_path / "again", max_queries=6, **common)))
    other = lines(mine(MineConfig(out=tmp_path / "other", max_queries=6, **{**common, "seed": 5})))
    assert list(again) == list(picked) and set(other) != set(picked)
    with pytest.raises(ValueError, match="max_queries"):
        MineConfig(max_queries=0)


def _queries_are_documents(root: Path, same_id_judged: bool) -> Path:
    """ArguAna-like data: queries d00-d03 are corpus documents under the same ids; each judges another document
    relevant (Cranfield-like when ``same_id_judged``: the qrels also judge the same id, so ids are two numberings)."""
    (root / "qrels").mkdir(parents=True)
    docs = {f"d{i:02d}": f"uniq{i} common" for i in range(12)}
    (root / "corpus.jsonl").write_text(
        "".join(json.dumps({"_id": d, "title": "", "text": t}) + "\n" for d, t in docs.items()))
    queries = [f"d{i:02d}" for i in range(4)]
    (root / "queries.jsonl").write_text("".join(json.dumps({"_id": q, "text": docs[q]}) + "\n" for q in queries))
    judged = [(q, f"d{int(q[1:]) + 6:02d}") for q in queries] + ([("d00", "d00")] if same_id_judged else [])
    (root / "qrels" / "train.tsv").write_text(
        "query-id\tcorpus-id\tscore\n" + "".join(f"{q}\t{d}\t1\n" for q, d in judged))
    return root


@pytest.mark.parametrize("same_id_judged", [False, True])
def test_a_query_that_is_a_document_is_not_its_own_negative(tmp_path: Path, same_id_judged: bool) -> None:
    data = _queries_are_documents(tmp_path / "data", same_id_judged)
    out = mine(MineConfig(dataset=str(data), split="train", out=tmp_path / "mined", k=12, rank_min=1, rank_max=2,
                          negatives=2, bm25_cache=tmp_path / "c"))
    records = [json.loads(line) for line in (out / "train.jsonl").read_text().splitlines()]
    self_negative = {r["query_id"] for r in records if r["query_id"] in {n["id"] for n in r["negatives"]}}
    metrics = open_artifact(out).manifest["metrics"]["self_hits"]
    if same_id_judged:  # separate numberings: the same id is another text, a fair negative (it ranks low here)
        assert metrics["drop"] is False and metrics["dropped"] == 0
    else:  # each query's own text ranks first, inside the 2-rank window: only the rule keeps it out
        assert len(records) == 4 and not self_negative
        assert metrics["drop"] is True and metrics["dropped"] == 4
