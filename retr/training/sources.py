"""Where training examples come from: one or more mined training sets, or one or more passage corpora (LLaRA).

Several sources are concatenated in the order given (each capped at ``max_examples`` when that is set); the
epoch order (:class:`retr.training.data.Schedule`) is a seeded permutation of the union, so each set is sampled in
proportion to its size, and the same seed gives the same micro-batches. Each source is one manifest input.
"""

from __future__ import annotations

from typing import Any

from retr.data.artifacts import ArtifactError, open_artifact
from retr.data.datasets import Dataset
from retr.data.errors import UsageError
from retr.training.data import PassagePair, QueryExample, read_passage_pairs, read_training_set

LLARA_DEFAULT_DATA = "wikipedia/passages.jsonl.gz"


def _distinct(specs: list[str]) -> list[str]:
    seen = set()
    for spec in specs:
        if spec in seen:
            raise UsageError(f"--data {spec}: given twice; each training set is sampled once per epoch")
        seen.add(spec)
    return list(specs)


def training_sets(specs: list[str], limit: int = 0) -> tuple[list[QueryExample], list[dict[str, Any]]]:
    """The examples of every "training-set" artifact (from `retr mine`) and their input records."""
    if not specs:
        raise ArtifactError("--data: fine-tuning needs a training-set artifact; make one with `retr mine`")
    examples: list[QueryExample] = []
    inputs = []
    for spec in _distinct(specs):
        artifact = open_artifact(spec, kind="training-set", verify=False)
        artifact.verify(["train.jsonl"])
        found = read_training_set(artifact.file("train.jsonl"), limit)
        examples += found
        inputs.append({**artifact.as_input(), "examples": len(found)})
    return examples, inputs


def passage_corpora(specs: list[str], limit: int = 0) -> tuple[list[PassagePair], list[dict[str, Any]]]:
    """Consecutive-passage pairs of every corpus (default: Wikipedia passages under the data dir)."""
    pairs: list[PassagePair] = []
    inputs = []
    for spec in _distinct(specs or [LLARA_DEFAULT_DATA]):
        found = read_passage_pairs(spec, limit)
        pairs += found
        inputs.append({**Dataset(spec).as_input(None), "examples": len(found)})
    return pairs, inputs
