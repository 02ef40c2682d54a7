"""Dense search: encode queries with the encoder recorded in a dense-index manifest, FAISS top-k in batches
(rescored with the full vectors when the index stores fewer bits, see :func:`rescore_plan`)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from retr.data.artifacts import Artifact, ArtifactError, open_artifact
from retr.data.errors import UsageError
from retr.data.trec import Run
from retr.retrieval.dense_layout import (EMBEDDINGS, IDS, INDEX, KIND, RESCORE_FACTOR, RESCORED_BY_DEFAULT,
                                         FullVectors, exact_scores, load_faiss, search_vectors)


def encoder_record(index: Artifact) -> dict[str, Any]:
    """The encoder input record (backbone identity + options) of a dense-index manifest."""
    for record in index.manifest.get("inputs", []):
        if record.get("kind") == "encoder":
            return record
    raise ArtifactError(f"{index.path}: the manifest records no encoder; rebuild the index with `retr index`")


def check_encoder(index: Artifact, requested: str | None = None) -> str:
    """The backbone spec to encode queries with; refuses one whose weights differ from the index's encoder."""
    from retr.retrieval.backbone import backbone_identity

    record = encoder_record(index)
    recorded = record["backbone"]
    if requested is None:
        return recorded.get("spec", record["id"])
    try:
        asked = backbone_identity(requested)
    except ArtifactError as error:
        raise ArtifactError(f"--encoder {requested}: {error}") from None
    if asked["sha256"] != recorded["sha256"]:
        raise ArtifactError(
            f"{index.path}: built with encoder {record['id']!r} ({recorded['sha256'][:12]}), not {requested!r} "
            f"({asked['sha256'][:12]}); search with --encoder {record['id']} (or none), or rebuild the index with "
            f"--encoder {requested}"
        )
    return requested


QUERY_SIDE = ("query_template", "max_query_length")  # encoder options that leave the indexed vectors valid


def query_options(index: Artifact, overrides: dict[str, Any] | None = None) -> dict[str, Any]:
    """The index's encoder options with query-side overrides (None = the index's value); others are refused."""
    overrides = {k: v for k, v in (overrides or {}).items() if v is not None}
    passage_side = set(overrides) - set(QUERY_SIDE)
    if passage_side:
        raise ArtifactError(f"{index.path}: {', '.join(sorted(passage_side))} would change the indexed vectors; "
                            "only the query side can change at search time (rebuild the index for the rest)")
    return {**encoder_record(index)["options"], **overrides}


def rescore_plan(index: Artifact, rescore: bool | None = None, factor: int = RESCORE_FACTOR) -> dict[str, Any]:
    """Whether a search of ``index`` rescores its candidates with the full vectors, and why (for the manifest).

    ``None``: yes for int8 and binary indexes. Asking for it where the index already scores with the vectors as
    encoded and ranks exactly (fp32 Flat or IVFn,Flat) is refused: it would change nothing."""
    precision = index.config.get("precision", "fp32")  # indexes from before precision existed are fp32
    factory = index.config.get("factory", "Flat")
    if factor < 1:
        raise UsageError(f"rescore factor must be >= 1, got {factor}")
    if rescore and exact_scores(factory, precision):
        raise UsageError(f"{index.path}: a {precision} {factory} index scores with the vectors as encoded; "
                         "--rescore would change nothing (drop it, or index at --precision int8/binary)")
    if rescore is None:
        on, why = precision in RESCORED_BY_DEFAULT, f"default for a {precision} index"
    else:
        on, why = bool(rescore), "set by --rescore/--no-rescore"
    return {"precision": precision, "rescore": on, "factor": factor if on else None, "why": why}


def search_dense(index: Artifact | str | Path, queries: dict[str, str], k: int = 1000, encoder: str | None = None,
                 batch_size: int = 64, search_params: str | None = None, progress: bool = False,
                 query_side: dict[str, Any] | None = None, rescore: bool | None = None,
                 rescore_factor: int = RESCORE_FACTOR) -> Run:
    """Top-``k`` documents per query, {query id: {doc id: inner product}}.

    Queries are encoded with the index's encoder and options (``encoder`` may name the same weights at another
    place; other weights are refused); ``query_side`` overrides the query template and length budget only.
    ``search_params`` overrides the index's FAISS parameters ("nprobe=32"). ``rescore`` / ``rescore_factor``: see
    :func:`rescore_plan`; a rescored hit's score is the inner product with the full float32 vector.
    """
    from tqdm.auto import tqdm

    from retr.retrieval.encoder import load_encoder

    artifact = index if isinstance(index, Artifact) else open_artifact(index, kind=KIND)
    if artifact.kind != KIND:
        raise ArtifactError(f"{artifact.path}: is a {artifact.kind!r} artifact, expected '{KIND}'")
    spec = check_encoder(artifact, encoder)
    plan = rescore_plan(artifact, rescore, rescore_factor)
    artifact.verify([INDEX, IDS])
    model = load_encoder(spec, **query_options(artifact, query_side))
    params = artifact.config.get("search_params", "") if search_params is None else search_params
    faiss_index = load_faiss(artifact.file(INDEX), search_params=params, binary=plan["precision"] == "binary")
    doc_ids = artifact.file(IDS).read_text().splitlines()
    full = None
    if plan["rescore"]:
        artifact.verify(under=EMBEDDINGS)
        try:
            full = FullVectors(artifact.path / EMBEDDINGS, len(doc_ids))
        except ValueError as error:
            raise ArtifactError(f"{error}; rebuild the index") from None
    run: Run = {}
    qids = list(queries)
    for start in tqdm(range(0, len(qids), batch_size), desc="search", unit="batch", disable=not progress):
        batch = qids[start:start + batch_size]
        vectors = model.encode_queries([queries[q] for q in batch])
        scores, rows = search_vectors(faiss_index, vectors, k, full, rescore_factor)
        for qid, row_scores, row_ids in zip(batch, scores, rows):
            run[qid] = {doc_ids[r]: float(s) for s, r in zip(row_scores, row_ids) if r >= 0}
    return run
