"""PNG plots of a report (matplotlib, Agg backend: no display needed)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from retr.evaluation.metrics import label


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def metric_bars(means: dict[str, dict[str, float]], metrics: list[str], path: Path) -> None:
    """Grouped bars: one group per metric, one bar per run, value on top."""
    plt = _pyplot()
    names = list(means)
    width = 0.8 / max(1, len(names))
    x = np.arange(len(metrics))
    fig, ax = plt.subplots(figsize=(min(14.0, 3 + 0.35 * len(metrics) * max(2, len(names))), 4.8))
    for i, name in enumerate(names):
        values = [means[name][m] for m in metrics]
        bars = ax.bar(x + (i - (len(names) - 1) / 2) * width, values, width, label=name)
        if len(names) * len(metrics) <= 30:
            ax.bar_label(bars, fmt="%.3f", fontsize=7, padding=1)
    ax.set_xticks(x, [label(m) for m in metrics])
    ax.set_ylim(0, 1.08)
    ax.set_ylabel("score")
    ax.legend(fontsize=8, ncols=min(4, len(names)), loc="upper center", bbox_to_anchor=(0.5, -0.1), frameon=False)
    ax.set_title("Mean score per metric")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def per_query(
    per_query: dict[str, dict[str, np.ndarray]], metric: str, path: Path, baseline: str | None = None
) -> None:
    """With one run: its per-query scores, sorted. With more: per-query difference of each run minus the
    baseline, sorted, one panel per run (bars above 0 are queries the run wins)."""
    plt = _pyplot()
    names = list(per_query)
    if len(names) == 1:
        scores = np.sort(per_query[names[0]][metric])[::-1]
        fig, ax = plt.subplots(figsize=(8, 3.5))
        ax.bar(np.arange(len(scores)), scores, width=1.0)
        ax.set_xlabel("queries (sorted)")
        ax.set_ylabel(label(metric))
        ax.set_title(f"{names[0]}: {label(metric)} per query (mean {scores.mean():.4f})")
    else:
        base = baseline if baseline in per_query else names[0]
        others = [n for n in names if n != base]
        fig, axes = plt.subplots(len(others), 1, figsize=(8, 2.4 * len(others) + 0.6), sharex=True, squeeze=False)
        for ax, name in zip(axes[:, 0], others):
            diff = np.sort(per_query[name][metric] - per_query[base][metric])[::-1]
            colors = np.where(diff > 0, "tab:green", np.where(diff < 0, "tab:red", "tab:gray"))
            ax.bar(np.arange(len(diff)), diff, width=1.0, color=colors)
            ax.axhline(0, color="black", linewidth=0.6)
            wins, losses = int((diff > 0).sum()), int((diff < 0).sum())
            ax.set_title(f"{name} − {base}: {label(metric)} (wins {wins}, losses {losses}, mean {diff.mean():+.4f})",
                         fontsize=9)  # fmt: skip
            ax.set_ylabel("Δ")
        axes[-1, 0].set_xlabel("queries (sorted by difference)")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
