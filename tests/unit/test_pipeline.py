"""`retr run`: stages chain through @refs, up-to-date stages are skipped, a change re-runs it and downstream."""

from __future__ import annotations

import re

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
    assert all("skipped" in m for m in messages[:-1]) and fake_stage.CALLS == ["counted"]
    run(2, 5)  # a downstream option: only that stage re-runs
    assert (outputs["counted"] / "n.txt").read_text() == "15" and fake_stage.CALLS == ["counted"] * 2
    messages.clear()
    run(4, 5)  # an upstream option: it re-runs, and so does everything that reads it
    assert (outputs["counted"] / "n.txt").read_text() == "25" and fake_stage.CALLS == ["counted"] * 3
    assert not any("skipped" in m for m in messages)
    run(4, 5, force_from="counted")
    assert fake_stage.CALLS == ["counted"] * 4


def test_stamps_keep_wall_times_and_every_run_ends_with_their_table(tmp_path: Path, fake_stage) -> None:
    messages: list[str] = []
    run = lambda: run_pipeline(Pipeline.load(write_config(tmp_path, 2, 1)), log=messages.append)
    run()
    seconds = {n: json.loads((tmp_path / "work" / f"{n}.stage.json").read_text())["seconds"] for n in ("docs", "counted")}
    assert all(isinstance(s, float) and s >= 0 for s in seconds.values())
    first_table = messages[-1]
    messages.clear()
    run()  # everything skipped: the table still gives the times of the runs that made the artifacts
    assert messages[-1] == first_table and messages[-1].startswith("wall time per stage")
    assert re.search(rf"counted +{seconds['counted']:.1f}\n", messages[-1])
    assert re.search(rf"total +{sum(seconds.values()):.1f}$", messages[-1])


def test_an_option_added_since_at_its_default_keeps_a_stage_done(tmp_path: Path, fake_stage) -> None:
    """A stamp written before an option existed (simulated: the option's key dropped from the recorded config)
    still matches while the option is at its default; a stamp of the older format (the config's sha256) too."""
    from retr.data.artifacts import config_dict, sha256_json

    messages: list[str] = []
    run = lambda f: run_pipeline(Pipeline.load(write_config(tmp_path, 2, f)), log=messages.append)
    run(1)
    stamp_path = tmp_path / "work" / "counted.stage.json"
    stamp = json.loads(stamp_path.read_text())
    assert stamp["config"]["factor"] == 1  # the stamp keeps the resolved config, readable
    del stamp["config"]["factor"]  # as if `factor` (default 1) had been added to retr after the stage ran
    stamp_path.write_text(json.dumps(stamp))
    run(1)
    assert fake_stage.CALLS == ["counted"] and "counted (count): up to date" in messages[-2]
    stamp_path.write_text(json.dumps(stamp))
    run(5)  # the new option away from its default: a real change
    assert fake_stage.CALLS == ["counted"] * 2

    stamp = json.loads(stamp_path.read_text())
    config = fake_stage.CountConfig(out=tmp_path / "work" / "counted", source=str(tmp_path / "work" / "docs"),
                                    factor=5, overwrite=True)
    stamp["config"] = sha256_json(config_dict(config))  # the stamp format before stamps kept the config
    stamp_path.write_text(json.dumps(stamp))
    run(5)
    assert fake_stage.CALLS == ["counted"] * 2

BAD_PIPELINES = [
    ("stages:\n  - {name: a, stage: count, with: {}}\n", "stage 'count' is not one of"),
    ("stages:\n  - {name: a, stage: subset, with: {dataset: '@b'}}\n", "refers to @b"),
    ("stages: [\n", "not a readable YAML file"),
    ("stages: 5\n", "'stages' must be a non-empty list"),
    ("stages: [5]\n", "stage #1: expected a mapping"),
    ("stages:\n  - {name: a, stage: subset, with: [1, 2]}\n", "'with' must be a mapping"),
    ("stages:\n  - {name: a, stage: subset}\nworkdri: x\n", "unknown key(s) workdri"),
    ("stages:\n  - {name: a, stage: subset, with: {distractor: 3}}\n", "unknown option(s) distractor"),
    ("stages:\n  - {name: ../../escape, stage: subset}\n", "must be letters, digits"),
    ("stages:\n  - {name: '..', stage: subset}\n", "must be letters, digits"),
    ("stages:\n  - {name: a, stage: subset}\n  - {name: a, stage: subset}\n", "used twice"),
    ("- a\n", "expected a mapping"),
]


@pytest.mark.parametrize("text, message", BAD_PIPELINES)
def test_bad_pipelines_are_refused_before_any_stage_runs(tmp_path: Path, text: str, message: str) -> None:
    from retr.data.errors import UsageError

    bad = tmp_path / "bad.yaml"
    bad.write_text(text)
    with pytest.raises(UsageError, match=re.escape(message)):
        Pipeline.load(bad)


def test_a_bad_stage_value_is_a_usage_error_naming_the_stage(tmp_path: Path) -> None:
    from retr.data.errors import UsageError

    bad = tmp_path / "bad.yaml"
    bad.write_text(f"workdir: {tmp_path / 'w'}\nstages:\n  - {{name: m, stage: mine, with: {{k: ten}}}}\n")
    with pytest.raises(UsageError, match="stage m: k must be an integer, got 'ten'"):
        run_pipeline(Pipeline.load(bad), log=lambda line: None)
    assert not (tmp_path / "w" / "m").exists()
