"""glibc malloc with retr's settings (freed memory kept, retr/retrieval/allocator.py) against glibc's defaults.

Each measurement is a fresh ``retr`` process (malloc settings are per process), the two set-ups interleaved,
``--repeats`` times: ``system`` (baseline: ``RETR_MALLOC=system``) and ``kept`` (retr's default). Workloads, as
the demo runs them:

- ``index``: ``retr index`` of ``--docs`` passages of a corpus with the default SmolLM2, int8, 128 tokens;
- ``train``: ``retr train`` of ``--steps`` CL steps (16 queries, 1 hard negative + in-batch, 64-token passages,
  no GradCache, the demo's cl-model settings) on a mined training set.

Printed per workload and set-up (medians): wall and the stage's own seconds (manifest timing), user and system
CPU seconds, minor page faults and peak RSS of the process; the ratio is baseline time / this time. The outputs
must agree: identical index vectors, identical final training loss.

    python bench/bench_malloc.py --corpus runs/demo/eval-corpus --mined runs/demo/mined --docs 200 --steps 2
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
SETUPS = {"system": {"RETR_MALLOC": "system"}, "kept": {"RETR_MALLOC": ""}}


def run_child(argv: list[str], env: dict[str, str]) -> dict[str, float]:
    """Run ``python -m retr ARGV``; wall seconds and the child's own rusage (wait4)."""
    started = time.perf_counter()
    proc = subprocess.Popen([sys.executable, "-m", "retr", *argv], cwd=ROOT, env={**os.environ, **env},
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    stderr = proc.stderr.read() if proc.stderr else b""
    _, status, usage = os.wait4(proc.pid, 0)
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode != 0:
        raise SystemExit(f"retr {' '.join(argv)} failed ({proc.returncode}):\n{stderr.decode()[-2000:]}")
    return {"wall": time.perf_counter() - started, "user": usage.ru_utime, "sys": usage.ru_stime,
            "minflt": usage.ru_minflt, "maxrss_mib": usage.ru_maxrss / 1024}


def index_argv(args: argparse.Namespace, out: Path) -> list[str]:
    return ["index", "--corpus", str(args.corpus), "--encoder", args.encoder, "--limit", str(args.docs),
            "--quantize", "int8", "--max-passage-length", "128", "--threads", str(args.threads), "--out", str(out)]


def train_argv(args: argparse.Namespace, out: Path) -> list[str]:
    return ["train", "--objective", "cl", "--data", str(args.mined), "--model", args.encoder, "--max-steps",
            str(args.steps), "--batch-size", "16", "--negatives", "1", "--max-query-length", "32",
            "--max-passage-length", "64", "--lr", "3e-4", "--no-grad-cache", "--threads", str(args.threads),
            "--seed", "0", "--out", str(out)]


def index_output(out: Path) -> np.ndarray:
    chunks = sorted((out / "embeddings").glob("*.npy"))
    return np.concatenate([np.load(chunk) for chunk in chunks])


def stage_seconds(out: Path) -> float:
    return float(json.loads((out / "manifest.json").read_text())["timing"]["seconds"])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--corpus", type=Path, help="corpus for the index workload (e.g. runs/demo/eval-corpus)")
    parser.add_argument("--mined", type=Path, help="training set for the train workload (e.g. runs/demo/mined)")
    parser.add_argument("--encoder", default="default")
    parser.add_argument("--docs", type=int, default=200)
    parser.add_argument("--steps", type=int, default=2)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=2)
    args = parser.parse_args()
    workloads = {name: make for name, make, given in (("index", index_argv, args.corpus),
                                                       ("train", train_argv, args.mined)) if given}
    if not workloads:
        parser.error("give --corpus (index workload) and/or --mined (train workload)")
    rows = []
    with tempfile.TemporaryDirectory(prefix="bench-malloc-") as tmp:
        for workload, make_argv in workloads.items():
            results: dict[str, list[dict]] = {name: [] for name in SETUPS}
            outputs: dict[str, object] = {}
            for repeat in range(args.repeats):
                for name, env in SETUPS.items():
                    out = Path(tmp) / f"{workload}-{name}-{repeat}"
                    measured = run_child(make_argv(args, out), env)
                    measured["stage"] = stage_seconds(out)
                    results[name].append(measured)
                    outputs[name] = (index_output(out) if workload == "index"
                                     else json.loads((out / "manifest.json").read_text())["metrics"]["final_loss"])
            same = (np.array_equal(outputs["system"], outputs["kept"]) if workload == "index"
                    else outputs["system"] == outputs["kept"])
            base = statistics.median(r["stage"] for r in results["system"])
            for name in SETUPS:
                median = {k: statistics.median(r[k] for r in results[name]) for k in results[name][0]}
                rows.append((workload, name, median, base / median["stage"], same))
    print(f"{args.repeats} interleaved repeats, {args.threads} threads, encoder {args.encoder}; medians")
    print(f"{'workload':>8} {'malloc':>17} {'wall s':>8} {'stage s':>8} {'user s':>8} {'sys s':>7} "
          f"{'minflt':>10} {'peak MiB':>9} {'vs system':>9}  same output")
    for workload, name, m, ratio, same in rows:
        label = f"{name}{' [baseline]' if name == 'system' else ''}"
        print(f"{workload:>8} {label:>17} {m['wall']:8.1f} {m['stage']:8.1f} {m['user']:8.1f} {m['sys']:7.1f} "
              f"{m['minflt']:10,.0f} {m['maxrss_mib']:9,.0f} {'x%.2f' % ratio:>9}  {same}")


if __name__ == "__main__":
    main()
