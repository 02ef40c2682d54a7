"""`retr run CONFIG`: chain stages from a YAML pipeline, each stage's output kept as an artifact.

```yaml
workdir: runs/demo-cpu            # stage outputs go to <workdir>/<stage name>
stages:
  - name: mine                    # unique; later stages refer to its artifact as "@mine"
    stage: mine                   # subset | mine | train | index | search | score
    with: {dataset: scifact, split: train}
```

A stage is skipped (and says so) when its artifact exists and its stamp ``<workdir>/<name>.stage.json`` matches
the resolved config, the manifest hashes of the artifacts it reads, and the artifact's own manifest hash. So a
changed option re-runs that stage, which gives it a new manifest hash, which re-runs everything downstream.
``--from NAME`` forces NAME and every later stage to re-run.
"""

from __future__ import annotations

import dataclasses
import importlib
import json
import re
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

from retr.data.artifacts import ArtifactError, MANIFEST, config_dict, open_artifact, sha256_json

# stage -> (module, config class, entry point); imported only when the stage runs.
STAGES: dict[str, tuple[str, str, str]] = {
    "subset": ("retr.data.subset", "SubsetConfig", "make_subset"),
    "mine": ("retr.training.mining", "MineConfig", "mine"),
    "train": ("retr.training.train", "TrainConfig", "train"),
    "index": ("retr.indexing.dense", "IndexConfig", "build_index"),
    "bm25-index": ("retr.indexing.bm25", "BM25IndexConfig", "build_bm25_index"),
    "search": ("retr.retrieval.search", "SearchConfig", "search"),
    "score": ("retr.evaluation.report", "ScoreConfig", "score"),
}
REF = re.compile(r"^@([\w.-]+)$")


@dataclass
class StageSpec:
    name: str
    stage: str
    options: dict[str, Any]


@dataclass
class Pipeline:
    workdir: Path
    stages: list[StageSpec]
    budget: dict[str, Any]

    @classmethod
    def load(cls, path: Path, workdir: Path | None = None) -> "Pipeline":
        import yaml

        spec = yaml.safe_load(Path(path).read_text()) or {}
        stages, names = [], set()
        for index, entry in enumerate(spec.get("stages") or [], start=1):
            name, stage = entry.get("name"), entry.get("stage")
            if not name or stage not in STAGES:
                raise ValueError(f"{path}: stage #{index} needs a name and a stage among {', '.join(STAGES)}")
            if name in names:
                raise ValueError(f"{path}: stage name {name!r} is used twice")
            for ref in _refs(entry.get("with") or {}):
                if ref not in names:
                    raise ValueError(f"{path}: stage {name!r} refers to @{ref}, which is not an earlier stage")
            names.add(name)
            stages.append(StageSpec(name, stage, dict(entry.get("with") or {})))
        if not stages:
            raise ValueError(f"{path}: no stages")
        return cls(Path(workdir or spec.get("workdir") or "runs/pipeline"), stages, spec.get("budget") or {})


def _refs(value: Any) -> list[str]:
    if isinstance(value, str):
        match = REF.match(value)
        return [match.group(1)] if match else []
    if isinstance(value, dict):
        return [r for v in value.values() for r in _refs(v)]
    if isinstance(value, list):
        return [r for v in value for r in _refs(v)]
    return []


def _resolve(value: Any, outputs: dict[str, Path]) -> Any:
    if isinstance(value, str) and REF.match(value):
        return str(outputs[REF.match(value).group(1)])
    if isinstance(value, dict):
        return {k: _resolve(v, outputs) for k, v in value.items()}
    if isinstance(value, list):
        return [_resolve(v, outputs) for v in value]
    return value


def _entry(stage: str) -> tuple[type, Callable[[Any], Path]]:
    module_name, config_name, function_name = STAGES[stage]
    module = importlib.import_module(module_name)
    return getattr(module, config_name), getattr(module, function_name)


def _build(config_class: type, options: dict[str, Any], out: Path) -> Any:
    names = {f.name for f in dataclasses.fields(config_class)}
    unknown = sorted(set(options) - names)
    if unknown:
        raise ValueError(f"{config_class.__name__}: unknown option(s) {', '.join(unknown)}")
    values = {**options, "out": out}
    if "overwrite" in names:
        values["overwrite"] = True
    return config_class(**values)


def _stamp(config: Any, inputs: dict[str, Path]) -> dict[str, Any]:
    resolved = config_dict(config)
    return {"config": sha256_json(resolved), "inputs": {n: open_artifact(p).sha256 for n, p in sorted(inputs.items())}}


def run_pipeline(pipeline: Pipeline, force_from: str | None = None, log: Callable[[str], None] = print) -> dict[str, Path]:
    """Run (or skip) every stage in order; returns the artifact path of each stage."""
    names = [s.name for s in pipeline.stages]
    if force_from is not None and force_from not in names:
        raise ValueError(f"--from {force_from}: no such stage (stages: {', '.join(names)})")
    forced = False
    outputs: dict[str, Path] = {}
    pipeline.workdir.mkdir(parents=True, exist_ok=True)
    for number, spec in enumerate(pipeline.stages, start=1):
        forced = forced or spec.name == force_from
        out = pipeline.workdir / spec.name
        config_class, run_stage = _entry(spec.stage)
        config = _build(config_class, _resolve(spec.options, outputs), out)
        stamp_path = pipeline.workdir / f"{spec.name}.stage.json"
        stamp = _stamp(config, {ref: outputs[ref] for ref in _refs(spec.options)})
        header = f"[{number}/{len(names)}] {spec.name} ({spec.stage})"
        if not forced and _up_to_date(out, stamp_path, stamp):
            log(f"{header}: up to date, skipped")
        else:
            log(f"{header}: running -> {out}")
            started = time.perf_counter()
            run_stage(config)
            log(f"{header}: done in {time.perf_counter() - started:.1f}s")
            stamp["output"] = open_artifact(out).sha256
            stamp_path.write_text(json.dumps(stamp, indent=2) + "\n")
        outputs[spec.name] = out
    return outputs


def _up_to_date(out: Path, stamp_path: Path, stamp: dict[str, Any]) -> bool:
    if not (out / MANIFEST).is_file() or not stamp_path.is_file():
        return False
    try:
        recorded = json.loads(stamp_path.read_text())
        current = open_artifact(out).sha256
    except (ArtifactError, json.JSONDecodeError):
        return False
    return recorded.get("output") == current and {k: recorded.get(k) for k in stamp} == stamp
