"""MTEB on local data: our encoder, our dataset reader, mteb 2.x's own ``mteb.evaluate``.

- :class:`LocalRetrievalTask` is an ``AbsTaskRetrieval`` whose ``load_data`` fills corpus, queries and qrels of one
  split from :class:`retr.data.datasets.Dataset` (any spec: BEIR dir, a name under the data dir, an MS MARCO dir),
  so nothing is downloaded. MTEB joins a document's title and text as ``Doc.contents`` does.
- :class:`MtebEncoder` subclasses mteb's ``AbsEncoder`` around an Encoder (``encode_queries`` / ``encode_passages``
  returning float32 arrays): queries and documents go to the matching method, so the encoder's own query and passage
  templates apply and MTEB's task instructions are not added (the same texts as ``retr index`` / ``retr search``).
  Its ``ModelMeta`` asks for dot-product scoring, which is what the FAISS inner-product index ranks by.
- ``mteb.evaluate(..., cache=None, overwrite_strategy="always")``: no result cache is read or written.

MTEB scores with pytrec_eval at relevance level 1 and drops queries without judgments; with binary metrics at level 1
and ``missing="zero"`` the ranx path scores the same queries the same way, which a test checks on a small dataset.
"""

from __future__ import annotations

import os
import time
from typing import Any, Protocol

import numpy as np

from retr.data.artifacts import sha256_json
from retr.data.datasets import Dataset


class EncoderLike(Protocol):
    def encode_queries(self, texts: list[str], progress: bool = False) -> np.ndarray: ...

    def encode_passages(self, texts: list[str], progress: bool = False) -> np.ndarray: ...


def _mteb():
    os.environ.setdefault("HF_HUB_OFFLINE", "1")  # offline by default: everything here is local
    os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
    import mteb

    return mteb


def _identity(encoder: Any, spec: str) -> dict[str, Any]:
    identity = encoder.identity() if hasattr(encoder, "identity") else {"kind": "encoder", "path": spec}
    return dict(identity)


def make_encoder(encoder: EncoderLike, name: str, identity: dict[str, Any]):
    """An mteb ``AbsEncoder`` around ``encoder``; its ModelMeta names it and asks for dot-product scoring."""
    _mteb()
    from mteb.models.abs_encoder import AbsEncoder
    from mteb.models.model_meta import ModelMeta, ScoringFunction
    from mteb.types import PromptType

    class MtebEncoder(AbsEncoder):
        def __init__(self) -> None:
            self.model = encoder
            self.mteb_model_meta = ModelMeta.create_empty(
                overwrites={
                    "name": f"retr/{name}",
                    "revision": sha256_json(identity)[:12],
                    "similarity_fn_name": ScoringFunction.DOT_PRODUCT,
                    "embed_dim": getattr(encoder, "dim", None),
                    "framework": ["PyTorch"],
                }
            )

        def encode(self, inputs, *, task_metadata, hf_split, hf_subset, prompt_type=None, **kwargs):  # noqa: ANN001
            texts = [text for batch in inputs for text in batch["text"]]
            progress = bool(kwargs.get("show_progress_bar", False))
            if prompt_type == PromptType.query:
                vectors = encoder.encode_queries(texts, progress=progress)
            else:
                vectors = encoder.encode_passages(texts, progress=progress)
            return np.asarray(vectors, dtype=np.float32)

    return MtebEncoder()


def make_task(dataset: Dataset, split: str):
    """A local ``AbsTaskRetrieval`` over one split of ``dataset`` (loaded when MTEB asks for it)."""
    _mteb()
    from datasets import Dataset as HFDataset
    from mteb.abstasks.retrieval import AbsTaskRetrieval
    from mteb.abstasks.task_metadata import TaskMetadata

    metadata = TaskMetadata(
        type="Retrieval",
        name=f"retr-local-{dataset.name}",
        main_score="ndcg_at_10",
        description=f"Local retrieval task read by retr from {dataset.root or dataset.spec} (split {split}).",
        reference=None,
        dataset={"path": str(dataset.root or dataset.spec), "revision": "local"},
        category="t2t",
        eval_splits=[split],
        eval_langs=["eng-Latn"],
        date=None,
        dialect=None,
        domains=None,
        task_subtypes=None,
        license=None,
        annotations_creators=None,
        modalities=["text"],
        sample_creation=None,
        bibtex_citation=None,
    )

    class LocalRetrievalTask(AbsTaskRetrieval):
        def load_data(self, num_proc: int | None = None, **kwargs: Any) -> None:
            if self.data_loaded:
                return
            qrels = dataset.qrels(split)
            queries = dataset.queries(split)
            corpus = [{"id": d.id, "title": d.title, "text": d.text} for d in dataset.corpus()]
            self.dataset = {
                "default": {
                    split: {
                        "corpus": HFDataset.from_list(corpus),
                        "queries": HFDataset.from_list([{"id": q, "text": t} for q, t in queries.items()]),
                        "relevant_docs": {q: dict(d) for q, d in qrels.items()},
                        "top_ranked": None,
                    }
                }
            }
            self.data_loaded = True

    LocalRetrievalTask.metadata = metadata
    # the same self-hit convention as `retr search` on this data (MTEB's ArguAna/Quora tasks set it too)
    LocalRetrievalTask.ignore_identical_ids = dataset.self_hit_default(split)[0]
    return LocalRetrievalTask()


def _load_encoder(spec: str, **options: Any):
    from retr.retrieval.encoder import load_encoder

    return load_encoder(spec, **options)


def evaluate_mteb(
    encoder_spec: str | EncoderLike,
    dataset: str,
    split: str = "test",
    *,
    batch_size: int = 32,
    progress: bool = False,
    **encoder_options: Any,
) -> dict[str, Any]:
    """Run ``mteb.evaluate`` on a local dataset split; ``encoder_spec`` is a spec for ``load_encoder`` or an encoder.

    Returns ``{"encoder", "identity", "dataset", "task", "split", "mteb_version", "seconds", "scores"}`` where
    ``scores`` is MTEB's score dict (ndcg_at_10, mrr_at_10, recall_at_100, map_at_1000, main_score ...).
    """
    mteb = _mteb()
    if isinstance(encoder_spec, str):
        spec = encoder_spec
        encoder = _load_encoder(spec, **encoder_options)
    else:
        encoder, spec = encoder_spec, getattr(encoder_spec, "name", type(encoder_spec).__name__)
    identity = _identity(encoder, spec)
    data = Dataset(dataset)
    task = make_task(data, split)
    if not progress:
        import datasets

        datasets.disable_progress_bars()
    started = time.perf_counter()
    result = mteb.evaluate(
        make_encoder(encoder, os.path.basename(str(spec).rstrip("/")) or "encoder", identity),
        task,
        cache=None,
        overwrite_strategy="always",
        encode_kwargs={"batch_size": batch_size, "show_progress_bar": progress},
        co2_tracker=False,
        show_progress_bar=progress,
    )
    seconds = time.perf_counter() - started
    if result.exceptions:
        raise RuntimeError(f"mteb failed on {task.metadata.name}: {result.exceptions[0].exception}")
    raw = result.task_results[0].scores[split][0]
    scores = {k: float(v) for k, v in raw.items() if isinstance(v, (int, float, np.floating)) and not k.startswith("nauc")}
    return {
        "encoder": str(spec),
        "identity": identity,
        "dataset": data.as_input(split),
        "task": task.metadata.name,
        "split": split,
        "mteb_version": mteb.__version__,
        "seconds": round(seconds, 3),
        "scores": scores,
    }
