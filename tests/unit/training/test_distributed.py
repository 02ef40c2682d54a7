"""Two CPU processes (torchrun, gloo) train to the same adapter as one process on the same global batch, with DDP
and with FSDP2 (parameters sharded over the processes); an FSDP run killed after a checkpoint resumes exactly."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from retr.data.artifacts import open_artifact
from retr.training.config import TrainConfig
from retr.training.train import train

ROOT = Path(__file__).resolve().parents[3]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _options(tiny_llama, training_set, **overrides) -> dict:
    return {
        "objective": "grl", "data": str(training_set), "model": str(tiny_llama), "negatives": 2,
        "batch_size": 4, "chunk_size": 2, "max_query_length": 12, "max_passage_length": 20, "lora_r": 4,
        "lora_alpha": 8, "lora_dropout": 0.0, "max_steps": 3, "lr": 5e-3, "threads": 1, **overrides,
    }


def _torchrun(target: list[str], timeout: int = 300) -> subprocess.CompletedProcess:
    command = [sys.executable, "-m", "torch.distributed.run", "--nproc-per-node=2", "--nnodes=1",
               f"--master-port={_free_port()}", *target]
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}
    return subprocess.run(command, env=env, capture_output=True, text=True, timeout=timeout)


def _train_two(out: Path, options: dict) -> subprocess.CompletedProcess:
    args = [f"--{k.replace('_', '-')}" if v is True else f"--{k.replace('_', '-')}={v}" for k, v in options.items()
            if v is not False]
    args += [f"--no-{k.replace('_', '-')}" for k, v in options.items() if v is False]
    return _torchrun(["-m", "retr", "train", f"--out={out}", *args])


def _adapter(path: Path) -> dict[str, torch.Tensor]:
    return load_file(str(path / "adapter" / "adapter_model.safetensors"))


@pytest.mark.parametrize("parallel,grad_cache", [("ddp", True), ("ddp", False), ("fsdp", True), ("fsdp", False)])
def test_two_processes_match_one(parallel, grad_cache, tiny_llama, training_set, tmp_path):
    options = _options(tiny_llama, training_set, grad_cache=grad_cache, parallel=parallel)
    single = train(TrainConfig(out=tmp_path / "one", **options))
    run = _train_two(tmp_path / "two", options)
    assert run.returncode == 0, run.stderr[-3000:]
    double = open_artifact(tmp_path / "two", kind="model")
    assert double.manifest["metrics"]["processes"] == 2
    shared = double.manifest["metrics"]["distributed"]
    assert shared["parallel"] == parallel and shared["world"] == 2
    if parallel == "fsdp":  # rank 0 held about half of the model, not a replica
        assert shared["held_parameters"] <= 0.55 * shared["parameters"], shared
    else:
        assert shared["held_parameters"] == shared["parameters"], shared

    a, b = _adapter(single), _adapter(double.path)
    assert a.keys() == b.keys()
    for name in a:
        torch.testing.assert_close(b[name], a[name], atol=2e-5, rtol=1e-4, msg=name)
    # the weights moved: the comparison is not between two untouched initialisations
    assert any(not torch.allclose(t, torch.zeros_like(t)) for n, t in a.items() if "lora_B" in n)
    one_log = open_artifact(single).manifest["metrics"]["final_parts"]
    two_log = double.manifest["metrics"]["final_parts"]
    for part in ("cl", "dpo", "kl"):
        assert abs(one_log[part] - two_log[part]) < 1e-4, (part, one_log, two_log)


def test_fsdp_units_are_the_decoder_layers(tiny_llama):
    """The classes FSDP shards by come from the model (transformers' _no_split_modules); none: a one-line refusal."""
    from retr.data.errors import UsageError
    from retr.training import distributed as D
    from retr.training.base import load_base

    model = load_base(str(tiny_llama))[0]
    assert D.layer_classes(model) == {"LlamaDecoderLayer"}
    with pytest.raises(UsageError, match="--parallel ddp"):
        D.shard(torch.nn.Sequential(torch.nn.Linear(2, 2)), D.Context(0, 2, distributed=True))


KILLER = """
import json, os, signal, sys
from retr.training import checkpoint
from retr.training.train import TrainConfig, train
original, calls = checkpoint.save, []
def save(*args, **kwargs):
    calls.append(1)
    if len(calls) == 2:  # every process dies before the second checkpoint: the steps after the first are lost
        os.kill(os.getpid(), signal.SIGKILL)
    original(*args, **kwargs)
checkpoint.save = save
train(TrainConfig(**json.loads(sys.argv[1])))
"""


def test_fsdp_resume_after_kill_equals_uninterrupted(tiny_llama, training_set, tmp_path):
    """The checkpoint of sharded parameters and AdamW moments (gathered, then re-sharded on restore)."""
    options = _options(tiny_llama, training_set, parallel="fsdp", lora_dropout=0.2, max_steps=4, checkpoint_every=1)
    straight = _train_two(tmp_path / "straight", options)
    assert straight.returncode == 0, straight.stderr[-3000:]
    script = tmp_path / "killer.py"
    script.write_text(KILLER)
    out = tmp_path / "killed"
    killed = _torchrun([str(script), json.dumps({**options, "out": str(out)})])
    assert killed.returncode != 0
    partial = list(tmp_path.glob("killed.tmp-*"))
    assert len(partial) == 1 and not out.exists()
    assert json.loads((partial[0] / "checkpoint" / "state.json").read_text())["step"] == 1

    resumed = _train_two(out, options)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert open_artifact(out).manifest["metrics"]["resumed_from_step"] == 1  # restored, not started afresh
    a, b = _adapter(tmp_path / "straight"), _adapter(out)
    assert a.keys() == b.keys()
    for name in a:
        torch.testing.assert_close(b[name], a[name], atol=0, rtol=0, msg=name)
    log = [json.loads(line) for line in (out / "train_log.jsonl").read_text().splitlines()]
    straight_log = [json.loads(line) for line in (tmp_path / "straight" / "train_log.jsonl").read_text().splitlines()]
    assert [r["step"] for r in log] == [1, 2, 3, 4]
    assert [r["loss"] for r in log] == [r["loss"] for r in straight_log]
