"""bench/gpu_check.py runs end to end on the CPU with tiny models (``--device cpu --tiny``), so the GPU check
cannot rot before a GPU arrives: every section yields its rows without an error, and the one-process torchrun
launch trains inside a process group (the DDP path of N GPUs)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_gpu_check_tiny_on_cpu(tmp_path):
    out = tmp_path / "gpu_check.json"
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}
    done = subprocess.run([sys.executable, str(ROOT / "bench" / "gpu_check.py"), "--device", "cpu", "--tiny",
                           "--out", str(out)], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-2000:]
    result = json.loads(out.read_text())
    rows = result["rows"]
    assert [r["name"] for r in rows if "error" in r] == []
    by_section = {s: [r for r in rows if r["section"] == s] for s in ("encode", "search", "train", "ddp")}
    assert len(by_section["encode"]) == 4 and all(r["tokens_per_s"] > 0 for r in by_section["encode"])
    minilm_st = next(r for r in by_section["encode"] if r["name"] == "MiniLM-L6 sentence-transformers")
    assert minilm_st["min_cosine_vs_retr"] > 0.999  # same model, pooling and truncation in both libraries
    flat = next(r for r in by_section["search"] if r["name"].startswith("Flat"))
    exact = next(r for r in by_section["search"] if r["name"].startswith("exact"))
    assert flat["recall_vs_flat"] == 1.0 and exact["recall_vs_flat"] > 0.99
    assert {(r["objective"], r["grad_cache"]) for r in by_section["train"]} == {
        ("cl", False), ("cl", True), ("grl", False), ("grl", True)}
    assert all(r["steps_per_s"] > 0 for r in by_section["train"])
    group = by_section["ddp"][0]["process_group"]
    assert {k: group[k] for k in ("backend", "world", "parallel")} == {"backend": "gloo", "world": 1, "parallel": "ddp"}
    assert group["held_parameters"] == group["parameters"] > 0  # a DDP replica holds the whole model
    assert "### train" in out.with_suffix(".md").read_text()
