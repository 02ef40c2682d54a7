"""A documented sub-corpus for CPU budgets: every document judged for the chosen splits plus seeded distractors.

Scores on a sub-corpus are higher than on the full corpus and are comparable only with systems scored on the
same sub-corpus (the demo scores BM25 on it too). The artifact is a BEIR directory, so every reader takes it.
"""

from __future__ import annotations

import json
import random
from dataclasses import dataclass, field
from pathlib import Path

from retr.data.artifacts import ArtifactWriter, config_dict
from retr.data.datasets import Dataset
from retr.data.trec import Qrels


@dataclass
class SubsetConfig:
    dataset: str = "scifact"
    out: Path = Path("runs/subset")
    splits: list[str] = field(default_factory=lambda: ["test"])
    distractors: int = 700
    seed: int = 13
    overwrite: bool = False

    def __post_init__(self) -> None:
        self.out = Path(self.out)
        self.splits = [self.splits] if isinstance(self.splits, str) else [str(s) for s in self.splits]
        if not self.splits or not all(s.strip() for s in self.splits):
            raise ValueError("splits must name at least one qrels split (e.g. [test])")
        if self.distractors < 0:
            raise ValueError(f"distractors must be >= 0, got {self.distractors}")


def make_subset(config: SubsetConfig) -> Path:
    source = Dataset(config.dataset)
    qrels: dict[str, Qrels] = {split: source.qrels(split) for split in config.splits}
    judged = {doc for split_qrels in qrels.values() for docs in split_qrels.values() for doc in docs}
    corpus_ids = source.corpus_ids()
    others = sorted(corpus_ids - judged)
    sampled = set(random.Random(config.seed).sample(others, min(config.distractors, len(others))))
    keep = (judged & corpus_ids) | sampled
    inputs = [source.as_input(split) for split in config.splits]
    settings = config_dict(config)
    with ArtifactWriter(config.out, "dataset", settings, inputs, overwrite=config.overwrite) as writer:
        kept = 0
        with open(writer.dir / "corpus.jsonl", "w") as out:
            for doc in source.corpus():
                if doc.id in keep:
                    out.write(json.dumps({"_id": doc.id, "title": doc.title, "text": doc.text}) + "\n")
                    kept += 1
        queries = {qid: text for split in config.splits for qid, text in source.queries(split).items()}
        with open(writer.dir / "queries.jsonl", "w") as out:
            for qid, text in queries.items():
                out.write(json.dumps({"_id": qid, "text": text}) + "\n")
        (writer.dir / "qrels").mkdir()
        for split, split_qrels in qrels.items():
            with open(writer.dir / "qrels" / f"{split}.tsv", "w") as out:
                out.write("query-id\tcorpus-id\tscore\n")
                for qid in split_qrels:
                    for doc_id, rel in split_qrels[qid].items():
                        if doc_id in keep:
                            out.write(f"{qid}\t{doc_id}\t{rel}\n")
        writer.metrics.update(
            docs=kept, judged_docs=kept - len(sampled), distractors=len(sampled), source_docs=source.stats["docs"],
            queries=len(queries),
        )
    return config.out
