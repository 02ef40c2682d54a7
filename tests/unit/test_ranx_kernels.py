"""retr.evaluation.ranx_kernels: ranx's numba code cached on disk gives ranx's numbers, cold and warm.

Each scoring runs in its own process (the cache matters across processes): first with an empty cache folder (every
function compiled and written), then again (every function loaded from disk, none compiled). Both must equal plain
ranx (``import ranx``, no retr cache) in a third process, exactly.
"""

from __future__ import annotations

import json
import os
import random
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
METRICS = ["mrr@10", "ndcg@10", "recall@20", "map", "precision@5-l2"]

RETR_SCORE = """
import json, sys
from retr.evaluation import ranx_kernels
from retr.evaluation.metrics import evaluate
data = json.load(open(sys.argv[1]))
scores = evaluate(data["qrels"], data["run"], data["metrics"])
loaded = compiled = 0
for dispatcher in ranx_kernels.dispatchers():
    loaded += sum(dispatcher.stats.cache_hits.values())
    compiled += sum(dispatcher.stats.cache_misses.values())
print(json.dumps({"scores": scores, "loaded": loaded, "compiled": compiled}))
"""

PLAIN_RANX = """
import json, sys
import ranx
data = json.load(open(sys.argv[1]))
qrels = {q: docs for q, docs in data["qrels"].items() if docs}
run = {q: docs for q, docs in data["ordered_run"].items() if q in qrels}  # judged queries, in trec_eval order
scores = ranx.evaluate(ranx.Qrels(qrels), ranx.Run(run), data["metrics"], make_comparable=True)
retr = sorted(name for name in sys.modules if name.split(".")[0] == "retr")
print(json.dumps({"scores": {m: float(v) for m, v in scores.items()}, "retr_modules": retr}))
"""


def synthetic(seed: int = 3) -> dict:
    """Graded qrels and a run with tied scores, a judged query it lacks and an unjudged query it has."""
    rng = random.Random(seed)
    qrels, run = {}, {}
    for q in range(40):
        qid = f"q{q}"
        qrels[qid] = {f"d{rng.randrange(80)}": rng.choice([0, 1, 1, 2, 3]) for _ in range(rng.randint(1, 6))}
        if q != 7:
            run[qid] = {f"d{d}": float(rng.randint(0, 9)) for d in rng.sample(range(80), 30)}
    run["q_unjudged"] = {"d1": 2.0, "d2": 1.0}
    return {"qrels": qrels, "run": run, "metrics": METRICS}


def in_process(code: str, data: Path, home: Path) -> dict:
    env = {**os.environ, "RETR_HOME": str(home), "PYTHONPATH": str(ROOT)}
    env.pop("NUMBA_CACHE_DIR", None)
    done = subprocess.run([sys.executable, "-c", code, str(data)], env=env, capture_output=True, text=True,
                          timeout=900)  # fmt: skip
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout.strip().splitlines()[-1])


@pytest.mark.slow  # three fresh processes, one of them compiling every function: about 90 s of CPU
def test_cold_and_warm_cache_give_plain_ranx_numbers(tmp_path: Path) -> None:
    from retr.evaluation.metrics import trec_order

    data = tmp_path / "data.json"
    inputs = synthetic()
    data.write_text(json.dumps({**inputs, "ordered_run": trec_order(inputs["run"])}))
    home = tmp_path / "home"
    cache = home / "ranx-kernels"

    cold = in_process(RETR_SCORE, data, home)
    assert cold["compiled"] > 0 and cold["loaded"] == 0  # empty folder: everything compiled, then written
    assert list(cache.rglob("*.nbi")), "nothing was written to the cache folder"
    warm = in_process(RETR_SCORE, data, home)
    assert warm["compiled"] == 0 and warm["loaded"] > 0  # every function came from disk
    plain = in_process(PLAIN_RANX, data, tmp_path / "other-home")
    assert plain["retr_modules"] == []  # the reference really is ranx alone, without retr's cache

    assert set(cold["scores"]) == {"mrr@10", "ndcg@10", "recall@20", "map", "precision@5-l2"}
    assert cold["scores"] == plain["scores"]  # exactly: same code, same machine instructions
    assert warm["scores"] == plain["scores"]
    assert 0 < plain["scores"]["ndcg@10"] < 1


def test_cache_folder_follows_retr_home_and_numba_cache_dir(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    from retr.evaluation.ranx_kernels import cache_dir

    monkeypatch.delenv("NUMBA_CACHE_DIR", raising=False)
    monkeypatch.setenv("RETR_HOME", str(tmp_path / "home"))
    assert cache_dir() == tmp_path / "home" / "ranx-kernels"
    monkeypatch.setenv("NUMBA_CACHE_DIR", str(tmp_path / "mine"))  # the user's own setting is kept
    assert cache_dir() == tmp_path / "mine"
