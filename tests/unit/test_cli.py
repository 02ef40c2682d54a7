"""The CLI shell: every command is listed, and `retr show` prints a manifest with its lineage."""

from __future__ import annotations

from pathlib import Path

from typer.testing import CliRunner

from retr.cli import app
from retr.data.artifacts import ArtifactWriter, open_artifact

runner = CliRunner()


def test_help_lists_every_command() -> None:
    result = runner.invoke(app, ["--help"])
    assert result.exit_code == 0
    for name in ("mine", "train", "index", "search", "score", "run", "demo", "show"):
        assert name in result.output


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
