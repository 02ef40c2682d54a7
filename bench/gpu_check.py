"""The GPU check (issue 10 item 3): on one CUDA device, in at most 8 minutes, a table and a JSON file of

- ``encode``: tokens/s of retr's encoder (bf16 and sdpa on CUDA, bidirectional mean pooling) against
  sentence-transformers on the same device, model and texts, for SmolLM2-135M and all-MiniLM-L6-v2; peak memory;
  the lowest cosine between the two libraries' vectors (MiniLM: same pooling and truncation, so near 1);
- ``search``: FAISS Flat and IVF on the CPU against the GPU (faiss-gpu when the installed faiss sees a GPU, else an
  exact top-k by ``torch`` on the GPU, named as such in the table), with recall@k against CPU Flat;
- ``train``: the real training loop (:func:`retr.training.train.train`) for CL and GRL, with and without GradCache:
  steps/s (median after the first step) and peak GPU memory;
- ``ddp``: ``torchrun --nproc-per-node 1 -m retr train``: one process group (nccl on CUDA, gloo on the CPU), the
  DDP path of N GPUs.

Each section fails soft: its error goes into its rows and the next section runs.

``--random-init`` draws the weights from each model's config: the GPU machine of this workplace cannot receive the
540 MB SmolLM2 checkpoint, and throughput and memory do not depend on the values of the weights (the cosine
column then compares two libraries on the same random model). ``--device cpu --tiny`` uses tiny random models,
a few texts and 2 steps: tests/unit/test_gpu_check.py runs it in CI so the script cannot rot.

    .venv/bin/python bench/gpu_check.py --training-set runs/scifact-train --out gpu_check.json
    .venv/bin/python bench/gpu_check.py --device cpu --tiny --out /tmp/gpu_check.json
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import traceback
from pathlib import Path
from typing import Any, Callable

ROOT = Path(__file__).resolve().parents[1]
WEIGHTS = ("model.safetensors", "pytorch_model.bin", "model.safetensors.index.json")


# ----------------------------------------------------------------------------------------------- set-up
def model_dir(spec: str) -> Path:
    """A local model folder for ``default``/``minilm`` (the embedded models) or a path."""
    from retr.retrieval import default_model

    if spec == "default":
        return default_model.default_model_dir()
    if spec == "minilm":
        return default_model.minilm_dir()
    return Path(spec)


def random_copy(source: Path, target: Path, decoder: bool) -> Path:
    """``source``'s config and tokenizer (and sentence-transformers files) with weights drawn from the config."""
    import torch
    from transformers import AutoConfig, AutoModel, AutoModelForCausalLM

    shutil.copytree(source, target, ignore=shutil.ignore_patterns(*WEIGHTS), dirs_exist_ok=True)
    config = AutoConfig.from_pretrained(source)
    torch.manual_seed(0)
    model = (AutoModelForCausalLM if decoder else AutoModel).from_config(config)
    model.save_pretrained(target)
    return target


def tiny_models(work: Path) -> dict[str, Path]:
    sys.path.insert(0, str(ROOT))
    from tests.unit.tiny_models import make_tiny_model

    return {"SmolLM2-135M": make_tiny_model(work / "tiny-llama", "llama", tied=True, max_positions=512),
            "MiniLM-L6": make_tiny_model(work / "tiny-bert", "bert")}


def tiny_training_set(work: Path) -> Path:
    sys.path.insert(0, str(ROOT))
    from tests.unit.training.helpers import write_training_set

    return write_training_set(work / "training-set", n_queries=8, n_negatives=3)


def read_texts(path: Path | None, n: int) -> list[str]:
    """``n`` passages ('title text') of a JSONL corpus (BEIR layout) or the built-in sentences of the tiny test."""
    if path is None:
        sys.path.insert(0, str(ROOT))
        from tests.unit.tiny_models import SENTENCES

        return [SENTENCES[i % len(SENTENCES)] * (1 + i % 3) for i in range(n)]
    texts = []
    with open(path, encoding="utf-8") as handle:
        for line in handle:
            doc = json.loads(line)
            texts.append(f"{doc.get('title') or ''} {doc['text']}".strip())
            if len(texts) == n:
                break
    return texts


def soft(rows: list[dict], section: str, name: str, run: Callable[[], dict]) -> None:
    """Run one measurement; an exception becomes the row's error and the check goes on."""
    print(f"[{section}] {name} ...", flush=True)
    began = time.perf_counter()
    try:
        row = run()
    except Exception as error:  # noqa: BLE001 - a failed measurement is a result of the check
        traceback.print_exc()
        row = {"error": f"{type(error).__name__}: {error}"[:300]}
    row = {"section": section, "name": name, **row, "seconds": round(time.perf_counter() - began, 2)}
    print(f"[{section}] {json.dumps(row)}", flush=True)
    rows.append(row)


def synchronize(device: str) -> None:
    import torch

    if device.startswith("cuda"):
        torch.cuda.synchronize()


def reset_peak(device: str) -> None:
    import torch

    if device.startswith("cuda"):
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats()


def peak_mib(device: str) -> float | None:
    import torch

    return round(torch.cuda.max_memory_allocated() / 2**20, 1) if device.startswith("cuda") else None


# ----------------------------------------------------------------------------------------------- encode
def encode_rows(rows: list[dict], models: dict[str, Path], texts: list[str], device: str, max_length: int) -> None:
    import numpy as np
    import torch

    from retr.retrieval.encoder import load_encoder

    for name, path in models.items():
        state: dict[str, Any] = {}
        decoder = name.startswith("SmolLM2")

        def retr_run(name=name, path=path, state=state) -> dict:
            reset_peak(device)
            encoder = load_encoder(str(path), device=device, pooling="mean", attention="bidirectional",
                                   max_passage_length=max_length)
            sequences = encoder.tokenize(texts, "passage")
            tokens = sum(len(s) for s in sequences)
            encoder.encode_ids(sequences[: min(32, len(sequences))])  # warm-up (kernels, allocator)
            synchronize(device)
            start = time.perf_counter()
            state["retr"] = encoder.encode_ids(sequences)
            seconds = time.perf_counter() - start
            state["tokens"] = tokens
            row = {"library": "retr", "dtype": str(next(encoder.model.parameters()).dtype).replace("torch.", ""),
                   "attention_impl": getattr(encoder.model.config, "_attn_implementation", None),
                   "texts": len(texts), "tokens": tokens, "tokens_per_s": round(tokens / seconds),
                   "peak_mib": peak_mib(device)}
            del encoder
            return row

        def st_run(name=name, path=path, state=state, decoder=decoder) -> dict:
            from sentence_transformers import SentenceTransformer

            reset_peak(device)
            dtype = torch.bfloat16 if device.startswith("cuda") else torch.float32
            model = SentenceTransformer(str(path), device=device, model_kwargs={"dtype": dtype})
            model.max_seq_length = max_length
            if model.tokenizer.pad_token is None:
                model.tokenizer.pad_token = model.tokenizer.eos_token
            batch = 128 if device.startswith("cuda") else 32
            model.encode(texts[:32], batch_size=batch)
            synchronize(device)
            start = time.perf_counter()
            vectors = model.encode(texts, batch_size=batch, normalize_embeddings=True, convert_to_numpy=True)
            seconds = time.perf_counter() - start
            tokens = state.get("tokens", 0)
            row = {"library": "sentence-transformers", "dtype": str(dtype).replace("torch.", ""), "texts": len(texts),
                   "tokens": tokens, "tokens_per_s": round(tokens / seconds), "peak_mib": peak_mib(device)}
            if "retr" in state and not decoder:  # sentence-transformers runs a decoder causally, retr bidirectionally
                cos = np.sum(state["retr"] * vectors.astype(np.float32), axis=1)
                row["min_cosine_vs_retr"] = round(float(cos.min()), 4)
            del model
            return row

        soft(rows, "encode", f"{name} retr", retr_run)
        soft(rows, "encode", f"{name} sentence-transformers", st_run)


# ----------------------------------------------------------------------------------------------- search
def search_rows(rows: list[dict], device: str, n: int, dim: int, nq: int, k: int, nlist: int, nprobe: int) -> None:
    import numpy as np

    rng = np.random.default_rng(0)
    base = rng.standard_normal((n, dim), dtype=np.float32)
    base /= np.linalg.norm(base, axis=1, keepdims=True)
    queries = base[rng.choice(n, nq, replace=False)] + 0.1 * rng.standard_normal((nq, dim), dtype=np.float32)
    truth: dict[str, Any] = {}

    def timed(search: Callable[[], Any]) -> tuple[Any, float]:
        search()  # warm-up
        start = time.perf_counter()
        ids = search()
        return ids, time.perf_counter() - start

    def recall(ids) -> float | None:
        if "flat" not in truth:
            return None
        hits = [len(set(a) & set(b)) for a, b in zip(ids.tolist(), truth["flat"].tolist())]
        return round(sum(hits) / (len(hits) * k), 4)

    def row(ids, seconds: float, build: float, where: str) -> dict:
        return {"where": where, "vectors": n, "dim": dim, "queries": nq, "k": k, "build_s": round(build, 2),
                "search_s": round(seconds, 4), "queries_per_s": round(nq / seconds), "recall_vs_flat": recall(ids)}

    def cpu_flat() -> dict:
        import faiss

        start = time.perf_counter()
        index = faiss.IndexFlatIP(dim)
        index.add(base)
        build = time.perf_counter() - start
        ids, seconds = timed(lambda: index.search(queries, k)[1])
        truth["flat"] = ids
        return row(ids, seconds, build, f"cpu faiss {faiss.__version__}, {faiss.omp_get_max_threads()} threads")

    def cpu_ivf() -> dict:
        import faiss

        start = time.perf_counter()
        index = faiss.IndexIVFFlat(faiss.IndexFlatIP(dim), dim, nlist, faiss.METRIC_INNER_PRODUCT)
        index.train(base[rng.choice(n, min(n, 64 * nlist), replace=False)])
        index.add(base)
        index.nprobe = nprobe
        build = time.perf_counter() - start
        truth["ivf"] = index
        ids, seconds = timed(lambda: index.search(queries, k)[1])
        return row(ids, seconds, build, f"cpu faiss IVF{nlist},Flat nprobe {nprobe}")

    def gpu_faiss(kind: str) -> Callable[[], dict]:
        def run() -> dict:
            import faiss

            if not hasattr(faiss, "StandardGpuResources") or faiss.get_num_gpus() == 0:
                return {"where": "faiss-gpu", "error": f"not run: faiss {faiss.__version__} here has no GPU support"}
            resources = faiss.StandardGpuResources()
            start = time.perf_counter()
            if kind == "flat":
                cpu = faiss.IndexFlatIP(dim)
                cpu.add(base)
            else:
                cpu = truth["ivf"]
            index = faiss.index_cpu_to_gpu(resources, 0, cpu)
            if kind == "ivf":
                index.nprobe = nprobe
            build = time.perf_counter() - start
            ids, seconds = timed(lambda: index.search(queries, k)[1])
            return row(ids, seconds, build, f"faiss-gpu {kind}")
        return run

    def torch_exact() -> dict:
        import torch

        start = time.perf_counter()
        matrix = torch.from_numpy(base).to(device)
        q = torch.from_numpy(queries).to(device)
        synchronize(device)
        build = time.perf_counter() - start

        def search():
            ids = torch.cat([torch.topk(chunk @ matrix.T, k, dim=1).indices for chunk in q.split(256)])
            return ids.cpu().numpy()

        ids, seconds = timed(search)
        return row(ids, seconds, build, f"torch exact fp32 top-k on {device}")

    soft(rows, "search", "Flat (CPU)", cpu_flat)
    soft(rows, "search", f"IVF{nlist} (CPU)", cpu_ivf)
    if device.startswith("cuda"):
        soft(rows, "search", "Flat (faiss-gpu)", gpu_faiss("flat"))
        soft(rows, "search", f"IVF{nlist} (faiss-gpu)", gpu_faiss("ivf"))
    soft(rows, "search", f"exact (torch, {device})", torch_exact)


# ----------------------------------------------------------------------------------------------- train
def train_options(args: argparse.Namespace, model: Path, training_set: Path) -> dict[str, Any]:
    return {"data": [str(training_set)], "model": str(model), "batch_size": args.train_batch,
            "negatives": args.negatives, "max_query_length": 32, "max_passage_length": args.train_length,
            "chunk_size": args.chunk_size, "max_steps": args.steps, "lr": 1e-4, "checkpoint_every": 0,
            "device": args.device, "seed": 0}


def steps_per_s(artifact: Path, batch_size: int) -> float:
    """Median optimizer steps per second over the logged steps after the first (a warm-up)."""
    records = [json.loads(line) for line in (artifact / "train_log.jsonl").read_text().splitlines() if line]
    rates = [r["samples_per_s"] / batch_size for r in records[1:]] or [records[0]["samples_per_s"] / batch_size]
    return round(statistics.median(rates), 3)


def train_rows(rows: list[dict], args: argparse.Namespace, model: Path, training_set: Path, work: Path) -> None:
    from retr.data.artifacts import open_artifact
    from retr.training.config import TrainConfig
    from retr.training.train import train

    for objective in ("cl", "grl"):
        for grad_cache in (False, True):
            def run(objective=objective, grad_cache=grad_cache) -> dict:
                reset_peak(args.device)
                out = work / f"train-{objective}-{'gc' if grad_cache else 'plain'}"
                cfg = TrainConfig(objective=objective, grad_cache=grad_cache, out=out,
                                  **train_options(args, model, training_set))
                train(cfg)
                metrics = open_artifact(out, "model").manifest["metrics"]
                return {"objective": objective, "grad_cache": grad_cache, "batch": f"{cfg.batch_size}x(1+{cfg.negatives})",
                        "passage_tokens": cfg.max_passage_length, "precision": metrics.get("precision"),
                        "steps": cfg.max_steps, "steps_per_s": steps_per_s(out, cfg.batch_size),
                        "peak_mib": peak_mib(args.device)}
            soft(rows, "train", f"{objective} {'GradCache' if grad_cache else 'no GradCache'}", run)


def ddp_rows(rows: list[dict], args: argparse.Namespace, model: Path, training_set: Path, work: Path) -> None:
    def run() -> dict:
        from retr.data.artifacts import open_artifact

        out = work / "train-ddp"
        options = {"objective": "cl", **train_options(args, model, training_set), "out": out}
        flags = []
        for key, value in options.items():
            for item in value if isinstance(value, list) else [value]:
                flags.append(f"--{key.replace('_', '-')}={item}")
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        command = [sys.executable, "-m", "torch.distributed.run", "--nproc-per-node=1", "--nnodes=1",
                   f"--master-port={port}", "-m", "retr", "train", *flags]
        env = {**os.environ, "PYTHONPATH": f"{ROOT}{os.pathsep}{os.environ.get('PYTHONPATH', '')}"}
        done = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
        if done.returncode:
            raise RuntimeError(f"torchrun exited {done.returncode}: {done.stderr.strip()[-300:]}")
        manifest = open_artifact(out, "model").manifest
        return {"objective": "cl", "grad_cache": manifest["config"]["grad_cache"], "launcher": "torchrun --nproc-per-node 1",
                "process_group": manifest["metrics"].get("distributed"), "steps": args.steps,
                "steps_per_s": steps_per_s(out, args.train_batch), "peak_mib": manifest["timing"].get("peak_gpu_mib")}

    soft(rows, "ddp", "1-process torchrun DDP step", run)


# ----------------------------------------------------------------------------------------------- report
COLUMNS = {
    "encode": ("name", "dtype", "attention_impl", "texts", "tokens", "tokens_per_s", "peak_mib", "min_cosine_vs_retr"),
    "search": ("name", "where", "vectors", "dim", "queries", "build_s", "search_s", "queries_per_s", "recall_vs_flat"),
    "train": ("name", "objective", "grad_cache", "batch", "passage_tokens", "precision", "steps", "steps_per_s", "peak_mib"),
    "ddp": ("name", "launcher", "process_group", "grad_cache", "steps", "steps_per_s", "peak_mib"),
}


def markdown(rows: list[dict], header: dict) -> str:
    lines = [f"GPU check: {header['device_name']} ({header['device']}), torch {header['torch']}, "
             f"transformers {header['transformers']}, faiss {header.get('faiss')}, {header['date']}", ""]
    for section, columns in COLUMNS.items():
        chosen = [r for r in rows if r["section"] == section]
        if not chosen:
            continue
        lines += [f"### {section}", "", "| " + " | ".join(columns) + " | error |",
                  "|" + "---|" * (len(columns) + 1)]
        for r in chosen:
            cells = ["" if r.get(c) is None else str(r.get(c)) for c in columns]
            lines.append("| " + " | ".join(cells) + f" | {r.get('error', '')} |")
        lines.append("")
    return "\n".join(lines)


def environment(device: str) -> dict[str, Any]:
    import torch
    import transformers

    header = {"device": device, "torch": torch.__version__, "transformers": transformers.__version__,
              "date": time.strftime("%Y-%m-%d"),
              "device_name": torch.cuda.get_device_name() if device.startswith("cuda") else "CPU"}
    try:
        import faiss

        header["faiss"] = faiss.__version__
    except ImportError:
        header["faiss"] = None
    return header


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--device", default="cuda", help="cuda (the check) or cpu (with --tiny: the CI run)")
    parser.add_argument("--tiny", action="store_true", help="tiny random models, few texts, 2 steps")
    parser.add_argument("--smollm2", default="default", help="SmolLM2 model: 'default' (embedded) or a folder")
    parser.add_argument("--minilm", default="minilm", help="MiniLM model: 'minilm' (embedded) or a folder")
    parser.add_argument("--random-init", action="store_true", help="weights drawn from each model's config")
    parser.add_argument("--texts", type=Path, help="JSONL corpus to encode (default: SciFact's, from the data dir)")
    parser.add_argument("--n-texts", type=int, default=4000)
    parser.add_argument("--max-length", type=int, default=256, help="passage tokens when encoding")
    parser.add_argument("--training-set", type=Path, help="a `retr mine` training set (required unless --tiny)")
    parser.add_argument("--train-batch", type=int, default=32, help="queries per training step")
    parser.add_argument("--negatives", type=int, default=3)
    parser.add_argument("--train-length", type=int, default=128, help="passage tokens when training")
    parser.add_argument("--chunk-size", type=int, default=32, help="sequences per forward chunk (GradCache chunks)")
    parser.add_argument("--steps", type=int, default=6, help="training steps per set-up (the first is a warm-up)")
    parser.add_argument("--vectors", type=int, default=1_000_000, help="search: vectors in the index")
    parser.add_argument("--sections", default="encode,search,train,ddp")
    parser.add_argument("--out", type=Path, default=Path("gpu_check.json"), help="JSON results (a .md table beside)")
    parser.add_argument("--work", type=Path, help="scratch folder (default: a temporary one, removed)")
    args = parser.parse_args()
    sections = set(args.sections.split(","))

    import torch

    if args.device.startswith("cuda") and not torch.cuda.is_available():
        parser.error("no CUDA device here; use --device cpu --tiny for the CI run")
    work = args.work or Path(tempfile.mkdtemp(prefix="retr-gpu-check-"))
    work.mkdir(parents=True, exist_ok=True)
    if args.tiny:
        models = tiny_models(work)
        training_set = tiny_training_set(work)
        texts = read_texts(None, 48)
        args.train_batch, args.train_length, args.chunk_size, args.steps = 4, 16, 4, 2
        args.vectors, args.max_length = 2000, 32
        search_shape = dict(dim=32, nq=50, k=10, nlist=16, nprobe=4)
    else:
        if args.training_set is None and sections & {"train", "ddp"}:
            parser.error("--training-set is required for the train and ddp sections (or use --tiny)")
        models = {"SmolLM2-135M": model_dir(args.smollm2), "MiniLM-L6": model_dir(args.minilm)}
        if args.random_init:
            models = {name: random_copy(path, work / f"{name}-random", decoder=name.startswith("SmolLM2"))
                      for name, path in models.items()}
        if args.texts is None:
            from retr.data.datasets import Dataset

            args.texts = Dataset("scifact").root / "corpus.jsonl"
        texts = read_texts(args.texts, args.n_texts)
        training_set = args.training_set
        search_shape = dict(dim=384, nq=1000, k=100, nlist=1024, nprobe=32)

    header = environment(args.device)
    print(json.dumps(header), flush=True)
    rows: list[dict] = []
    started = time.perf_counter()
    if "encode" in sections:
        encode_rows(rows, models, texts, args.device, args.max_length)
    if "search" in sections:
        search_rows(rows, args.device, args.vectors, **search_shape)
    if "train" in sections:
        train_rows(rows, args, models["SmolLM2-135M"], training_set, work)
    if "ddp" in sections:
        ddp_rows(rows, args, models["SmolLM2-135M"], training_set, work)
    header["total_seconds"] = round(time.perf_counter() - started, 1)
    header["random_init"] = bool(args.random_init or args.tiny)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({"environment": header, "rows": rows}, indent=1) + "\n")
    table = markdown(rows, header)
    args.out.with_suffix(".md").write_text(table + "\n")
    print(table)
    if args.work is None:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    sys.path.insert(0, str(ROOT))
    main()
