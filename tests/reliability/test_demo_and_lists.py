"""issue 9: `retr demo` without its data (a typer Exit code was swallowed: exit 0), a YAML string where a list is
expected (a list of one, never a string iterated letter by letter), and SubsetConfig's refused values."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import typer
from typer.testing import CliRunner

from retr.cli import OneLineErrors
from tests.reliability.conftest import assert_user_error, retr, snapshot, write_beir


def test_demo_without_data_is_one_line_and_exit_2(tmp_path: Path) -> None:
    (tmp_path / "nodata").mkdir()
    before = snapshot(tmp_path)
    result = retr("demo", cwd=tmp_path, env={"RETR_DATA_DIR": str(tmp_path / "nodata")})
    assert_user_error(result, "scifact", "wikipedia", "RETR_DATA_DIR")
    assert snapshot(tmp_path) == before, "no runs/ folder or anything else written"


@pytest.mark.parametrize("code", [0, 3, 130])
def test_exit_codes_raised_in_a_command_reach_the_shell(code: int) -> None:
    """Click without standalone mode returns a typer.Exit's code instead of exiting: the group must exit with it."""
    app = typer.Typer(cls=OneLineErrors)

    @app.command()
    def stop() -> None:
        raise typer.Exit(code)

    @app.command()
    def other() -> None:  # two commands, so the group dispatches by name as retr's does
        pass

    assert CliRunner().invoke(app, ["stop"]).exit_code == code


def _pipeline(tmp_path: Path, options: str) -> Path:
    data = write_beir(tmp_path / "data")
    path = tmp_path / "p.yaml"
    path.write_text(f"workdir: {tmp_path / 'w'}\nstages:\n  - name: sub\n    stage: subset\n"
                    f"    with: {{dataset: {data}, {options}}}\n")
    return path


def test_one_string_where_a_list_is_expected_is_a_list_of_one(tmp_path: Path) -> None:
    path = _pipeline(tmp_path, "splits: test, distractors: 2")
    result = retr("run", path, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    manifest = json.loads((tmp_path / "w" / "sub" / "manifest.json").read_text())
    assert manifest["config"]["splits"] == ["test"]
    assert sorted(p.name for p in (tmp_path / "w" / "sub" / "qrels").iterdir()) == ["test.tsv"]


@pytest.mark.parametrize("options, words", [("splits: [test], distractors: -1", ("stage sub", "distractors", ">= 0")),
                                            ("splits: [], distractors: 2", ("stage sub", "splits")),
                                            ("splits: [''], distractors: 2", ("stage sub", "splits"))])
def test_subset_values_refused(tmp_path: Path, options: str, words: tuple[str, ...]) -> None:
    path = _pipeline(tmp_path, options)
    before = snapshot(tmp_path)
    assert_user_error(retr("run", path, cwd=tmp_path), *words)
    assert snapshot(tmp_path) == before, "a refused pipeline writes nothing"
