"""Every shipped config parses, names real stages, and each stage's options exist on that stage's config class."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from retr.pipeline import Pipeline, _entry

CONFIGS = sorted((Path(__file__).resolve().parents[2] / "configs").glob("*.yaml"))


def test_the_three_pipelines_ship() -> None:
    assert {p.name for p in CONFIGS} >= {"demo-cpu.yaml", "msmarco-passage.yaml", "beir.yaml"}


@pytest.mark.parametrize("path", CONFIGS, ids=lambda p: p.name)
def test_config_options_match_the_stage_configs(path: Path) -> None:
    pipeline = Pipeline.load(path)
    for spec in pipeline.stages:
        config_class, _ = _entry(spec.stage)
        names = {f.name for f in dataclasses.fields(config_class)}
        assert set(spec.options) <= names, (spec.name, sorted(set(spec.options) - names))


@pytest.mark.parametrize("path", CONFIGS, ids=lambda p: p.name)
def test_every_stage_config_builds(path: Path, tmp_path: Path) -> None:
    """Values too: each stage's config is built as `retr run` builds it (refs resolved to their output folders), so
    a bad value (a negative window, an unknown objective or precision) fails here rather than hours into a run."""
    from retr.pipeline import _build, _resolve

    pipeline = Pipeline.load(path, tmp_path)
    outputs = {spec.name: tmp_path / spec.name for spec in pipeline.stages}
    for spec in pipeline.stages:
        config_class, _ = _entry(spec.stage)
        _build(config_class, _resolve(spec.options, outputs), outputs[spec.name], f"stage {spec.name}")
