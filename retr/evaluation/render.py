"""The report's tables: Markdown (with significance superscripts) and LaTeX (booktabs), from report.json's content."""

from __future__ import annotations

from typing import Any

from retr.evaluation.metrics import label
from retr.evaluation.significance import CORRECTION_LABELS, TEST_LABELS

LETTERS = "abcdefghijklmnopqrstuvwxyz"
SUPERSCRIPTS = dict(zip(LETTERS, "ᵃᵇᶜᵈᵉᶠᵍʰⁱʲᵏˡᵐⁿᵒᵖ𐞥ʳˢᵗᵘᵛʷˣʸᶻ"))


def letters(names: list[str]) -> dict[str, str]:
    return {name: LETTERS[i % 26] * (i // 26 + 1) for i, name in enumerate(names)}


def beaten(report: dict[str, Any]) -> dict[tuple[str, str], list[str]]:
    """(run, metric) -> letters of the runs it is significantly better than."""
    marks = letters(list(report["runs"]))
    out: dict[tuple[str, str], list[str]] = {}
    for pair in report["significance"]["pairs"]:
        if pair["significant"]:
            loser = pair["b"] if pair["better"] == pair["a"] else pair["a"]
            out.setdefault((pair["better"], pair["metric"]), []).append(marks[loser])
    return {key: sorted(value) for key, value in out.items()}


def _best(report: dict[str, Any], metric: str) -> float:
    return max(round(run["scores"][metric], 4) for run in report["runs"].values())


def significance_note(report: dict[str, Any]) -> str:
    sig = report["significance"]
    if sig["test"] == "none" or len(report["runs"]) < 2:
        return ""
    family = sig.get("family", "all pairs of runs, per metric")
    correction = "" if sig["test"] == "tukey" else f", {CORRECTION_LABELS[sig['correction']]} over {family}"
    return (
        f"Superscript letters: the run is significantly better than the runs with those letters "
        f"({TEST_LABELS[sig['test']]}{correction}, p ≤ {sig['alpha']})."
    )


def markdown(report: dict[str, Any]) -> str:
    metrics, runs = report["metrics"], report["runs"]
    marks, wins = letters(list(runs)), beaten(report)
    q = report["qrels"]
    lines = [
        "# Retrieval report",
        "",
        f"Qrels: `{q['source']}`" + (f" (split {q['split']})" if q.get("split") else "") + f", {report['queries']} "
        f"queries scored. Binary metrics count grade ≥ {q['rel_level']} as relevant ({q['rel_level_reason']}); "
        "nDCG uses the grades as gains. " + _missing_note(report["missing"]),
        "",
    ]
    if runs:
        lines += ["| # | run | " + " | ".join(label(m) for m in metrics) + " |", "|---|---|" + "---:|" * len(metrics)]
        for name, run in runs.items():
            cells = []
            for metric in metrics:
                value = round(run["scores"][metric], 4)
                text = f"{value:.4f}"
                text = f"**{text}**" if len(runs) > 1 and value == _best(report, metric) else text
                cells.append(text + "".join(SUPERSCRIPTS.get(c, c) for c in "".join(wins.get((name, metric), []))))
            lines.append(f"| {marks[name]} | {name} | " + " | ".join(cells) + " |")
        note = significance_note(report)
        lines += ["", note] if note else []
        lines += ["", "## Query coverage", "", _coverage_table(report)]
    if report.get("mteb"):
        lines += ["", mteb_section(report["mteb"])]
    return "\n".join(lines) + "\n"


def _missing_note(missing: str) -> str:
    if missing == "zero":
        return "A judged query missing from a run scores 0 (trec_eval -c); run queries without judgments are ignored."
    return "Means are over the judged queries every run has (trec_eval's default); run queries without judgments are ignored."


def _coverage_table(report: dict[str, Any]) -> str:
    rows = [
        "| run | run queries | judged queries | judged, missing from run | run queries without judgments (ignored) "
        "| judged without a relevant doc |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for name, run in report["runs"].items():
        c = run["coverage"]
        rows.append(
            f"| {name} | {c['run_queries']} | {c['judged_queries']} | {c['judged_missing_from_run']} | "
            f"{c['run_queries_unjudged']} | {c['judged_without_relevant']} |"
        )
    return "\n".join(rows)


MTEB_KEYS = ["ndcg_at_10", "mrr_at_10", "recall_at_100", "recall_at_1000", "map_at_1000", "main_score"]


def mteb_section(mteb: dict[str, Any]) -> str:
    scores = mteb["scores"]
    keys = [k for k in MTEB_KEYS if k in scores]
    return "\n".join(
        [
            f"## MTEB (mteb {mteb['mteb_version']}, `mteb.evaluate` on the local task {mteb['task']}, split {mteb['split']})",
            "",
            f"Encoder `{mteb['encoder']}`; MTEB counts grade ≥ 1 as relevant and drops queries without judgments.",
            "",
            "| " + " | ".join(keys) + " |",
            "|" + "---:|" * len(keys),
            "| " + " | ".join(f"{scores[k]:.4f}" for k in keys) + " |",
        ]
    )


def _latex_escape(text: str) -> str:
    for char, repl in (("\\", r"\textbackslash{}"), ("_", r"\_"), ("&", r"\&"), ("%", r"\%"), ("#", r"\#"), ("$", r"\$")):
        text = text.replace(char, repl)
    return text.replace("≥", r"$\geq$").replace("≤", r"$\leq$")


def latex(report: dict[str, Any]) -> str:
    """A booktabs table (needs \\usepackage{booktabs}); best score per metric in bold, letters as superscripts."""
    metrics, runs = report["metrics"], report["runs"]
    marks, wins = letters(list(runs)), beaten(report)
    caption = "Retrieval effectiveness."
    note = significance_note(report)
    if note:
        caption += " " + note
    lines = [
        r"\begin{table}[t]",
        r"\centering",
        rf"\caption{{{_latex_escape(caption)}}}",
        r"\begin{tabular}{cl" + "r" * len(metrics) + "}",
        r"\toprule",
        r"\# & Run & " + " & ".join(_latex_escape(label(m)) for m in metrics) + r" \\",
        r"\midrule",
    ]
    for name, run in runs.items():
        cells = []
        for metric in metrics:
            value = round(run["scores"][metric], 4)
            text = f"{value:.4f}"
            if len(runs) > 1 and value == _best(report, metric):
                text = rf"\textbf{{{text}}}"
            sup = "".join(wins.get((name, metric), []))
            cells.append(text + (rf"$^{{{sup}}}$" if sup else ""))
        lines.append(f"{marks[name]} & {_latex_escape(name)} & " + " & ".join(cells) + r" \\")
    lines += [r"\bottomrule", r"\end{tabular}", r"\label{tab:retrieval}", r"\end{table}"]
    return "\n".join(lines) + "\n"
