"""On-disk artifacts: a directory plus a ``manifest.json`` written last, atomically (DESIGN.md).

A stage writes into ``<out>.tmp-<pid>/`` through :class:`ArtifactWriter`, which on success checksums every file,
writes the manifest and renames the directory into place. A directory without a manifest is incomplete and is
refused by :func:`open_artifact`. Long stages keep checkpoints inside the tmp dir: a new writer for the same
output, config and inputs adopts the tmp dir of a dead process (``resume``), so work is neither lost nor repeated.
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import json
import os
import platform
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Iterable

from retr.data.errors import ArtifactError

MANIFEST = "manifest.json"
SCHEMA = 1
PARTIAL_STAMP = ".retr-partial.json"


def sha256_file(path: Path, chunk: int = 1 << 20) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while block := handle.read(chunk):
            digest.update(block)
    return digest.hexdigest()


def atomic_write_text(path: Path, text: str) -> None:
    """Write through a sibling .part file and rename: readers see the old file or the whole new one."""
    tmp = path.with_name(path.name + ".part")
    tmp.write_text(text)
    os.replace(tmp, path)


def replace_dir(source: Path, target: Path) -> None:
    """Move ``source`` to ``target``, swapping out an existing ``target`` (there is never no ``target`` once one existed)."""
    if target.exists():
        trash = target.parent / f"{target.name}.old-{os.getpid()}"
        os.replace(target, trash)
        os.replace(source, target)
        shutil.rmtree(trash)
    else:
        os.replace(source, target)


def config_dict(config: Any) -> dict[str, Any]:
    """A stage config dataclass as the manifest records it: every field, paths as strings."""
    import dataclasses

    return {k: (str(v) if isinstance(v, Path) else v) for k, v in dataclasses.asdict(config).items()}


def sha256_json(value: Any) -> str:
    return hashlib.sha256(json.dumps(value, sort_keys=True, default=str).encode()).hexdigest()


def cached_sha256(path: Path) -> str:
    """sha256 of a file, cached by (path, size, mtime) so that multi-GB corpora are hashed once."""
    stat = path.stat()
    cache_dir = Path(os.environ.get("RETR_HOME", Path.home() / ".cache" / "retr")) / "fingerprints"
    key = sha256_json([str(path.resolve()), stat.st_size, stat.st_mtime_ns])
    cached = cache_dir / key
    if cached.is_file():
        return cached.read_text().strip()
    digest = sha256_file(path)
    try:
        cache_dir.mkdir(parents=True, exist_ok=True)
        cached.write_text(digest)
    except OSError:
        pass
    return digest


@dataclass(frozen=True)
class Artifact:
    """A complete artifact directory and its parsed manifest."""

    path: Path
    manifest: dict[str, Any]

    @property
    def kind(self) -> str:
        return self.manifest["kind"]

    @property
    def config(self) -> dict[str, Any]:
        return self.manifest.get("config", {})

    @property
    def sha256(self) -> str:
        """The manifest hash: what downstream artifacts record as this input's identity."""
        return sha256_file(self.path / MANIFEST)

    def file(self, name: str) -> Path:
        return self.path / name

    def as_input(self) -> dict[str, Any]:
        return {"kind": self.kind, "path": str(self.path.resolve()), "sha256": self.sha256}

    def verify(self, names: Iterable[str] | None = None) -> None:
        """Check the size and sha256 of the listed outputs (all of them when ``names`` is None)."""
        wanted = None if names is None else set(names)
        for entry in self.manifest.get("outputs", []):
            if wanted is not None and entry["path"] not in wanted:
                continue
            target = self.path / entry["path"]
            if not target.is_file():
                raise ArtifactError(f"{self.path}: output {entry['path']} is missing; re-run the stage that made it")
            if target.stat().st_size != entry["bytes"] or sha256_file(target) != entry["sha256"]:
                raise ArtifactError(
                    f"{self.path}: {entry['path']} does not match its manifest checksum (modified or corrupt); "
                    "re-run the stage that made it"
                )


def open_artifact(path: str | Path, kind: str | tuple[str, ...] | None = None, verify: bool = False) -> Artifact:
    """Open a complete artifact, refusing incomplete directories and artifacts of another kind."""
    path = Path(path)
    if not path.exists():
        raise ArtifactError(f"{path}: no such artifact")
    manifest_path = path / MANIFEST
    if not manifest_path.is_file():
        raise ArtifactError(f"{path}: no {MANIFEST}, so the stage that writes it did not finish; re-run that stage")
    try:
        manifest = json.loads(manifest_path.read_text())
    except json.JSONDecodeError as error:
        raise ArtifactError(f"{manifest_path}: not valid JSON ({error}); re-run the stage that made it") from None
    if manifest.get("schema") != SCHEMA:
        raise ArtifactError(f"{path}: manifest schema {manifest.get('schema')!r}, this retr reads schema {SCHEMA}")
    kinds = (kind,) if isinstance(kind, str) else kind
    if kinds and manifest.get("kind") not in kinds:
        raise ArtifactError(f"{path}: is a {manifest.get('kind')!r} artifact, expected {' or '.join(kinds)}")
    artifact = Artifact(path, manifest)
    if verify:
        artifact.verify()
    return artifact


def _git_commit() -> str | None:
    try:
        out = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=Path(__file__).parent, capture_output=True, text=True, timeout=5
        )
    except (OSError, subprocess.SubprocessError):
        return None
    if out.returncode != 0:
        return None
    return out.stdout.strip() or None


def environment() -> dict[str, Any]:
    """Versions of the parts that decide the numbers; only modules already imported are asked (no import cost)."""
    env: dict[str, Any] = {"python": platform.python_version(), "platform": platform.platform()}
    distributions = {"faiss": "faiss-cpu"}
    for name in ("torch", "transformers", "faiss", "pyserini", "peft", "ranx", "mteb", "numpy"):
        module = sys.modules.get(name)
        if module is not None:
            env[name] = getattr(module, "__version__", None) or _distribution_version(distributions.get(name, name))
    torch = sys.modules.get("torch")
    env["device"] = "cuda" if torch is not None and torch.cuda.is_available() else "cpu"
    return env


def _distribution_version(name: str) -> str:
    try:
        return importlib.metadata.version(name)
    except importlib.metadata.PackageNotFoundError:
        return "unknown"


def _is_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


@dataclass
class ArtifactWriter:
    """Context manager that builds an artifact in a tmp dir and publishes it atomically.

    ``with ArtifactWriter(out, "run", config, inputs) as w: ...write files under w.dir...``. On an exception the
    tmp dir is kept (a later run with the same config and inputs resumes from it) and nothing is published.
    ``w.metrics`` and ``w.timing`` go into the manifest; ``w.resumed`` tells whether a dead run's tmp dir was adopted.
    """

    out: Path
    kind: str
    config: dict[str, Any]
    inputs: list[Artifact | dict[str, Any]] = field(default_factory=list)
    overwrite: bool = False
    metrics: dict[str, Any] = field(default_factory=dict)
    timing: dict[str, Any] = field(default_factory=dict)
    extra: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.out = Path(self.out)
        self.dir = self.out.parent / f"{self.out.name}.tmp-{os.getpid()}"
        self.resumed = False
        self._input_records = [i.as_input() if isinstance(i, Artifact) else dict(i) for i in self.inputs]
        self._stamp = {"kind": self.kind, "config": self.config, "inputs": self._input_records}

    def __enter__(self) -> "ArtifactWriter":
        if (self.out / MANIFEST).exists() and not self.overwrite:
            raise ArtifactError(f"{self.out}: already exists; pass --overwrite or choose another output")
        self.out.parent.mkdir(parents=True, exist_ok=True)
        self._adopt_or_create()
        self._start = time.perf_counter()
        return self

    def _adopt_or_create(self) -> None:
        stamp = sha256_json(self._stamp)
        for candidate in sorted(self.out.parent.glob(f"{self.out.name}.tmp-*")):
            pid = candidate.name.rsplit("-", 1)[-1]
            if candidate == self.dir or not pid.isdigit() or _is_alive(int(pid)):
                continue
            try:
                previous = json.loads((candidate / PARTIAL_STAMP).read_text())
            except (OSError, json.JSONDecodeError):
                previous = None
            if previous == stamp:
                candidate.rename(self.dir)
                self.resumed = True
                return
            shutil.rmtree(candidate)  # a dead run of another config: its partial work is of no use
        self.dir.mkdir(exist_ok=True)
        (self.dir / PARTIAL_STAMP).write_text(json.dumps(stamp))

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc_type is not None:
            return  # keep the tmp dir for resume; nothing is published
        elapsed = time.perf_counter() - self._start
        self.timing.setdefault("seconds", round(elapsed, 3))
        (self.dir / PARTIAL_STAMP).unlink(missing_ok=True)
        outputs = []
        for file in sorted(p for p in self.dir.rglob("*") if p.is_file() and p.name != MANIFEST):
            rel = file.relative_to(self.dir).as_posix()
            outputs.append({"path": rel, "bytes": file.stat().st_size, "sha256": sha256_file(file)})
        from retr import __version__

        manifest = {
            "kind": self.kind,
            "schema": SCHEMA,
            "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
            "retr_version": __version__,
            "git_commit": _git_commit(),
            "config": self.config,
            "inputs": self._input_records,
            "outputs": outputs,
            "env": environment(),
            "metrics": self.metrics,
            "timing": self.timing,
            **self.extra,
        }
        atomic_write_text(self.dir / MANIFEST, json.dumps(manifest, indent=2, default=str) + "\n")
        replace_dir(self.dir, self.out)


def lineage(artifact: Artifact, depth: int = 0, seen: set[str] | None = None) -> list[str]:
    """Lines of an indented tree: the artifact, then each input recursively (marking stale hashes)."""
    seen = set() if seen is None else seen
    lines = [f"{'  ' * depth}{artifact.kind}  {artifact.path}  ({artifact.sha256[:12]})"]
    key = str(artifact.path.resolve())
    if key in seen:
        return lines
    seen.add(key)
    for record in artifact.manifest.get("inputs", []):
        pad = "  " * (depth + 1)
        path = Path(record.get("path", ""))
        if (path / MANIFEST).is_file():
            child = open_artifact(path)
            if record.get("sha256") and child.sha256 != record["sha256"]:
                lines.append(f"{pad}{record['kind']}  {path}  (CHANGED since use: recorded {record['sha256'][:12]})")
            else:
                lines.extend(lineage(child, depth + 1, seen))
        else:
            note = record.get("sha256", "")[:12]
            lines.append(f"{pad}{record.get('kind', '?')}  {record.get('path', record.get('id', '?'))}  ({note})")
    return lines


def require_lineage(artifact: Artifact, record: dict[str, Any], what: str) -> None:
    """Refuse when ``artifact`` is not the one that ``record`` (an input entry of another manifest) names."""
    if record.get("sha256") != artifact.sha256:
        raise ArtifactError(
            f"{artifact.path}: is not the {what} recorded in the manifest ({record.get('path')}, "
            f"{str(record.get('sha256'))[:12]}); use that {what} or rebuild"
        )
