"""`retr run`: stages chain through @refs, up-to-date stages are skipped, a change re-runs it and downstream."""

from __future__ import annotations

import json
import textwrap
from pathlib import Path

import pytest

from retr import pipeline as pipeline_module
from retr.pipeline import Pipeline, run_pipeline

FAKE_STAGE = textwrap.dedent('''
    from dataclasses import dataclass
    from pathlib import Path
    from retr.data.artifacts import ArtifactWriter, open_artifact

    CALLS = []

    @dataclass
    class CountConfig:
        out: Path = Path("x")
        source: str = ""
        factor: int = 1
        overwrite: bool = False

    def count(config):
        CALLS.append(config.out.name)
        inputs = [open_artifact(config.source)] if config.source.endswith("docs") else []
        n = sum(1 for _ in open(Path(config.source) / "corpus.jsonl")) if inputs else 0
        with ArtifactWriter(config.out, "count", {"factor": config.factor}, inputs, overwrite=config.overwrite) as w:
            (w.dir / "n.txt").write_text(str(n * config.factor))
        return config.out
''')


@pytest.fixture
def fake_stage(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    (tmp_path / "fake_stage_mod.py").write_text(FAKE_STAGE)
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setitem(pipeline_module.STAGES, "count", ("fake_stage_mod", "CountConfig", "count"))
    import fake_stage_mod

    fake_stage_mod.CALLS.clear()
    return fake_stage_mod


def write_config(tmp_path: Path, distractors: int, factor: int) -> Path:
    corpus = tmp_path / "toy"
    (corpus / "qrels").mkdir(parents=True, exist_ok=True)
    (corpus / "corpus.jsonl").write_text("".join(json.dumps({"_id": f"d{i}", "text": f"t{i}"}) + "\n" for i in range(9)))
    (corpus / "queries.jsonl").write_text(json.dumps({"_id": "q1", "text": "t"}) + "\n")
    (corpus / "qrels" / "test.tsv").write_text("query-id\tcorpus-id\tscore\nq1\td3\t1\n")
    config = tmp_path / "pipe.yaml"
    config.write_text(textwrap.dedent(f"""
        workdir: {tmp_path / "work"}
        stages:
          - name: docs
            stage: subset
            with: {{dataset: {corpus}, distractors: {distractors}, seed: 1}}
          - name: counted
            stage: count
            with: {{source: "@docs", factor: {factor}}}
    """))
    return config


def test_second_run_skips_and_changes_rerun_downstream_only(tmp_path: Path, fake_stage) -> None:
    messages: list[str] = []
    run = lambda d, f, **kw: run_pipeline(Pipeline.load(write_config(tmp_path, d, f)), log=messages.append, **kw)
    outputs = run(2, 1)
    assert (outputs["counted"] / "n.txt").read_text() == "3"  # 1 judged + 2 distractors
    assert fake_stage.CALLS == ["counted"]
    messages.clear()
    run(2, 1)
    assert all("skipped" in m for m in messages) and fake_stage.CALLS == ["counted"]
    run(2, 5)  # a downstream option: only that stage re-runs
    assert (outputs["counted"] / "n.txt").read_text() == "15" and fake_stage.CALLS == ["counted"] * 2
    messages.clear()
    run(4, 5)  # an upstream option: it re-runs, and so does everything that reads it
    assert (outputs["counted"] / "n.txt").read_text() == "25" and fake_stage.CALLS == ["counted"] * 3
    assert not any("skipped" in m for m in messages)
    run(4, 5, force_from="counted")
    assert fake_stage.CALLS == ["counted"] * 4


def test_bad_pipelines_are_refused(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("stages:\n  - {name: a, stage: count, with: {}}\n")
    with pytest.raises(ValueError, match="needs a name and a stage"):
        Pipeline.load(bad)
    bad.write_text("stages:\n  - {name: a, stage: subset, with: {dataset: '@b'}}\n")
    with pytest.raises(ValueError, match="refers to @b"):
        Pipeline.load(bad)
