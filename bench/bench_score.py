"""Start-up cost of ``retr score``: the real CLI in a fresh process, cold vs warm kernel cache, vs plain ranx.

    .venv/bin/python bench/bench_score.py [--run RUN_ARTIFACT_OR_TREC_FILE] [--repeats 5]

Without ``--run``, a SciFact BM25 run (300 test queries x 1000 hits) is made first with the real CLI:
``retr search --queries scifact --split test`` (the BM25 index comes from $RETR_HOME/bm25 when cached).

Measured, each a fresh ``python`` process started with ``subprocess`` (the process model a user gets):

- ``retr score (cold)``: ``python -m retr score RUN --out TMP`` with an empty kernel cache folder
  (``NUMBA_CACHE_DIR`` = a new tmp dir): ranx's numba functions are compiled and written. Once.
- ``retr score (warm)``: the same command again, same cache folder: the functions are loaded from disk.
- baseline ``plain ranx``: ``python -c`` reading the same run and qrels (retr.data.trec), putting the run in
  trec_eval order (``trec_order``, as retr score does), then ``import ranx`` and ``ranx.evaluate(...,
  make_comparable=True)`` on the same metrics, without retr's cache (what scoring cost before this cache). It
  writes no report and draws no plot, so it does less than ``retr score``.
- with ``--before CHECKOUT`` (e.g. /work/main before this change): ``retr score`` of that checkout, same run, same
  process model, timed with the others (its own numba caching, whatever it is).

Warm and baseline are timed ``--repeats`` times, interleaved so that load from other processes hits both alike;
medians are reported. Wall time and CPU time (user + sys of the child) are printed, with the machine's load
average, because the machine is shared. The numbers of ``retr score`` (report.json) are checked against the
baseline's: they must be identical.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
METRICS = ["mrr@10", "ndcg@10", "recall@100", "recall@1000", "map"]  # retr score's defaults

PLAIN_RANX = """
import json, sys
from retr.data.datasets import Dataset
from retr.data.trec import read_run
from retr.evaluation.metrics import trec_order
import ranx
run_file, dataset, split, metrics = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4].split(",")
qrels = {q: docs for q, docs in Dataset(dataset).qrels(split).items() if docs}
run = trec_order({q: docs for q, docs in read_run(run_file).items() if q in qrels})
scores = ranx.evaluate(ranx.Qrels(qrels), ranx.Run(run), metrics, make_comparable=True, threads=1)
print(json.dumps({m: float(v) for m, v in scores.items()}))
"""


def timed(command: list[str], env: dict[str, str], cwd: Path = ROOT) -> tuple[float, float, str]:
    """Wall seconds, CPU seconds (user + sys of the child) and stdout of one fresh process run in ``cwd`` (first on
    the child's sys.path with ``python -m``)."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    done = subprocess.run(command, env=env, capture_output=True, text=True, cwd=cwd)
    wall = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if done.returncode != 0:
        sys.exit(f"failed ({done.returncode}): {' '.join(command)}\n{done.stderr[-3000:]}")
    return wall, (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime), done.stdout


def make_run(out: Path, env: dict[str, str]) -> Path:
    command = [sys.executable, "-m", "retr", "search", "--queries", "scifact", "--split", "test", "--out", str(out)]
    wall, _, _ = timed(command, env)
    print(f"made {out} with `retr search --queries scifact --split test` in {wall:.1f} s")
    return out


def run_info(run: Path) -> tuple[Path, str, str]:
    """The TREC file of a run artifact (or file), and the dataset and split it was searched on."""
    manifest = json.loads((run / "manifest.json").read_text()) if run.is_dir() else {}
    dataset = next((r for r in manifest.get("inputs", []) if r.get("kind") == "dataset"), {})
    return (run / "run.trec" if run.is_dir() else run), dataset.get("path", "scifact"), dataset.get("split", "test")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--run", type=Path, help="run artifact or TREC file (default: make a SciFact BM25 run)")
    parser.add_argument("--dataset", help="dataset whose qrels score a plain TREC file (default: the run's, scifact)")
    parser.add_argument("--before", type=Path, help="a retr checkout to time as well (retr score before a change)")
    parser.add_argument("--repeats", type=int, default=5, help="timed warm and baseline runs, median (default: 5)")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="bench-score-") as tmp:
        tmp_dir = Path(tmp)
        env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])}
        env.pop("NUMBA_CACHE_DIR", None)
        run = args.run or make_run(tmp_dir / "bm25-scifact", env)
        trec_file, dataset, split = run_info(run)
        dataset = args.dataset or dataset
        hits = sum(1 for _ in open(trec_file))
        print(f"run: {run} ({hits} hits); qrels: {dataset} {split}; metrics: {','.join(METRICS)}")

        score_env = {**env, "NUMBA_CACHE_DIR": str(tmp_dir / "ranx-kernels")}  # empty: the cold start
        out = iter(range(10**6))

        def retr_score(checkout: Path | None = None) -> tuple[float, float, dict[str, float]]:
            report = tmp_dir / f"report-{next(out)}"
            command = [sys.executable, "-m", "retr", "score", str(run), "--out", str(report)]
            if not run.is_dir():
                command += ["--dataset", dataset, "--split", split]
            if checkout is None:
                wall, cpu, _ = timed(command, score_env)
            else:  # run in the checkout, so that `python -m retr` imports its code
                wall, cpu, _ = timed(command, {**env, "PYTHONPATH": str(checkout.resolve())}, checkout.resolve())
            scores = next(iter(json.loads((report / "report.json").read_text())["runs"].values()))["scores"]
            return wall, cpu, scores

        def plain_ranx() -> tuple[float, float, dict[str, float]]:
            command = [sys.executable, "-c", PLAIN_RANX, str(trec_file), dataset, split, ",".join(METRICS)]
            wall, cpu, stdout = timed(command, env)
            return wall, cpu, json.loads(stdout.strip().splitlines()[-1])

        load = os.getloadavg()[0]
        cold_wall, cold_cpu, cold_scores = retr_score()
        warm, base, before = [], [], []
        for _ in range(args.repeats):
            warm.append(retr_score())
            base.append(plain_ranx())
            if args.before:
                before.append(retr_score(args.before))
        load = (load + os.getloadavg()[0]) / 2

    for (_, _, scores) in warm + base + before:
        if scores != cold_scores:
            sys.exit(f"numbers differ: {scores} != {cold_scores}")
    rows = {
        "retr score, cold cache": (cold_wall, cold_cpu),
        "retr score, warm cache": (statistics.median(w for w, _, _ in warm), statistics.median(c for _, c, _ in warm)),
        "baseline: plain ranx evaluate": (statistics.median(w for w, _, _ in base),
                                          statistics.median(c for _, c, _ in base)),
    }  # fmt: skip
    if before:
        rows[f"retr score of {args.before}"] = (statistics.median(w for w, _, _ in before),
                                                statistics.median(c for _, c, _ in before))
    print(f"\nload average (1 min) during the runs: {load:.1f} on {os.cpu_count()} CPUs; median of {args.repeats}")
    print(f"{'':34s} {'wall s':>8s} {'CPU s':>8s}")
    for name, (wall, cpu) in rows.items():
        print(f"{name:34s} {wall:8.2f} {cpu:8.2f}")
    warm_wall, warm_cpu = rows["retr score, warm cache"]
    base_wall, base_cpu = rows["baseline: plain ranx evaluate"]
    print(f"\nwarm / baseline: wall {warm_wall / base_wall:.2f}x, CPU {warm_cpu / base_cpu:.2f}x")
    print(f"warm / cold:     wall {warm_wall / cold_wall:.2f}x, CPU {warm_cpu / cold_cpu:.2f}x")
    if before:
        before_wall, before_cpu = rows[f"retr score of {args.before}"]
        print(f"warm / before:   wall {warm_wall / before_wall:.2f}x, CPU {warm_cpu / before_cpu:.2f}x")
    print(f"warm wall times: {', '.join(f'{w:.2f}' for w, _, _ in warm)}")
    print(f"numbers identical in all {1 + len(warm + base + before)} processes: {cold_scores}")


if __name__ == "__main__":
    main()
