"""Two CPU processes (torchrun, gloo, DDP) train to the same adapter as one process on the same global batch."""

from __future__ import annotations

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


@pytest.mark.parametrize("grad_cache", [True, False])
def test_two_processes_match_one(grad_cache, tiny_llama, training_set, tmp_path):
    options = {
        "objective": "grl", "data": str(training_set), "model": str(tiny_llama), "negatives": 2,
        "batch_size": 4, "chunk_size": 2, "max_query_length": 12, "max_passage_length": 20, "lora_r": 4,
        "lora_alpha": 8, "lora_dropout": 0.0, "max_steps": 3, "lr": 5e-3, "threads": 1, "grad_cache": grad_cache,
    }
    single = train(TrainConfig(out=tmp_path / "one", **options))

    args = [f"--{k.replace('_', '-')}" if v is True else f"--{k.replace('_', '-')}={v}" for k, v in options.items()
            if v is not False]
    command = [sys.executable, "-m", "torch.distributed.run", "--nproc-per-node=2", "--nnodes=1",
               f"--master-port={_free_port()}", "-m", "retr", "train", f"--out={tmp_path / 'two'}", *args]
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}
    run = subprocess.run(command, env=env, capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stderr[-3000:]
    double = open_artifact(tmp_path / "two", kind="model")
    assert double.manifest["metrics"]["processes"] == 2

    a = load_file(str(single / "adapter" / "adapter_model.safetensors"))
    b = load_file(str(double.path / "adapter" / "adapter_model.safetensors"))
    assert a.keys() == b.keys()
    for name in a:
        torch.testing.assert_close(b[name], a[name], atol=2e-5, rtol=1e-4, msg=name)
    # the weights moved: the comparison is not between two untouched initialisations
    assert any(not torch.allclose(t, torch.zeros_like(t)) for n, t in a.items() if "lora_B" in n)
    one_log = open_artifact(single).manifest["metrics"]["final_parts"]
    two_log = double.manifest["metrics"]["final_parts"]
    for part in ("cl", "dpo", "kl"):
        assert abs(one_log[part] - two_log[part]) < 1e-4, (part, one_log, two_log)
