"""The artifact layer: manifest contents, atomic publication, checksums, lineage, refusal and resume."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from retr.data.artifacts import (
    MANIFEST,
    ArtifactError,
    ArtifactWriter,
    lineage,
    open_artifact,
    require_lineage,
    sha256_file,
)


def make(tmp_path: Path, name: str = "a", kind: str = "run", inputs=(), content: str = "hello") -> Path:
    out = tmp_path / name
    with ArtifactWriter(out, kind, {"k": 1}, list(inputs)) as writer:
        (writer.dir / "run.trec").write_text(content)
        (writer.dir / "sub").mkdir()
        (writer.dir / "sub" / "x.npy").write_bytes(b"\x00\x01")
        writer.metrics["n"] = 3
    return out


def test_manifest_has_the_design_fields(tmp_path: Path) -> None:
    out = make(tmp_path)
    manifest = json.loads((out / MANIFEST).read_text())
    for key in ("kind", "schema", "created", "retr_version", "git_commit", "config", "inputs", "outputs", "env",
                "metrics", "timing"):
        assert key in manifest, key
    assert manifest["kind"] == "run" and manifest["config"] == {"k": 1} and manifest["metrics"] == {"n": 3}
    files = {o["path"]: o for o in manifest["outputs"]}
    assert set(files) == {"run.trec", "sub/x.npy"}
    assert files["run.trec"]["sha256"] == sha256_file(out / "run.trec")
    assert files["run.trec"]["bytes"] == 5
    assert not list(tmp_path.glob("a.tmp-*")), "the tmp dir is renamed into place"


def test_refuses_wrong_kind_missing_manifest_and_tampered_output(tmp_path: Path) -> None:
    out = make(tmp_path)
    with pytest.raises(ArtifactError, match="expected dense-index"):
        open_artifact(out, kind="dense-index")
    open_artifact(out, kind=("dense-index", "run"), verify=True)
    (out / "run.trec").write_text("HELLO")
    with pytest.raises(ArtifactError, match="checksum"):
        open_artifact(out, verify=True)
    incomplete = tmp_path / "b"
    incomplete.mkdir()
    with pytest.raises(ArtifactError, match="did not finish"):
        open_artifact(incomplete)
    with pytest.raises(ArtifactError, match="no such artifact"):
        open_artifact(tmp_path / "nope")


def test_existing_output_needs_overwrite(tmp_path: Path) -> None:
    make(tmp_path)
    with pytest.raises(ArtifactError, match="already exists"):
        make(tmp_path)
    out = tmp_path / "a"
    with ArtifactWriter(out, "run", {"k": 2}, overwrite=True) as writer:
        (writer.dir / "run.trec").write_text("new")
    assert (out / "run.trec").read_text() == "new" and not (out / "sub").exists()


def test_exception_publishes_nothing_and_the_same_config_resumes(tmp_path: Path) -> None:
    out = tmp_path / "c"
    with pytest.raises(RuntimeError):
        with ArtifactWriter(out, "index", {"k": 1}) as writer:
            (writer.dir / "shard-0.npy").write_text("done")
            raise RuntimeError("killed")
    assert not out.exists()
    # Same pid here, so pretend the dead run had another pid.
    stale = next(tmp_path.glob("c.tmp-*"))
    stale.rename(tmp_path / "c.tmp-999999999")
    with ArtifactWriter(out, "index", {"k": 2}) as writer:  # another config: its partial work is dropped
        assert not writer.resumed and not (writer.dir / "shard-0.npy").exists()
    assert not list(tmp_path.glob("c.tmp-*"))


def test_resume_adopts_a_dead_runs_tmp_dir(tmp_path: Path) -> None:
    out = tmp_path / "d"
    with pytest.raises(RuntimeError):
        with ArtifactWriter(out, "index", {"k": 1}) as writer:
            (writer.dir / "shard-0.npy").write_text("done")
            raise RuntimeError
    next(tmp_path.glob("d.tmp-*")).rename(tmp_path / "d.tmp-999999999")
    with ArtifactWriter(out, "index", {"k": 1}) as writer:
        assert writer.resumed and (writer.dir / "shard-0.npy").read_text() == "done"
    assert {o["path"] for o in open_artifact(out).manifest["outputs"]} == {"shard-0.npy"}


def test_killed_writer_leaves_nothing_a_later_stage_accepts(tmp_path: Path) -> None:
    """SIGKILL in the middle of writing: neither the output nor the tmp dir is accepted as an artifact."""
    out = tmp_path / "killed"
    script = textwrap.dedent(f"""
        import time
        from pathlib import Path
        from retr.data.artifacts import ArtifactWriter
        with ArtifactWriter(Path({str(out)!r}), "run", {{}}) as w:
            (w.dir / "run.trec").write_text("partial")
            print("ready", flush=True)
            time.sleep(60)
    """)
    proc = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True,
                            cwd=Path(__file__).resolve().parents[2])
    assert proc.stdout.readline().strip() == "ready"
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    assert not out.exists()
    for candidate in tmp_path.iterdir():
        with pytest.raises(ArtifactError):
            open_artifact(candidate)


def test_lineage_records_input_hashes_and_detects_changes(tmp_path: Path) -> None:
    first = open_artifact(make(tmp_path, "first", kind="model"))
    second = open_artifact(make(tmp_path, "second", kind="dense-index", inputs=[first]))
    record = second.manifest["inputs"][0]
    assert record == {"kind": "model", "path": str(first.path.resolve()), "sha256": first.sha256}
    require_lineage(first, record, "encoder")
    tree = lineage(second)
    assert tree[0].startswith("dense-index") and tree[1].strip().startswith("model")
    # Rebuild the input: the recorded hash no longer matches.
    with ArtifactWriter(first.path, "model", {"k": 9}, overwrite=True) as writer:
        (writer.dir / "w").write_text("other")
    changed = open_artifact(first.path)
    assert "CHANGED" in lineage(second)[1]
    with pytest.raises(ArtifactError, match="not the encoder recorded"):
        require_lineage(changed, record, "encoder")
