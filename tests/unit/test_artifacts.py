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
    LOCK_SUFFIX,
    MANIFEST,
    ArtifactError,
    ArtifactWriter,
    cached_sha256,
    check_output,
    lineage,
    open_artifact,
    require_lineage,
    sha256_file,
)
from retr.data.errors import DataError


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
    import resource

    peak_mib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    assert 10 < manifest["timing"]["peak_rss_mib"] <= peak_mib + 1  # this process's peak, in MiB


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
        with ArtifactWriter(out, "index", {"k": 1}, resumable=True) as writer:
            (writer.dir / "shard-0.npy").write_text("done")
            raise RuntimeError("killed")
    assert not out.exists()
    # Same pid here, so pretend the dead run had another pid.
    stale = next(tmp_path.glob("c.tmp-*"))
    stale.rename(tmp_path / "c.tmp-999999999")
    with ArtifactWriter(out, "index", {"k": 2}, resumable=True) as writer:  # another config: its partial work is dropped
        assert not writer.resumed and not (writer.dir / "shard-0.npy").exists()
    assert not list(tmp_path.glob("c.tmp-*"))


def test_resume_adopts_a_dead_runs_tmp_dir(tmp_path: Path) -> None:
    out = tmp_path / "d"
    with pytest.raises(RuntimeError):
        with ArtifactWriter(out, "dense-index", {"k": 1}) as writer:  # a resumable kind
            (writer.dir / "shard-0.npy").write_text("done")
            raise RuntimeError
    next(tmp_path.glob("d.tmp-*")).rename(tmp_path / "d.tmp-999999999")
    with ArtifactWriter(out, "dense-index", {"k": 1}) as writer:
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


def leftovers(root: Path) -> list[str]:
    """tmp dirs, lock files and trash our writers could have left under ``root``."""
    return sorted(p.name for p in root.iterdir() if ".tmp-" in p.name or LOCK_SUFFIX in p.name or "old-" in p.name)


def test_out_that_is_a_user_folder_is_refused_even_with_overwrite(tmp_path: Path) -> None:
    victim = tmp_path / "victim"
    victim.mkdir()
    (victim / "notes.txt").write_text("mine")
    for overwrite in (False, True):
        with pytest.raises(ArtifactError, match="not a retr artifact"):
            with ArtifactWriter(victim, "run", {}, overwrite=overwrite) as writer:
                (writer.dir / "run.trec").write_text("x")
    assert (victim / "notes.txt").read_text() == "mine" and leftovers(tmp_path) == []


def test_out_that_is_a_file_or_the_cwd_is_refused(tmp_path: Path, monkeypatch) -> None:
    target = tmp_path / "file.txt"
    target.write_text("keep")
    for overwrite in (False, True):
        with pytest.raises(ArtifactError, match="existing file"):
            check_output(target, "run", overwrite)
    with pytest.raises(ArtifactError, match="is a file"):
        check_output(target / "below", "run")
    monkeypatch.chdir(tmp_path)
    for out in (".", "..", str(tmp_path)):
        with pytest.raises(ArtifactError, match="current directory"):
            with ArtifactWriter(Path(out), "run", {}, overwrite=True):
                pass
    assert target.read_text() == "keep" and leftovers(tmp_path) == []


def test_overwrite_of_another_kind_needs_the_flag_and_an_empty_folder_is_fine(tmp_path: Path) -> None:
    out = make(tmp_path, kind="model")
    with pytest.raises(ArtifactError, match="'model' artifact"):
        check_output(out, "run")
    assert check_output(out, "run", overwrite=True) == out
    empty = tmp_path / "empty"
    empty.mkdir()
    with ArtifactWriter(empty, "run", {}) as writer:
        (writer.dir / "run.trec").write_text("x")
    assert open_artifact(empty, kind="run", verify=True)


def test_a_user_folder_named_like_a_tmp_dir_is_never_touched(tmp_path: Path) -> None:
    lookalike = tmp_path / "foo.tmp-999999"
    lookalike.mkdir()
    (lookalike / "data.csv").write_text("precious")
    make(tmp_path, "foo")
    assert (lookalike / "data.csv").read_text() == "precious"


def test_user_errors_and_non_resumable_failures_leave_nothing(tmp_path: Path) -> None:
    for kind, error in (("run", RuntimeError), ("dense-index", DataError), ("model", ArtifactError)):
        with pytest.raises(error):
            with ArtifactWriter(tmp_path / kind, kind, {}) as writer:
                (writer.dir / "part").write_text("half")
                raise error("boom")
    assert leftovers(tmp_path) == [] and not any(tmp_path.iterdir())


def test_a_second_writer_is_refused_while_the_first_holds_the_lock(tmp_path: Path) -> None:
    out = tmp_path / "busy"
    with ArtifactWriter(out, "run", {}) as first:
        with pytest.raises(ArtifactError, match="another retr process"):
            with ArtifactWriter(out, "run", {}, overwrite=True):
                pass
        (first.dir / "run.trec").write_text("first")
    assert (out / "run.trec").read_text() == "first" and leftovers(tmp_path) == []


def test_a_stale_lock_of_a_dead_process_is_taken_over(tmp_path: Path) -> None:
    out = tmp_path / "stale"
    script = textwrap.dedent(f"""
        import os, time
        from pathlib import Path
        from retr.data.artifacts import ArtifactWriter
        with ArtifactWriter(Path({str(out)!r}), "run", {{}}) as w:
            print("ready", flush=True)
            time.sleep(60)
    """)
    proc = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True,
                            cwd=Path(__file__).resolve().parents[2])
    assert proc.stdout.readline().strip() == "ready"
    with pytest.raises(ArtifactError, match=f"pid {proc.pid}"):
        with ArtifactWriter(out, "run", {}):
            pass
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    assert (tmp_path / f"stale{LOCK_SUFFIX}").exists()
    with ArtifactWriter(out, "run", {}) as writer:
        (writer.dir / "run.trec").write_text("taken over")
    assert (out / "run.trec").read_text() == "taken over" and leftovers(tmp_path) == []


def test_manifest_paths_must_stay_inside_the_artifact(tmp_path: Path) -> None:
    out = make(tmp_path)
    manifest = json.loads((out / MANIFEST).read_text())
    secret = tmp_path / "secret"
    secret.write_text("s")
    for forged in ("../secret", str(secret), "sub/../../secret"):
        manifest["outputs"] = [{"path": forged, "bytes": 1, "sha256": sha256_file(secret)}]
        (out / MANIFEST).write_text(json.dumps(manifest))
        with pytest.raises(ArtifactError, match="outside the artifact"):
            open_artifact(out, verify=True)
    (out / "link").symlink_to(secret)
    manifest["outputs"] = [{"path": "link", "bytes": 1, "sha256": sha256_file(secret)}]
    (out / MANIFEST).write_text(json.dumps(manifest))
    with pytest.raises(ArtifactError, match="outside the artifact"):
        open_artifact(out)


def test_cached_verify_notices_a_flipped_byte_even_with_the_mtime_restored(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("RETR_HOME", str(tmp_path / "home"))
    out = make(tmp_path, content="x" * 1000)
    artifact = open_artifact(out)
    assert artifact.verify(under="sub") == 1 and artifact.verify(["run.trec"]) == 1
    assert list((tmp_path / "home" / "fingerprints").iterdir()), "hashes are cached"
    target = out / "run.trec"
    before = target.stat()
    with open(target, "r+b") as handle:
        handle.seek(500)
        handle.write(b"y")
    os.utime(target, ns=(before.st_atime_ns, before.st_mtime_ns))
    with pytest.raises(ArtifactError, match="run.trec: does not match"):
        artifact.verify(["run.trec"])
    assert cached_sha256(target) == sha256_file(target)


def test_overwrite_replaces_an_artifact_without_leaving_trash(tmp_path: Path) -> None:
    make(tmp_path)
    out = tmp_path / "a"
    with ArtifactWriter(out, "run", {"k": 3}, overwrite=True) as writer:
        (writer.dir / "run.trec").write_text("third")
    assert (out / "run.trec").read_text() == "third"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a"]
