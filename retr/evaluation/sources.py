"""What ``retr score`` reads: run artifacts or plain TREC run files, and qrels, each with its manifest record."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from retr.data.artifacts import MANIFEST, ArtifactError, open_artifact, sha256_file
from retr.data.datasets import Dataset
from retr.data.errors import DataError
from retr.data.trec import Qrels, Run, read_qrels, read_run

RUN_FILE = "run.trec"


@dataclass
class RunSource:
    """One run to score: where its TREC file is, its lineage record, and the dataset it was searched on."""

    name: str
    file: Path
    record: dict[str, Any]
    dataset: dict[str, Any] | None = None

    def load(self) -> Run:
        return read_run(self.file)


def _artifact_kind(directory: Path) -> str | None:
    try:
        return json.loads((directory / MANIFEST).read_text()).get("kind")
    except (OSError, json.JSONDecodeError):
        return None


def open_run(spec: str | Path) -> RunSource:
    """A "run" artifact dir (or its run.trec) -> the artifact's record; any other file -> a record with its sha256."""
    path = Path(spec)
    if not path.exists():
        raise DataError(f"{path}: no such run artifact or TREC run file")
    if path.is_file() and path.name == RUN_FILE and _artifact_kind(path.parent) == "run":
        path = path.parent
    if path.is_dir():
        artifact = open_artifact(path, kind="run")
        if not (path / RUN_FILE).is_file():
            raise ArtifactError(f"{path}: run artifact without {RUN_FILE}; re-run `retr search`")
        artifact.verify([RUN_FILE])
        dataset = next((r for r in artifact.manifest.get("inputs", []) if r.get("kind") == "dataset"), None)
        return RunSource(path.resolve().name, path / RUN_FILE, artifact.as_input(), dataset)
    name = path.parent.resolve().name if path.name == RUN_FILE else re.sub(r"\.(trec|txt|run|tsv)$", "", path.name)
    record = {"kind": "run-file", "path": str(path.resolve()), "sha256": sha256_file(path)}
    return RunSource(name, path, record)


def name_runs(sources: list[RunSource], names: list[str] | None) -> list[RunSource]:
    """Apply ``--name`` labels (one per run) and refuse two runs with one name."""
    if names:
        if len(names) != len(sources):
            raise DataError(f"--name given {len(names)} time(s) for {len(sources)} run(s); give one name per run")
        for source, name in zip(sources, names):
            source.name = name
    seen: dict[str, int] = {}
    for source in sources:
        seen[source.name] = seen.get(source.name, 0) + 1
    dupes = sorted(n for n, count in seen.items() if count > 1)
    if dupes:
        raise DataError(f"two or more runs are named {', '.join(dupes)}; name them apart with --name")
    return sources


@dataclass
class QrelsSource:
    qrels: Qrels
    record: dict[str, Any]
    source: str  # what the report shows, and what the default relevance level is read from
    split: str | None
    file: Path | None = None  # the qrels file read (None: a source without one, e.g. ir_datasets)


def open_qrels(qrels: str | None, dataset: str | None, split: str | None, runs: list[RunSource]) -> QrelsSource:
    """Qrels from a TREC/BEIR qrels file, else a dataset spec's split, else the dataset the first run was searched on."""
    if qrels and Path(qrels).is_file():
        path = Path(qrels)
        record = {"kind": "qrels", "path": str(path.resolve()), "sha256": sha256_file(path)}
        return QrelsSource(read_qrels(path), record, str(path), None, path)
    spec = qrels or dataset
    lineage = next((run.dataset for run in runs if run.dataset), None)
    if spec is None and lineage is not None:
        spec = lineage.get("path")
        split = split or lineage.get("split")
    if spec is None:
        raise DataError("no qrels: pass --qrels (a qrels file or dataset) or --dataset; plain run files name no dataset")
    split = split or "test"
    data = Dataset(spec)
    return QrelsSource(data.qrels(split), data.as_input(split), spec, split, data.qrels_path(split))


def _searched_qrels(run: RunSource) -> tuple[Path, str] | None:
    """The qrels file the run's queries were chosen with at search time and its sha256 then (None: not recorded,
    e.g. a plain run file, a search over every query, or a dataset no longer there)."""
    record = run.dataset or {}
    if not record.get("split") or not record.get("path"):
        return None
    try:
        path = Dataset(record["path"]).qrels_path(record["split"])
    except DataError:
        return None
    digest = (record.get("files") or {}).get(path.name) if path is not None else None
    return (path, digest) if digest else None


def check_qrels(runs: list[RunSource], qrels: QrelsSource, allow_changed: bool) -> dict[str, str]:
    """Each run's qrels status: 'unchanged', 'changed' (the file the run was searched with was edited since),
    'other' (scored against another qrels file, as asked) or 'unrecorded'. A changed file is refused unless
    ``allow_changed``: the run's queries were picked by the old judgments, so its scores would mix two versions."""
    status: dict[str, str] = {}
    current = sha256_file(qrels.file) if qrels.file is not None else None
    for run in runs:
        searched = _searched_qrels(run)
        if searched is None or qrels.file is None:
            status[run.name] = "unrecorded"
        elif current == searched[1]:
            status[run.name] = "unchanged"
        elif searched[0].resolve() != qrels.file.resolve():
            status[run.name] = "other"
        else:
            status[run.name] = "changed"
            if not allow_changed:
                raise DataError(
                    f"{qrels.file}: changed since run {run.name} was searched (sha256 {searched[1][:12]} then, "
                    f"{current[:12]} now); re-run `retr search`, or pass --allow-changed-qrels to score against "
                    "the qrels as they are now"
                )
    return status
