"""The training log (``train_log.jsonl``, one line per optimizer step), its loss plot (``loss.png``, redrawn at every
checkpoint so a long run can be watched) and, with ``--report-to tensorboard``, TensorBoard scalars written as
training runs (``tensorboard/`` in the output; ``tensorboard --logdir <out>.tmp-<pid>/tensorboard`` while it runs)."""

from __future__ import annotations

import json
from pathlib import Path


REPORT_TO = ("none", "tensorboard")
NOT_LOSSES = {"step", "lr", "samples_per_s", "seconds", "grad_norm"}


class TrainLog:
    """Appends one JSON line per step; on resume, drops the lines past the checkpoint (they will be redone).

    ``tensorboard``: a folder for TensorBoard event files (each loss part under ``loss/``, plus ``train/lr``,
    ``train/samples_per_s``, ``train/grad_norm``); a resumed run purges the steps it will redo."""

    def __init__(self, path: Path, resume_step: int, tensorboard: Path | None = None):
        self.path = path
        kept = []
        if path.exists():
            kept = [line for line in path.read_text().splitlines() if line and json.loads(line)["step"] <= resume_step]
        path.write_text("".join(line + "\n" for line in kept))
        self.board = _summary_writer(tensorboard, resume_step) if tensorboard is not None else None

    def write(self, record: dict) -> None:
        with open(self.path, "a") as handle:
            handle.write(json.dumps(record) + "\n")
        if self.board is not None:
            for key, value in record.items():
                if key != "step" and isinstance(value, (int, float)):
                    tag = f"train/{key}" if key in NOT_LOSSES else f"loss/{key}"
                    self.board.add_scalar(tag, value, record["step"])

    def checkpoint(self, title: str) -> None:
        """Redraw ``loss.png`` beside the log and flush TensorBoard: what a watcher sees is current."""
        plot_losses(self.records(), self.path.with_name("loss.png"), title)
        if self.board is not None:
            self.board.flush()

    def close(self) -> None:
        if self.board is not None:
            self.board.close()

    def records(self) -> list[dict]:
        return [json.loads(line) for line in self.path.read_text().splitlines() if line]


def plot_losses(records: list[dict], out: Path, title: str) -> None:
    """Total loss and each part against the step, one PNG (matplotlib, Agg backend)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    keys = sorted({k for r in records for k in r if k not in NOT_LOSSES and isinstance(r[k], (int, float))})
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


def _summary_writer(folder: Path, resume_step: int):
    try:
        from torch.utils.tensorboard import SummaryWriter
    except ImportError:
        from retr.data.errors import UsageError

        raise UsageError("--report-to tensorboard needs the tensorboard package (pip install tensorboard)") from None
    return SummaryWriter(log_dir=str(folder), purge_step=resume_step + 1 if resume_step else None)
