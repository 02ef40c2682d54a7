"""`retr score`: the report artifact, its lineage, coverage counts, names, the CLI and bad input."""

from __future__ import annotations

import json
from pathlib import Path

import matplotlib.image
import pytest
from typer.testing import CliRunner

from retr.cli import app
from retr.data.artifacts import ArtifactWriter, open_artifact
from retr.data.datasets import Dataset
from retr.data.errors import DataError, UsageError
from retr.data.trec import write_run
from retr.evaluation.metrics import evaluate
from retr.evaluation.report import ScoreConfig, score

runner = CliRunner()


def write_dataset(root: Path) -> Path:
    """A BEIR dir: 12 judged queries (graded), 40 docs."""
    root.mkdir(parents=True)
    (root / "corpus.jsonl").write_text(
        "".join(json.dumps({"_id": f"d{i}", "title": "", "text": f"doc {i}"}) + "\n" for i in range(40))
    )
    (root / "queries.jsonl").write_text("".join(json.dumps({"_id": f"q{i}", "text": f"q {i}"}) + "\n" for i in range(14)))
    (root / "qrels").mkdir()
    lines = ["query-id\tcorpus-id\tscore"]
    for q in range(12):
        lines += [f"q{q}\td{q}\t2", f"q{q}\td{q + 20}\t1", f"q{q}\td{q + 1}\t0"]
    (root / "qrels" / "test.tsv").write_text("\n".join(lines) + "\n")
    return root


def good_run() -> dict[str, dict[str, float]]:
    """Finds the grade-2 doc first for every judged query, and answers one unjudged query."""
    run = {f"q{q}": {f"d{q}": 3.0, f"d{q + 20}": 2.0, f"d{(q + 5) % 40}": 1.0} for q in range(12)}
    run["q13"] = {"d0": 1.0}
    return run


def weak_run() -> dict[str, dict[str, float]]:
    """Puts a non-relevant doc first and misses judged queries q10 and q11."""
    return {f"q{q}": {f"d{(q + 7) % 40}": 3.0, f"d{q + 20}": 2.0, f"d{q}": 1.0} for q in range(10)}


def run_artifact(path: Path, run: dict, dataset: Path) -> Path:
    with ArtifactWriter(path, "run", {"k": 3}, [Dataset(str(dataset)).as_input("test")]) as writer:
        write_run(writer.dir / "run.trec", run)
    return path


def test_report_artifact(tmp_path: Path) -> None:
    data = write_dataset(tmp_path / "toy")
    good = run_artifact(tmp_path / "dense", good_run(), data)
    weak = tmp_path / "weak.trec"
    write_run(weak, weak_run())
    out = score(ScoreConfig(runs=[str(good), str(weak)], out=tmp_path / "report"))  # qrels: from the run's lineage

    artifact = open_artifact(out, kind="report", verify=True)
    names = {"manifest.json", "report.md", "report.json", "report.tex", "per_query.json", "metrics.png", "per_query.png"}
    assert names <= {p.name for p in out.iterdir()}
    inputs = artifact.manifest["inputs"]
    assert inputs[0] == open_artifact(good).as_input()
    assert inputs[1]["kind"] == "run-file" and len(inputs[1]["sha256"]) == 64
    assert inputs[2]["kind"] == "dataset" and inputs[2]["split"] == "test"
    assert artifact.config["rel_level"] == 1 and artifact.config["names"] == ["dense", "weak"]

    report = json.loads((out / "report.json").read_text())
    qrels = Dataset(str(data)).qrels("test")
    for name, run in (("dense", good_run()), ("weak", weak_run())):
        assert report["runs"][name]["scores"] == pytest.approx(evaluate(qrels, run))
        assert artifact.manifest["metrics"]["runs"][name] == pytest.approx(report["runs"][name]["scores"])
    assert report["runs"]["dense"]["scores"]["mrr@10"] == 1.0
    assert report["runs"]["dense"]["coverage"]["run_queries_unjudged"] == 1
    assert report["runs"]["weak"]["coverage"]["judged_missing_from_run"] == 2
    assert artifact.manifest["metrics"]["coverage"]["weak"]["judged_missing_from_run"] == 2
    assert report["queries"] == 12

    pair = report["significance"]["pairs"][0]
    assert (pair["metric"], pair["a"], pair["b"]) == ("mrr@10", "dense", "weak")
    assert pair["significant"] and pair["better"] == "dense"
    markdown = (out / "report.md").read_text()
    assert "| a | dense | **1.0000**ᵇ |" in markdown and "| b | weak |" in markdown
    assert "Holm-corrected" in markdown and "judged, missing from run" in markdown
    assert r"\toprule" in (out / "report.tex").read_text()
    per_query = json.loads((out / "per_query.json").read_text())
    assert per_query["weak"]["ndcg@10"]["q11"] == 0.0 and per_query["dense"]["ndcg@10"]["q0"] == 1.0
    for png in ("metrics.png", "per_query.png"):
        assert matplotlib.image.imread(out / png).shape[0] > 100


def test_skip_missing_queries_and_names(tmp_path: Path) -> None:
    data = write_dataset(tmp_path / "toy")
    files = []
    for name, run in (("a.trec", good_run()), ("b.trec", weak_run())):
        write_run(tmp_path / name, run)
        files.append(str(tmp_path / name))
    qrels_file = str(data / "qrels" / "test.tsv")
    out = score(ScoreConfig(runs=files, qrels=qrels_file, names=["good,weak"], missing="skip", rel_level=2,
                            metrics=["ndcg@10", "map"], test="fisher", permutations=500, out=tmp_path / "r"))  # fmt: skip
    report = json.loads((out / "report.json").read_text())
    assert list(report["runs"]) == ["good", "weak"] and report["metrics"] == ["ndcg@10", "map-l2"]
    assert report["queries"] == 10  # judged queries both runs have
    qrels = Dataset(str(data)).qrels("test")
    assert report["runs"]["weak"]["scores"] == pytest.approx(
        evaluate(qrels, weak_run(), ["ndcg@10", "map"], rel_level=2, missing="skip")
    )
    assert report["significance"]["permutations"] == 500
    named = score(ScoreConfig(runs=files, qrels=qrels_file, names=["good,weak"], metrics=["ndcg@10", "map"],
                              pairs=["weak:good"], out=tmp_path / "r2"))
    significance = json.loads((named / "report.json").read_text())["significance"]
    assert [(r["a"], r["b"], r["metric"]) for r in significance["pairs"]] == [("weak", "good", "ndcg@10"),
                                                                             ("weak", "good", "map")]
    assert significance["family"] == "the 1 named pairs, per metric"
    assert "Holm-corrected over the 1 named pairs" in (named / "report.md").read_text()
    assert report["qrels"]["kind"] == "qrels" and report["qrels"]["rel_level_reason"] == "set by --rel-level"


def test_bad_input_is_refused(tmp_path: Path) -> None:
    data = write_dataset(tmp_path / "toy")
    run = tmp_path / "x.trec"
    write_run(run, good_run())
    with pytest.raises(DataError, match="no qrels"):
        score(ScoreConfig(runs=[str(run)], out=tmp_path / "r1"))
    with pytest.raises(DataError, match="named x"):
        score(ScoreConfig(runs=[str(run), str(run)], dataset=str(data), out=tmp_path / "r2"))
    with pytest.raises(DataError, match="one name per run"):
        score(ScoreConfig(runs=[str(run)], dataset=str(data), names=["a", "b"], out=tmp_path / "r3"))
    with pytest.raises(DataError, match="nothing to score"):
        score(ScoreConfig(out=tmp_path / "r4"))
    with pytest.raises(UsageError, match="--test"):
        score(ScoreConfig(runs=[str(run)], dataset=str(data), test="t", out=tmp_path / "r5"))
    with pytest.raises(DataError, match="write a pair as A:B"):
        score(ScoreConfig(runs=[str(run)], dataset=str(data), pairs=["x-y"], out=tmp_path / "r7"))
    (tmp_path / "bad.trec").write_text("q1 Q0 d1 1 high tag\n")
    with pytest.raises(DataError, match="bad.trec:1"):
        score(ScoreConfig(runs=[str(tmp_path / "bad.trec")], dataset=str(data), out=tmp_path / "r6"))
    assert not any(p.name.startswith("r") for p in tmp_path.iterdir())  # nothing half-written


def test_cli(tmp_path: Path) -> None:
    data = write_dataset(tmp_path / "toy")
    run = tmp_path / "good.trec"
    write_run(run, good_run())
    result = runner.invoke(app, ["score", str(run), "--dataset", str(data), "--metrics", "ndcg@10,recall@2",
                                 "--out", str(tmp_path / "rep")])  # fmt: skip
    assert result.exit_code == 0, result.output
    assert "| a | good | 1.0000 | 1.0000 |" in result.output and "report:" in result.output
    result = runner.invoke(app, ["score", str(run), "--out", str(tmp_path / "rep2")])
    assert result.exit_code == 2 and "error: no qrels" in result.output
    result = runner.invoke(app, ["score", str(run), "--dataset", str(data), "--out", str(tmp_path / "rep")])
    assert result.exit_code == 2 and "already exists" in result.output


def test_pipeline_score_stage(tmp_path: Path) -> None:
    """`retr run` builds ScoreConfig from YAML options (lists, @refs resolved to paths) and skips it when up to date."""
    from retr.pipeline import Pipeline, run_pipeline

    data = write_dataset(tmp_path / "toy")
    write_run(tmp_path / "good.trec", good_run())
    (tmp_path / "p.yaml").write_text(
        f"workdir: {tmp_path / 'work'}\nstages:\n  - name: score\n    stage: score\n"
        f"    with: {{runs: [{tmp_path / 'good.trec'}], dataset: {data}, metrics: [ndcg@10]}}\n"
    )
    logs: list[str] = []
    outputs = run_pipeline(Pipeline.load(tmp_path / "p.yaml"), log=logs.append)
    report = json.loads((outputs["score"] / "report.json").read_text())
    assert report["runs"]["good"]["scores"] == {"ndcg@10": 1.0}
    run_pipeline(Pipeline.load(tmp_path / "p.yaml"), log=logs.append)
    assert "up to date, skipped" in logs[-2]


def test_combine_reports_over_datasets(tmp_path: Path) -> None:
    """Two datasets' reports -> one table: a column per dataset, the unweighted mean, rows in both reports."""
    reports = []
    for i, name in enumerate(("one", "two")):
        data = write_dataset(tmp_path / name)
        files = []
        for run_name, run in (("good.trec", good_run()), ("weak.trec", weak_run())):
            write_run(tmp_path / f"{name}-{run_name}", run)
            files.append(str(tmp_path / f"{name}-{run_name}"))
        reports.append(score(ScoreConfig(runs=files, dataset=str(data), names=["good", "weak"],
                                         metrics=["ndcg@10", "map"] if i else ["map", "ndcg@10", "mrr@10"],
                                         out=tmp_path / f"report-{name}")))
    result = runner.invoke(app, ["score", "--combine", f"{reports[0]},{reports[1]}", "--names", "A,B",
                                 "--out", str(tmp_path / "summary")])
    assert result.exit_code == 0, result.output
    summary = json.loads((tmp_path / "summary" / "summary.json").read_text())
    assert summary["metrics"] == ["map", "ndcg@10"] and list(summary["runs"]) == ["good", "weak"]
    firsts = [json.loads((r / "report.json").read_text())["runs"]["weak"]["scores"]["ndcg@10"] for r in reports]
    cell = summary["runs"]["weak"]["ndcg@10"]
    assert (cell["A"], cell["B"]) == tuple(firsts) and cell["mean"] == pytest.approx(sum(firsts) / 2)
    assert "| weak |" in result.output and "| mean |" in result.output
    manifest = open_artifact(tmp_path / "summary", kind="report").manifest
    assert len(manifest["inputs"]) == 2 and manifest["metrics"]["mean"]["weak"]["ndcg@10"] == cell["mean"]
    result = runner.invoke(app, ["score", "--combine", str(reports[0]), "--out", str(tmp_path / "s2")])
    assert result.exit_code == 2 and "at least two" in result.output
