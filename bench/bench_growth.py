"""Growth curves: wall time and peak memory of each stage at 10k, 100k and 1M passages, and a projection to 8.8M.

Corpora are built from the shared Wikipedia passages (83,434 real passages); beyond that, passage j is passage
j mod 83,434 with its words shuffled by seed j, so term statistics stay Wikipedia-like while every document is new.
Queries (10k by default) are the first 12 words of seeded random passages, judged relevant to their passage.

Every stage runs as its own process (the real CLI where there is one), and its peak resident memory is read from
``os.wait4`` for that process alone:

- ``mine (BM25 index + search)``: ``retr mine`` with an empty BM25 cache: Lucene indexing of the corpus plus BM25
  retrieval of every query (k=100) and negative sampling;
- ``mine (index cached)``: the same again into another output: retrieval and sampling only;
- ``encode sample``: ``retr index --encoder minilm --limit 2000`` (the same 2,000 passages at every size; tokens/s
  must not fall with corpus size, i.e. the corpus is streamed, not loaded);
- ``faiss Flat`` / ``faiss IVF,PQ``: build and search (1,000 queries, k=10) over N synthetic 384-d vectors (real
  vectors for 1M passages would take days to encode on a CPU; index cost depends on N and d, not on the text).

The baseline of every ratio is the smallest size measured in the same run (time per passage relative to it).

    python bench/bench_growth.py --sizes 10000 100000 1000000 --json bench-growth.json
"""

from __future__ import annotations

import argparse
import gzip
import json
import os
import random
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
WIKI = "wikipedia/passages.jsonl.gz"
FAISS_SCRIPT = r"""
import sys, time, numpy as np, faiss
from retr.indexing.faiss_index import build_faiss
from retr.retrieval.dense_layout import search_faiss, set_search_params
n, factory, params = int(sys.argv[1]), sys.argv[2], sys.argv[3]
rng = np.random.default_rng(0)
centres = rng.standard_normal((1024, 384)).astype("float32")
vectors = np.empty((n, 384), dtype="float32")
for start in range(0, n, 100_000):
    rows = min(100_000, n - start)
    vectors[start:start + rows] = centres[rng.integers(0, 1024, rows)] + 0.5 * rng.standard_normal((rows, 384), dtype="float32")
faiss.normalize_L2(vectors)
queries = vectors[rng.choice(n, 1000, replace=False)] + 0.05
faiss.normalize_L2(queries)
t0 = time.perf_counter(); index = build_faiss(vectors, factory, train_size=65536, seed=0); build = time.perf_counter() - t0
set_search_params(index, params)
t0 = time.perf_counter(); search_faiss(index, queries, 10); search = time.perf_counter() - t0
print(f"RESULT build_s={build:.3f} search_s={search:.3f}")
"""


def data_root() -> Path:
    sys.path.insert(0, str(REPO))
    from retr.data.datasets import data_root as root

    return root()


def build_corpus(folder: Path, size: int, queries: int, seed: int = 0) -> Path:
    """A BEIR-layout dataset of ``size`` passages and ``queries`` train queries (see the module docstring)."""
    with gzip.open(data_root() / WIKI, "rt", encoding="utf-8") as handle:
        source = [json.loads(line) for line in handle]
    folder.mkdir(parents=True, exist_ok=True)
    rng = random.Random(seed)
    chosen = sorted(rng.sample(range(size), queries))
    with open(folder / "corpus.jsonl", "w", encoding="utf-8") as out:
        for j in range(size):
            doc = source[j % len(source)]
            text = doc["text"]
            if j >= len(source):
                words = text.split()
                random.Random(j).shuffle(words)
                text = " ".join(words)
            out.write(json.dumps({"_id": f"p{j}", "title": doc["title"], "text": text}) + "\n")
    texts = {}
    with open(folder / "corpus.jsonl", encoding="utf-8") as handle:
        wanted = set(chosen)
        for j, line in enumerate(handle):
            if j in wanted:
                texts[j] = " ".join(json.loads(line)["text"].split()[:12])
    with open(folder / "queries.jsonl", "w", encoding="utf-8") as out:
        for j in chosen:
            out.write(json.dumps({"_id": f"q{j}", "text": texts[j]}) + "\n")
    (folder / "qrels").mkdir(exist_ok=True)
    (folder / "qrels" / "train.tsv").write_text(
        "query-id\tcorpus-id\tscore\n" + "".join(f"q{j}\tp{j}\t1\n" for j in chosen))
    return folder


def run_measured(command: list[str], env: dict[str, str]) -> dict[str, float | str]:
    """Wall seconds, peak RSS (MiB) and stdout of one process, reaped by ``os.wait4`` so its own peak is known."""
    started = time.perf_counter()
    process = subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    stdout = process.stdout.read()
    _, status, usage = os.wait4(process.pid, 0)
    process.returncode = os.waitstatus_to_exitcode(status)
    wall = time.perf_counter() - started
    if process.returncode:
        raise SystemExit(f"failed ({process.returncode}): {' '.join(command)}")
    return {"seconds": round(wall, 2), "peak_mib": round(usage.ru_maxrss / 1024, 1), "stdout": stdout}


def stages(size: int, work: Path, queries: int, env: dict[str, str]) -> dict[str, dict]:
    corpus = build_corpus(work / f"corpus-{size}", size, queries)
    retr = [sys.executable, "-m", "retr"]
    cache = work / f"bm25-cache-{size}"
    mine = [*retr, "mine", "--dataset", str(corpus), "--split", "train", "--k", "100", "--bm25-cache", str(cache)]
    results = {
        "mine (BM25 index + search)": run_measured([*mine, "--out", str(work / f"mine-a-{size}")], env),
        "mine (index cached)": run_measured([*mine, "--out", str(work / f"mine-b-{size}")], env),
    }
    out = work / f"encode-{size}"
    results["encode sample"] = run_measured([*retr, "index", "--corpus", str(corpus), "--encoder", "minilm",
                                             "--limit", "2000", "--max-passage-length", "128", "--out", str(out)], env)
    timing = json.loads((out / "manifest.json").read_text())["timing"]
    results["encode sample"]["tokens_per_s"] = timing.get("tokens_per_s")
    lists = max(64, int(4 * size ** 0.5))
    for name, factory, params in (("faiss Flat", "Flat", ""), ("faiss IVF,PQ", f"IVF{lists},PQ48", "nprobe=16")):
        result = run_measured([sys.executable, "-c", FAISS_SCRIPT, str(size), factory, params], env)
        line = next(l for l in result["stdout"].splitlines() if l.startswith("RESULT"))
        result.update({k: float(v) for k, v in (item.split("=") for item in line.split()[1:])})
        results[name] = result
    for result in results.values():
        result.pop("stdout", None)
    return results


def projection(curve: dict[int, dict[str, dict]], target: int = 8_841_823) -> dict[str, dict[str, float]]:
    """Per stage, the growth between the two largest sizes extended linearly to ``target`` passages (never below
    the largest measurement: fixed costs such as JVM and model start-up dominate small corpora)."""
    small, large = sorted(curve)[-2:]
    out = {}
    for stage in curve[large]:
        row = {}
        for key in ("seconds", "peak_mib"):
            y1, y2 = curve[small][stage][key], curve[large][stage][key]
            row[key] = round(max(y2, y2 + (y2 - y1) / (large - small) * (target - large)), 1)
        out[stage] = row
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", type=int, nargs="+", default=[10_000, 100_000, 1_000_000])
    parser.add_argument("--queries", type=int, default=10_000)
    parser.add_argument("--work", type=Path, default=None, help="scratch folder (default: a temp dir)")
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args()
    env = {**os.environ, "PYTHONPATH": f"{REPO}{os.pathsep}{os.environ.get('PYTHONPATH', '')}",
           "TOKENIZERS_PARALLELISM": "false", "HF_HUB_OFFLINE": "1"}
    work = args.work or Path(tempfile.mkdtemp(prefix="retr-growth-"))
    curve = {}
    for size in sorted(args.sizes):
        curve[size] = stages(size, work, min(args.queries, size), env)
        print(f"{size:>9,} passages: " + "; ".join(f"{k} {v['seconds']} s / {v['peak_mib']} MiB"
                                                   for k, v in curve[size].items()), flush=True)
    base = min(curve)
    print(f"\n| stage | " + " | ".join(f"{s:,}: s / MiB / s per passage vs {base:,}" for s in curve) + " |")
    print("|---|" + "---:|" * len(curve))
    for stage in curve[base]:
        cells = []
        for size in curve:
            r, b = curve[size][stage], curve[base][stage]
            per = (r["seconds"] / size) / max(b["seconds"] / base, 1e-12)
            extra = f", {r['tokens_per_s']} tok/s" if "tokens_per_s" in r else ""
            cells.append(f"{r['seconds']} / {r['peak_mib']} / x{per:.2f}{extra}")
        print(f"| {stage} | " + " | ".join(cells) + " |")
    projected = projection(curve) if len(curve) > 1 else {}
    if projected:
        print("\nlinear projection to 8,841,823 passages (MS MARCO), extending the growth between the two largest sizes:")
    for stage, row in projected.items():
        print(f"  {stage}: {row['seconds']} s, {row['peak_mib']} MiB")
    if args.json:
        args.json.write_text(json.dumps({"curve": curve, "projection_8.8M": projected}, indent=2) + "\n")


if __name__ == "__main__":
    main()
