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


def open_qrels(qrels: str | None, dataset: str | None, split: str | None, runs: list[RunSource]) -> QrelsSource:
    """Qrels from a TREC/BEIR qrels file, else a dataset spec's split, else the dataset the first run was searched on."""
    if qrels and Path(qrels).is_file():
        path = Path(qrels)
        record = {"kind": "qrels", "path": str(path.resolve()), "sha256": sha256_file(path)}
        return QrelsSource(read_qrels(path), record, str(path), None)
    spec = qrels or dataset
    lineage = next((run.dataset for run in runs if run.dataset), None)
    if spec is None and lineage is not None:
        spec = lineage.get("path")
        split = split or lineage.get("split")
    if spec is None:
        raise DataError("no qrels: pass --qrels (a qrels file or dataset) or --dataset; plain run files name no dataset")
    split = split or "test"
    data = Dataset(spec)
    return QrelsSource(data.qrels(split), data.as_input(split), spec, split)
