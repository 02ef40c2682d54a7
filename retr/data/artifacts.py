"""On-disk artifacts: a directory plus a ``manifest.json`` written last, atomically (DESIGN.md).

A stage writes into ``<out>.tmp-<pid>/`` through :class:`ArtifactWriter`, which on success checksums every file,
writes the manifest and renames the directory into place. A directory without a manifest is incomplete and is
refused by :func:`open_artifact`.

Nothing the user made is replaced: :func:`check_output` refuses an ``--out`` that is a file, the working directory,
a folder that is not an artifact, or (without ``--overwrite``) an existing artifact; ``--overwrite`` only ever
replaces a folder holding a manifest. One writer per output: ``<out>.retr-lock`` is held with ``fcntl.flock`` for
the whole stage (the kernel drops it when a process dies, so a stale lock is simply taken over). Our tmp dirs carry
a marker file, so a user folder that merely looks like one (``foo.tmp-999999/``) is never adopted or deleted.

Resumable stages (training, dense encoding) keep their tmp dir when they fail internally or are killed: a new writer
for the same output, config and inputs adopts the tmp dir of a dead process (``resume``). Every other failure, and
every user error (:class:`RetrError`), removes the tmp dir the stage created and nothing else.

Readers check the files they use against the manifest where they use them (:meth:`Artifact.verify`); hashes are
cached by (path, size, mtime, ctime, inode), so a large index is hashed once, and manifest paths must stay inside
their artifact.
"""

from __future__ import annotations

import errno
import fcntl
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

from retr.data.errors import ArtifactError, RetrError

MANIFEST = "manifest.json"
SCHEMA = 1
PARTIAL_STAMP = ".retr-partial.json"  # the marker of our tmp dirs: a folder without it is never adopted or deleted
LOCK_SUFFIX = ".retr-lock"
RESUMABLE_KINDS = ("model", "dense-index", "dense-shard")  # stages that checkpoint inside their tmp dir


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
    """Move ``source`` to ``target``, swapping out an existing ``target`` folder (there is never no ``target`` once
    one existed). The old folder passes through a unique trash name and is removed; callers decide that
    ``target`` may be replaced (:func:`check_output`)."""
    if target.is_dir() and not target.is_symlink():
        trash = target.parent / f"{target.name}.old-{os.getpid()}-{time.monotonic_ns()}"
        os.replace(target, trash)
        try:
            os.replace(source, target)
        except OSError:
            os.replace(trash, target)
            raise
        shutil.rmtree(trash, ignore_errors=True)
    else:
        os.replace(source, target)


def config_dict(config: Any) -> dict[str, Any]:
    """A stage config dataclass as the manifest records it: every field, paths as strings."""
    import dataclasses

    return {k: (str(v) if isinstance(v, Path) else v) for k, v in dataclasses.asdict(config).items()}


def peak_rss_mib() -> float:
    """Peak resident memory of this process so far, in MiB (Linux reports KiB). One CLI command is one process,
    so this is the stage's peak; stages chained in one ``retr run`` process report the peak up to their end."""
    import resource

    return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)


def sha256_json(value: Any) -> str:
    return hashlib.sha256(json.dumps(value, sort_keys=True, default=str).encode()).hexdigest()


def retr_home() -> Path:
    """``$RETR_HOME``, else ``~/.cache/retr``: caches that can be deleted at any time."""
    return Path(os.environ.get("RETR_HOME") or Path.home() / ".cache" / "retr")


def cached_sha256(path: Path) -> str:
    """sha256 of a file, cached by (path, size, mtime, ctime, inode) so that multi-GB files are hashed once.

    Any write changes the ctime (which no user tool can set back), so a byte flipped in place is noticed even when
    the mtime is restored."""
    stat = path.stat()
    cache_dir = retr_home() / "fingerprints"
    key = sha256_json([str(path.resolve()), stat.st_size, stat.st_mtime_ns, stat.st_ctime_ns, stat.st_ino])
    cached = cache_dir / key
    try:
        digest = cached.read_text().strip()
        if len(digest) == 64:
            return digest
    except OSError:
        pass
    digest = sha256_file(path)
    try:
        cache_dir.mkdir(parents=True, exist_ok=True)
        atomic_write_text(cached, digest)
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

    def contained(self, name: str) -> Path:
        """``name`` (a manifest output path) under the artifact; refuses paths that leave it (``..``, absolute,
        or a symlink pointing out)."""
        if not isinstance(name, str) or not name or Path(name).is_absolute() or ".." in Path(name).parts:
            raise ArtifactError(f"{self.path}: manifest lists output {name!r} outside the artifact; "
                                "the manifest was altered, rebuild the artifact")
        root = self.path.resolve()
        target = (self.path / name).resolve()
        if target != root and root not in target.parents:
            raise ArtifactError(f"{self.path}: output {name!r} resolves outside the artifact ({target}); "
                                "rebuild the artifact")
        return self.path / name

    def as_input(self) -> dict[str, Any]:
        return {"kind": self.kind, "path": str(self.path.resolve()), "sha256": self.sha256}

    def outputs(self) -> list[dict[str, Any]]:
        """The manifest's output entries, each path checked to stay inside the artifact."""
        entries = self.manifest.get("outputs", [])
        if not isinstance(entries, list) or not all(isinstance(e, dict) for e in entries):
            raise ArtifactError(f"{self.path}: manifest 'outputs' is not a list of entries; rebuild the artifact")
        for entry in entries:
            self.contained(entry.get("path"))
        return entries

    def verify(self, names: Iterable[str] | None = None, under: str | None = None, cached: bool = True) -> int:
        """Check size and sha256 of the listed outputs (``names``; or those below the folder ``under``; all when
        both are None); returns how many were checked. ``cached`` reuses hashes keyed by (path, size, mtime,
        ctime, inode), so a large index is hashed once and not on every search; ``cached=False`` rehashes.

        With ``under``, a file in that folder that the manifest does not list is refused too (a loader such as
        Lucene or transformers may pick up an added file), and so is a folder the manifest lists nothing in."""
        wanted = None if names is None else set(names)
        prefix = None if under is None else under.rstrip("/") + "/"
        if prefix is not None:
            listed = {entry["path"] for entry in self.outputs() if entry["path"].startswith(prefix)}
            folder = self.contained(prefix.rstrip("/"))
            present = {p.relative_to(self.path).as_posix() for p in folder.rglob("*") if p.is_file()}
            extra = sorted(present - listed)
            if extra:
                raise ArtifactError(f"{self.path / extra[0]}: not listed in the manifest (the artifact was modified); "
                                    "remove that file or re-run the stage that made the artifact")
            if not listed:
                raise ArtifactError(f"{self.path}: manifest lists no files under {prefix}; re-run the stage that "
                                    "made the artifact")
        checked = 0
        for entry in self.outputs():
            path = entry["path"]
            if wanted is not None and path not in wanted:
                continue
            if prefix is not None and not path.startswith(prefix):
                continue
            target = self.path / path
            if not target.is_file():
                raise ArtifactError(f"{self.path}: output {path} is missing; re-run the stage that made it")
            digest = cached_sha256(target) if cached else sha256_file(target)
            if target.stat().st_size != entry.get("bytes") or digest != entry.get("sha256"):
                raise ArtifactError(
                    f"{target}: does not match its manifest checksum (modified or corrupt); "
                    "re-run the stage that made it"
                )
            checked += 1
        if wanted is not None and checked < len(wanted):
            listed = {entry["path"] for entry in self.outputs()}
            missing = sorted(wanted - listed)
            raise ArtifactError(f"{self.path}: manifest lists no {', '.join(missing)}; rebuild the artifact")
        return checked


def open_artifact(path: str | Path, kind: str | tuple[str, ...] | None = None, verify: bool = False) -> Artifact:
    """Open a complete artifact, refusing incomplete directories and artifacts of another kind."""
    path = Path(path)
    if not path.exists():
        raise ArtifactError(f"{path}: no such artifact")
    manifest_path = path / MANIFEST
    if not manifest_path.is_file():
        raise ArtifactError(f"{path}: no {MANIFEST}, so the stage that writes it did not finish; re-run that stage")
    try:
        manifest = json.loads(manifest_path.read_text(encoding="utf-8"))
    except ValueError as error:  # malformed JSON or bytes that are not UTF-8
        raise ArtifactError(f"{manifest_path}: not valid JSON ({error}); re-run the stage that made it") from None
    if not isinstance(manifest, dict):
        raise ArtifactError(f"{manifest_path}: not a manifest (expected a JSON object); re-run the stage that made it")
    if manifest.get("schema") != SCHEMA:
        raise ArtifactError(f"{path}: manifest schema {manifest.get('schema')!r}, this retr reads schema {SCHEMA}")
    kinds = (kind,) if isinstance(kind, str) else kind
    if kinds and manifest.get("kind") not in kinds:
        raise ArtifactError(f"{path}: is a {manifest.get('kind')!r} artifact, expected {' or '.join(kinds)}")
    artifact = Artifact(path, manifest)
    artifact.outputs()  # paths stay inside the artifact
    if verify:
        artifact.verify(cached=False)
    return artifact


def _manifest_kind(path: Path) -> str | None:
    """The kind named by ``path``'s manifest, or None when it has no readable manifest."""
    try:
        manifest = json.loads((path / MANIFEST).read_text())
    except (OSError, ValueError):
        return None
    return manifest.get("kind") if isinstance(manifest, dict) else None


def check_output(out: str | Path, kind: str, overwrite: bool = False) -> Path:
    """Refuse an ``--out`` that the stage may not write, before any work (and again under the lock).

    Allowed: a new path; an empty folder; with ``overwrite``, a folder holding a manifest (an artifact). Refused:
    the working directory or one of its parents, a file, a link, a folder that is not an artifact (even with
    ``overwrite``), and an existing artifact without ``overwrite``."""
    out = Path(out)
    resolved = out.resolve()
    cwd = Path.cwd().resolve()
    if out.name in ("", ".", "..") or resolved == cwd or resolved in cwd.parents:
        raise ArtifactError(f"--out {out}: is the current directory or one of its parents; name a new folder")
    for parent in resolved.parents:
        if parent.exists():
            if not parent.is_dir():
                raise ArtifactError(f"--out {out}: {parent} is a file, not a folder; choose another --out")
            break
    if out.is_symlink():
        raise ArtifactError(f"--out {out}: is a symbolic link; name a new folder")
    if not out.exists():
        return out
    if not out.is_dir():
        raise ArtifactError(f"--out {out}: is an existing file, not an artifact folder; choose another --out")
    existing = _manifest_kind(out)
    if existing is None:
        if not any(out.iterdir()):
            return out  # an empty folder: replacing it loses nothing
        raise ArtifactError(f"--out {out}: is a folder that is not a retr artifact (no {MANIFEST}); --overwrite only "
                            "replaces artifacts, so choose another --out")
    if not overwrite:
        other = "" if existing == kind else f" (a {existing!r} artifact, this stage writes {kind!r})"
        raise ArtifactError(f"--out {out}: already exists{other}; pass --overwrite or choose another output")
    return out


class OutputLock:
    """``<out>.retr-lock``, held with ``fcntl.flock`` while a stage writes ``out``: one writer per output.

    The kernel releases the lock when its process dies, so a stale lock file is simply taken over. The file is
    removed on release; a waiter that locked a removed file notices (inode changed) and retries."""

    def __init__(self, out: Path) -> None:
        self.path = out.parent / f"{out.name}{LOCK_SUFFIX}"
        self.fd: int | None = None

    def acquire(self, out: Path) -> None:
        for _ in range(100):
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError as error:
                os.close(fd)
                if error.errno not in (errno.EAGAIN, errno.EACCES):
                    raise
                holder = self._holder()
                raise ArtifactError(f"--out {out}: another retr process{holder} is writing it; wait for it to "
                                    "finish or choose another --out") from None
            try:
                same = os.fstat(fd).st_ino == os.stat(self.path).st_ino
            except FileNotFoundError:
                same = False
            if same:
                os.ftruncate(fd, 0)
                os.write(fd, f"{os.getpid()}\n".encode())
                self.fd = fd
                return
            os.close(fd)  # the holder removed this file as we locked it: lock the new one
        raise ArtifactError(f"--out {out}: could not take {self.path}; remove it if no retr process is running")

    def _holder(self) -> str:
        try:
            pid = self.path.read_text().strip()
        except OSError:
            return ""
        return f" (pid {pid})" if pid.isdigit() else ""

    def release(self) -> None:
        if self.fd is None:
            return
        try:
            self.path.unlink(missing_ok=True)
        finally:
            os.close(self.fd)
            self.fd = None


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

    ``with ArtifactWriter(out, "run", config, inputs) as w: ...write files under w.dir...``. Entering checks ``out``
    (:func:`check_output`) and takes its lock; nothing is created before both pass. On an exception nothing is
    published; the tmp dir is kept only for a resumable stage that failed internally or was interrupted (a later run
    with the same config and inputs resumes from it), else removed. ``w.metrics`` and ``w.timing`` go into the
    manifest; ``w.resumed`` tells whether a dead run's tmp dir was adopted.
    """

    out: Path
    kind: str
    config: dict[str, Any]
    inputs: list[Artifact | dict[str, Any]] = field(default_factory=list)
    overwrite: bool = False
    metrics: dict[str, Any] = field(default_factory=dict)
    timing: dict[str, Any] = field(default_factory=dict)
    extra: dict[str, Any] = field(default_factory=dict)
    resumable: bool | None = None  # None: the kinds in RESUMABLE_KINDS

    def __post_init__(self) -> None:
        self.out = Path(self.out)
        self.dir = self.out.parent / f"{self.out.name}.tmp-{os.getpid()}"
        self.resumed = False
        if self.resumable is None:
            self.resumable = self.kind in RESUMABLE_KINDS
        self._input_records = [i.as_input() if isinstance(i, Artifact) else dict(i) for i in self.inputs]
        self._stamp = {"kind": self.kind, "config": self.config, "inputs": self._input_records}
        self._lock = OutputLock(self.out)
        self._created = False

    def __enter__(self) -> "ArtifactWriter":
        check_output(self.out, self.kind, self.overwrite)
        self.out.parent.mkdir(parents=True, exist_ok=True)
        self._lock.acquire(self.out)
        try:
            check_output(self.out, self.kind, self.overwrite)  # another writer may have published meanwhile
            self._adopt_or_create()
        except BaseException:
            self._lock.release()
            raise
        self._start = time.perf_counter()
        return self

    def _adopt_or_create(self) -> None:
        stamp = sha256_json(self._stamp)
        if self.dir.exists() and not (self.dir / PARTIAL_STAMP).is_file():
            raise ArtifactError(f"{self.dir}: exists and was not made by retr; move it away or choose another --out")
        for candidate in sorted(self.out.parent.glob(f"{self.out.name}.tmp-*")):
            pid = candidate.name.rsplit("-", 1)[-1]
            if not pid.isdigit() or not candidate.is_dir() or candidate.is_symlink():
                continue
            if candidate != self.dir and _is_alive(int(pid)):
                continue
            try:
                previous = json.loads((candidate / PARTIAL_STAMP).read_text())
            except (OSError, ValueError):
                continue  # no marker: not ours (a user folder that looks like a tmp dir), never touched
            if previous == stamp and self.resumable and not self.resumed:
                if candidate != self.dir:
                    candidate.rename(self.dir)
                self.resumed = True
                continue
            shutil.rmtree(candidate)  # a dead run of another config (we hold the lock): its partial work is of no use
        if not self.resumed:
            self.dir.mkdir()
            (self.dir / PARTIAL_STAMP).write_text(json.dumps(stamp))
        self._created = True

    def __exit__(self, exc_type, exc, tb) -> None:
        try:
            if exc_type is not None:
                internal = not issubclass(exc_type, RetrError)
                if not (self.resumable and internal) and self._created:
                    shutil.rmtree(self.dir, ignore_errors=True)  # nothing in it is worth keeping
                return
            self._publish()
        except BaseException:
            if self._created and self.dir.exists() and not self.resumable:
                shutil.rmtree(self.dir, ignore_errors=True)
            raise
        finally:
            self._lock.release()

    def _publish(self) -> None:
        elapsed = time.perf_counter() - self._start
        self.timing.setdefault("seconds", round(elapsed, 3))
        self.timing.setdefault("peak_rss_mib", peak_rss_mib())
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
        check_output(self.out, self.kind, self.overwrite)  # still only an artifact or nothing (we hold the lock)
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
