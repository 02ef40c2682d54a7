"""Several score reports (one per dataset) as one table: a column per dataset and their mean, BEIR's average row.

BEIR and MTEB summarise a system over datasets by the unweighted mean of its per-dataset scores; a study that scores
SciFact and NFCorpus separately (each with its own qrels and significance tests) needs that table too. Each cell
keeps the superscript letters of its own report's significance tests; the mean has none (the datasets' queries are
not paired across datasets).
"""

from __future__ import annotations

import json
from pathlib import Path
from statistics import mean
from typing import Any

from retr.data.artifacts import ArtifactWriter, open_artifact
from retr.data.errors import DataError
from retr.evaluation import render
from retr.evaluation.metrics import label


def combine_reports(reports: list[str], out: Path, metrics: list[str], names: list[str], overwrite: bool,
                    settings: dict[str, Any]) -> Path:
    """Write a "report" artifact holding ``summary.md`` / ``summary.json`` over ``reports``; returns ``out``."""
    if len(reports) < 2:
        raise DataError("--combine needs at least two score reports (one per dataset)")
    artifacts = [open_artifact(path, kind="report", verify=True) for path in reports]
    contents = [json.loads(a.file("report.json").read_text()) for a in artifacts]
    columns = names or [_dataset_name(c, a.path) for c, a in zip(contents, artifacts)]
    if len(columns) != len(artifacts) or len(set(columns)) != len(columns):
        raise DataError(f"--names: give one distinct name per report ({len(artifacts)}), e.g. the datasets")
    common = [m for m in contents[0]["metrics"] if all(m in c["metrics"] for c in contents[1:])]
    chosen = [m for m in common if not metrics or m in metrics or label(m) in metrics]
    if not chosen:
        raise DataError(f"no metric in every report{' among ' + ', '.join(metrics) if metrics else ''}; "
                        f"the reports share: {', '.join(common) or 'none'}")
    runs = [r for r in contents[0]["runs"] if all(r in c["runs"] for c in contents[1:])]
    left_out = sorted({r for c in contents for r in c["runs"]} - set(runs))
    if not runs:
        raise DataError("no run name is in every report; name the runs alike (`retr score --names`)")
    table = {run: {m: {col: c["runs"][run]["scores"][m] for col, c in zip(columns, contents)} for m in chosen}
             for run in runs}
    for run in runs:
        for m in chosen:
            table[run][m]["mean"] = mean(table[run][m][col] for col in columns)
    summary = {"datasets": dict(zip(columns, [str(a.path) for a in artifacts])), "metrics": chosen, "runs": table,
               "left_out": left_out}
    marks = [render.beaten(c) for c in contents]
    with ArtifactWriter(out, "report", settings, artifacts, overwrite=overwrite) as writer:
        (writer.dir / "summary.json").write_text(json.dumps(summary, indent=2) + "\n")
        (writer.dir / "summary.md").write_text(_markdown(summary, columns, marks))
        writer.metrics = {"mean": {run: {m: table[run][m]["mean"] for m in chosen} for run in runs}}
    return out


def _dataset_name(report: dict[str, Any], path: Path) -> str:
    qrels = report.get("qrels") or {}
    source = Path(str(qrels.get("source") or path.name)).name
    return f"{source} {qrels['split']}" if qrels.get("split") else source


def _markdown(summary: dict[str, Any], columns: list[str], marks: list[dict]) -> str:
    lines = ["# Summary over datasets", ""]
    for metric in summary["metrics"]:
        lines += [f"## {label(metric)}", "", "| run | " + " | ".join(columns) + " | mean |",
                  "|---|" + "---:|" * (len(columns) + 1)]
        best = {col: max(summary["runs"][r][metric][col] for r in summary["runs"]) for col in [*columns, "mean"]}
        for run, scores in summary["runs"].items():
            cells = []
            for col, beaten in [*zip(columns, marks), ("mean", {})]:
                text = f"{scores[metric][col]:.4f}"
                text = f"**{text}**" if scores[metric][col] == best[col] else text
                cells.append(text + "".join(render.SUPERSCRIPTS.get(c, c) for c in "".join(beaten.get((run, metric), []))))
            lines.append(f"| {run} | " + " | ".join(cells) + " |")
        lines.append("")
    lines.append("Superscripts: the significance marks of each dataset's own report (letters are that report's run "
                 "letters); the mean is BEIR's unweighted average over the datasets and carries no test.")
    if summary["left_out"]:
        lines.append(f"Runs not in every report, left out: {', '.join(summary['left_out'])}.")
    return "\n".join(lines) + "\n"
