"""The training log (``train_log.jsonl``, one line per optimizer step) and its loss plot (``loss.png``)."""

from __future__ import annotations

import json
from pathlib import Path


class TrainLog:
    """Appends one JSON line per step; on resume, drops the lines past the checkpoint (they will be redone)."""

    def __init__(self, path: Path, resume_step: int):
        self.path = path
        kept = []
        if path.exists():
            kept = [line for line in path.read_text().splitlines() if line and json.loads(line)["step"] <= resume_step]
        path.write_text("".join(line + "\n" for line in kept))

    def write(self, record: dict) -> None:
        with open(self.path, "a") as handle:
            handle.write(json.dumps(record) + "\n")

    def records(self) -> list[dict]:
        return [json.loads(line) for line in self.path.read_text().splitlines() if line]


def plot_losses(records: list[dict], out: Path, title: str) -> None:
    """Total loss and each part against the step, one PNG (matplotlib, Agg backend)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    skip = {"step", "lr", "samples_per_s", "seconds"}
    keys = sorted({k for r in records for k in r if k not in skip and isinstance(r[k], (int, float))})
    fig, ax = plt.subplots(figsize=(7, 4))
    steps = [r["step"] for r in records]
    for key in keys:
        ax.plot(steps, [r.get(key) for r in records], label=key, linewidth=2 if key == "loss" else 1)
    ax.set_xlabel("step")
    ax.set_ylabel("loss")
    ax.set_title(title)
    ax.legend()
    ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(out, dpi=100)
    plt.close(fig)
