"""Training dashboards: TensorBoard scalars as training runs, loss plot redrawn at every checkpoint."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from retr.training.config import TrainConfig
from retr.training.log import TrainLog
from retr.training.train import train


def scalars(folder: Path) -> dict[str, list[tuple[int, float]]]:
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    events = EventAccumulator(str(folder))
    events.Reload()
    return {tag: [(e.step, e.value) for e in events.Scalars(tag)] for tag in events.Tags()["scalars"]}


def test_log_writes_scalars_and_redraws_the_plot(tmp_path: Path) -> None:
    log = TrainLog(tmp_path / "train_log.jsonl", 0, tmp_path / "tb")
    for step in (1, 2):
        log.write({"step": step, "loss": 3.0 - step, "cl": 1.0, "lr": 1e-4, "samples_per_s": 2.0, "grad_norm": 0.5})
    log.checkpoint("title")
    assert (tmp_path / "loss.png").stat().st_size > 0
    found = scalars(tmp_path / "tb")
    assert found["loss/loss"] == [(1, 2.0), (2, 1.0)] and found["train/grad_norm"][0][1] == 0.5
    assert {"loss/cl", "train/lr", "train/samples_per_s"} <= set(found)
    log.close()


def test_training_reports_to_tensorboard_and_plots_at_checkpoints(tiny_llama, training_set, tmp_path, monkeypatch):
    plotted = []
    original = TrainLog.checkpoint
    monkeypatch.setattr(TrainLog, "checkpoint", lambda self, title: (plotted.append(len(self.records())),
                                                                     original(self, title)))
    cfg = TrainConfig(objective="cl", data=[str(training_set)], model=str(tiny_llama), out=tmp_path / "m",
                      negatives=1, batch_size=4, chunk_size=4, max_query_length=12, max_passage_length=20,
                      lora_r=4, lora_alpha=8, max_steps=4, checkpoint_every=2, threads=1, report_to="tensorboard")
    out = train(cfg)
    assert plotted == [2, 4], "loss.png is redrawn at the checkpoint and at the end"
    found = scalars(out / "tensorboard")
    assert [step for step, _ in found["loss/loss"]] == [1, 2, 3, 4]
    assert all(value > 0 for _, value in found["train/grad_norm"])
    log = [json.loads(line) for line in (out / "train_log.jsonl").read_text().splitlines()]
    assert [r["loss"] for r in log] == pytest.approx([v for _, v in found["loss/loss"]], rel=1e-5)


def test_unknown_report_target_is_refused() -> None:
    with pytest.raises(ValueError, match="report_to"):
        TrainConfig(objective="cl", report_to="wandb")
