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
The stamp also keeps the stage's wall time; every run ends with the table of them (skipped stages included).
An option added to retr after the stage ran, at its default, does not count as a change: new options default to
the old behaviour, and a study that spans sessions and retr versions must not redo hours of finished stages.
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

from retr.data.artifacts import ArtifactError, MANIFEST, atomic_write_text, config_dict, open_artifact, sha256_json
from retr.data.errors import UsageError
from retr.data.options import build_config, check_names

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
NAME = re.compile(r"^[A-Za-z0-9_.-]+$")
TOP_LEVEL = ("workdir", "budget", "stages")


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
        """Read and check a pipeline file; every mistake is one :class:`UsageError` naming the file and stage."""
        import yaml

        try:
            spec = yaml.safe_load(Path(path).read_text())
        except (OSError, yaml.YAMLError) as error:
            raise UsageError(f"{path}: not a readable YAML file ({' '.join(str(error).split())})") from None
        if not isinstance(spec, dict):
            raise UsageError(f"{path}: expected a mapping with {', '.join(TOP_LEVEL)}")
        unknown = sorted(set(spec) - set(TOP_LEVEL))
        if unknown:
            raise UsageError(f"{path}: unknown key(s) {', '.join(map(str, unknown))}; known: {', '.join(TOP_LEVEL)}")
        entries = spec.get("stages")
        if not isinstance(entries, list) or not entries:
            raise UsageError(f"{path}: 'stages' must be a non-empty list of stages")
        stages, names = [], set()
        for index, entry in enumerate(entries, start=1):
            where = f"{path}: stage #{index}"
            if not isinstance(entry, dict) or set(entry) - {"name", "stage", "with"}:
                raise UsageError(f"{where}: expected a mapping with name, stage and with")
            name, stage, options = entry.get("name"), entry.get("stage"), entry.get("with") or {}
            if not isinstance(name, str) or not NAME.match(name) or name in (".", ".."):
                raise UsageError(f"{where}: name {name!r} must be letters, digits, '_', '-' or '.' (it names a folder "
                                 "inside the workdir)")
            if stage not in STAGES:
                raise UsageError(f"{where} ({name}): stage {stage!r} is not one of {', '.join(STAGES)}")
            if not isinstance(options, dict):
                raise UsageError(f"{where} ({name}): 'with' must be a mapping of options")
            if name in names:
                raise UsageError(f"{path}: stage name {name!r} is used twice")
            for ref in _refs(options):
                if ref not in names:
                    raise UsageError(f"{where} ({name}): refers to @{ref}, which is not an earlier stage")
            _check_option_names(stage, options, f"{where} ({name})")
            names.add(name)
            stages.append(StageSpec(name, stage, dict(options)))
        budget = spec.get("budget") or {}
        return cls(Path(workdir or spec.get("workdir") or "runs/pipeline"), stages, budget)


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


def _check_option_names(stage: str, options: dict[str, Any], where: str) -> None:
    """Unknown option names are refused before any stage runs (values are checked when the stage is built)."""
    config_class, _ = _entry(stage)
    check_names(config_class, options, where, exclude=frozenset({"out"}))


def _build(config_class: type, options: dict[str, Any], out: Path, where: str) -> Any:
    values = {**options, "out": out}
    if "overwrite" in {f.name for f in dataclasses.fields(config_class)}:
        values["overwrite"] = True
    return build_config(config_class, values, where)


def _stamp(config: Any, inputs: dict[str, Path]) -> dict[str, Any]:
    return {"config": _plain(config_dict(config)),
            "inputs": {n: open_artifact(p).sha256 for n, p in sorted(inputs.items())}}


def _plain(value: Any) -> Any:
    """``value`` as JSON gives it back (tuples as lists, paths as strings): how a stamp file records it."""
    return json.loads(json.dumps(value, default=str))


def _same_config(recorded: Any, config: Any) -> bool:
    """The recorded config equals ``config``, except for options added since that are at their defaults.

    A stamp written before stamps kept the config holds its sha256 instead, compared as it was."""
    current = _plain(config_dict(config))
    if isinstance(recorded, str):
        return recorded == sha256_json(config_dict(config))
    if not isinstance(recorded, dict) or set(recorded) - set(current):  # an option that no longer exists
        return False
    fields = {f.name: f for f in dataclasses.fields(config)}
    for name, value in current.items():
        if name in recorded:
            if recorded[name] != value:
                return False
        elif value != _plain(_default(fields[name])):
            return False
    return True


def _default(field: dataclasses.Field) -> Any:
    if field.default_factory is not dataclasses.MISSING:  # type: ignore[misc]
        return field.default_factory()  # type: ignore[misc]
    return None if field.default is dataclasses.MISSING else field.default


def run_pipeline(pipeline: Pipeline, force_from: str | None = None, log: Callable[[str], None] = print) -> dict[str, Path]:
    """Run (or skip) every stage in order; returns the artifact path of each stage."""
    names = [s.name for s in pipeline.stages]
    if force_from is not None and force_from not in names:
        raise UsageError(f"--from {force_from}: no such stage (stages: {', '.join(names)})")
    forced = False
    outputs: dict[str, Path] = {}
    for number, spec in enumerate(pipeline.stages, start=1):
        forced = forced or spec.name == force_from
        out = pipeline.workdir / spec.name
        config_class, run_stage = _entry(spec.stage)
        config = _build(config_class, _resolve(spec.options, outputs), out, f"stage {spec.name}")
        stamp_path = pipeline.workdir / f"{spec.name}.stage.json"
        stamp = _stamp(config, {ref: outputs[ref] for ref in _refs(spec.options)})
        header = f"[{number}/{len(names)}] {spec.name} ({spec.stage})"
        if not forced and _up_to_date(out, stamp_path, stamp, config):
            log(f"{header}: up to date, skipped")
        else:
            log(f"{header}: running -> {out}")
            started = time.perf_counter()
            pipeline.workdir.mkdir(parents=True, exist_ok=True)
            run_stage(config)
            seconds = time.perf_counter() - started
            log(f"{header}: done in {seconds:.1f}s")
            stamp["output"] = open_artifact(out).sha256
            stamp["seconds"] = round(seconds, 1)
            atomic_write_text(stamp_path, json.dumps(stamp, indent=2) + "\n")
        outputs[spec.name] = out
    log(wall_times(pipeline))
    return outputs


def wall_times(pipeline: Pipeline) -> str:
    """Each stage's wall time when it last ran (its stamp's ``seconds``; "-" where none was recorded), and the sum."""
    rows, total = [], 0.0
    for spec in pipeline.stages:
        try:
            seconds = json.loads((pipeline.workdir / f"{spec.name}.stage.json").read_text()).get("seconds")
        except (OSError, json.JSONDecodeError):
            seconds = None
        total += seconds or 0.0
        rows.append(f"  {spec.name:<32} {'-' if seconds is None else f'{seconds:.1f}':>10}")
    return "\n".join(["wall time per stage (seconds, as last run):", *rows, f"  {'total':<32} {total:>10.1f}"])


def _up_to_date(out: Path, stamp_path: Path, stamp: dict[str, Any], config: Any) -> bool:
    if not (out / MANIFEST).is_file() or not stamp_path.is_file():
        return False
    try:
        recorded = json.loads(stamp_path.read_text())
        current = open_artifact(out).sha256
    except (ArtifactError, json.JSONDecodeError):
        return False
    return (recorded.get("output") == current and recorded.get("inputs") == stamp["inputs"]
            and _same_config(recorded.get("config"), config))
