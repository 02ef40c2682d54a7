"""issue 9: one shared dependency environment, many clones. Each clone's tests and commands import that clone's
``retr`` (set-up in another clone must not re-point them), and a second set-up installs nothing."""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

import retr
from tests.reliability.conftest import REPO

MARKER = REPO / ".venv" / "retr-setup"  # written by scripts/setup.sh: the shared environment .venv layers on


def _imported_from(python: Path, cwd: Path) -> Path:
    """Where ``python`` imports retr from when started in ``cwd`` with no PYTHONPATH."""
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    done = subprocess.run([str(python), "-c", "import retr; print(retr.__file__)"], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    return Path(done.stdout.strip()).resolve()


def _shared_env() -> Path:
    """The shared environment this clone's set-up used, when it is the one set-up would pick now (else skip)."""
    if not MARKER.is_file():
        pytest.skip("tests not run from a .venv made by scripts/setup.sh")
    shared = Path(MARKER.read_text().strip())
    digest = hashlib.sha256((REPO / "requirements.txt").read_bytes() + f"{sys.version}\n".encode()).hexdigest()
    if shared.name != f"venv-{digest[:16]}" or not (shared / ".complete").is_file():
        pytest.skip("set-up is stale (requirements or Python changed): re-run scripts/setup.sh")
    return shared


def test_tests_import_this_clone() -> None:
    assert Path(retr.__file__).resolve().is_relative_to(REPO.resolve()), retr.__file__


def test_clone_python_imports_its_clone_from_any_directory(tmp_path: Path) -> None:
    _shared_env()
    assert _imported_from(REPO / ".venv" / "bin" / "python", tmp_path).is_relative_to(REPO.resolve())


def test_setting_up_another_clone_leaves_this_one_alone(tmp_path: Path) -> None:
    shared = _shared_env()
    clone = tmp_path / "clone"
    for part in ("retr", "scripts"):
        shutil.copytree(REPO / part, clone / part, ignore=shutil.ignore_patterns("__pycache__"))
    for part in ("requirements.txt", "requirements-nodeps.txt", "pyproject.toml"):
        shutil.copy2(REPO / part, clone / part)
    env = {**{k: v for k, v in os.environ.items() if k != "PYTHONPATH"}, "RETR_HOME": str(shared.parent),
           "PYTHON": sys._base_executable}

    def setup() -> subprocess.CompletedProcess:
        return subprocess.run(["bash", "scripts/setup.sh"], cwd=clone, env=env, capture_output=True, text=True,
                              timeout=300)

    (clone / ".venv" / "mine").mkdir(parents=True)  # a .venv set-up did not make: refused, left as it was
    refused = setup()
    assert refused.returncode == 1 and "not made by scripts/setup.sh" in refused.stderr, refused.stderr
    assert (clone / ".venv" / "mine").is_dir()
    shutil.rmtree(clone / ".venv")
    (tmp_path / "elsewhere").mkdir()  # the old layout: .venv a link; only the link is replaced
    (tmp_path / "elsewhere" / "keep").write_text("x")
    (clone / ".venv").symlink_to(tmp_path / "elsewhere")

    for _ in range(2):
        done = setup()
        assert done.returncode == 0, done.stderr
        assert "creating" not in done.stderr, "the cached dependencies were installed again"
    assert (tmp_path / "elsewhere" / "keep").read_text() == "x"
    assert not (clone / ".venv").is_symlink()

    python = clone / ".venv" / "bin" / "python"
    assert _imported_from(python, tmp_path).is_relative_to(clone.resolve())
    assert _imported_from(REPO / ".venv" / "bin" / "python", tmp_path).is_relative_to(REPO.resolve())
    help_ = subprocess.run([str(python), "-m", "retr", "--help"], cwd=clone, env=env, capture_output=True,
                           text=True, timeout=120)
    assert help_.returncode == 0 and "mine" in help_.stdout, help_.stderr
    script = subprocess.run([str(clone / ".venv" / "bin" / "retr"), "--help"], cwd=tmp_path, env=env,
                            capture_output=True, text=True, timeout=120)
    assert script.returncode == 0 and "mine" in script.stdout, script.stderr
