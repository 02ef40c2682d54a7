"""The CLI shell: options generated from the config dataclasses, one error policy, `retr show`."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest
import typer
from typer.testing import CliRunner

from retr.cli import app
from retr.data.artifacts import ArtifactWriter, open_artifact
from retr.evaluation.report import ScoreConfig
from retr.indexing.dense import IndexConfig
from retr.retrieval.search import SearchConfig
from retr.training.config import TrainConfig
from retr.training.mining import MineConfig

runner = CliRunner()
CONFIGS = {"mine": MineConfig, "train": TrainConfig, "index": IndexConfig, "search": SearchConfig, "score": ScoreConfig}
EXTRA = {"index": {"merge"}, "search": {"query", "format", "corpus"}}  # not config fields: index --merge builds a
# MergeConfig; ad hoc search writes nothing


def _default(field: dataclasses.Field) -> object:
    return field.default_factory() if field.default is dataclasses.MISSING else field.default  # type: ignore[misc]


@pytest.mark.parametrize("name", sorted(CONFIGS))
def test_options_are_the_config_fields(name: str) -> None:
    """Every command's options are exactly its config's fields (plus --config), each shows the real default."""
    command = typer.main.get_command(app).commands[name]  # type: ignore[attr-defined]
    params = {p.name: p for p in command.params if p.name not in {"help", "config"} | EXTRA.get(name, set())}
    fields = {f.name: f for f in dataclasses.fields(CONFIGS[name])}
    assert set(params) == set(fields)
    for field_name, field in fields.items():
        param = params[field_name]
        assert param.default is None  # not given = not overriding the YAML or the dataclass
        default = _default(field)
        help_text = getattr(param, "help", "") or ""
        assert field.metadata["help"].rstrip(".") in help_text
        if isinstance(default, (int, float, str, Path)) and not isinstance(default, bool) and default != "":
            assert f"Default: {default}." in help_text, (field_name, help_text)
    options = {o for p in command.params for o in getattr(p, "opts", [])}
    assert {"--" + f.replace("_", "-") for f in fields if f != "runs"} <= options


def test_bm25_cache_has_one_name() -> None:
    for name in ("mine", "search"):
        options = {o for p in typer.main.get_command(app).commands[name].params for o in p.opts}  # type: ignore[attr-defined]
        assert "--bm25-cache" in options and "--cache-dir" not in options and "--index-cache" not in options


def test_yaml_and_cli_build_the_same_config(tmp_path: Path) -> None:
    from retr.cli.common import build_config

    config = tmp_path / "c.yaml"
    config.write_text("search:\n  k: 7\n  split: dev\n")
    cfg = build_config(SearchConfig, config, "search", k=9)
    assert (cfg.k, cfg.split, cfg.batch_size) == (9, "dev", SearchConfig().batch_size)


@pytest.mark.parametrize(
    "argv, words",
    [
        (["search", "--k", "ten"], ["retr search: error:", "--k"]),
        (["search", "--k", "3000000000"], ["retr search: error:", "k must be between 1 and"]),
        (["search", "--batch-size", "0"], ["retr search: error:", "batch_size"]),
        (["train", "--max-steps", "-3"], ["retr train: error:", "max_steps"]),
        (["score", "run.trec", "--permutations", "-5"], ["retr score: error:", "permutations"]),
        (["index", "--batch-tokens", "-1"], ["retr index: error:", "batch_tokens"]),
        (["mine", "--bogus", "1"], ["No such option", "--bogus"]),
    ],
)
def test_user_mistakes_are_one_line_and_exit_2(argv: list[str], words: list[str]) -> None:
    result = runner.invoke(app, argv)
    assert result.exit_code == 2, result.output
    assert len(result.stderr.strip().splitlines()) == 1, result.stderr
    for word in words:
        assert word in result.stderr


def test_show_prints_manifest_and_lineage(tmp_path: Path) -> None:
    with ArtifactWriter(tmp_path / "model", "model", {"lr": 1}) as writer:
        (writer.dir / "w.bin").write_bytes(b"1")
    with ArtifactWriter(tmp_path / "index", "dense-index", {"f": "Flat"}, [open_artifact(tmp_path / "model")]) as w:
        (w.dir / "index.faiss").write_bytes(b"2")
    result = runner.invoke(app, ["show", str(tmp_path / "index"), "--verify"])
    assert result.exit_code == 0, result.output
    assert '"kind": "dense-index"' in result.output and "lineage:" in result.output
    assert "    model  " in result.output and "verified" in result.output
    (tmp_path / "index" / "index.faiss").write_bytes(b"3")
    result = runner.invoke(app, ["show", str(tmp_path / "index"), "--verify"])
    assert result.exit_code == 2 and "checksum" in result.output


def test_score_help_is_not_cut_at_80_columns() -> None:
    result = runner.invoke(app, ["score", "--help"], terminal_width=80, env={"COLUMNS": "80"})
    assert result.exit_code == 0 and "…" not in result.output
