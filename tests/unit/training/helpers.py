"""Builders of the training tests' inputs (importable by unit and integration tests): a synthetic "training-set"
artifact and a tiny passage corpus (the tiny models come from tests/unit/tiny_models.py)."""

from __future__ import annotations

import json
import random
from pathlib import Path

TOPICS = {
    "space": "star planet orbit rocket moon galaxy comet telescope astronaut gravity",
    "food": "bread cheese apple soup butter pasta salad cook oven spice",
    "music": "guitar piano melody song drum choir violin rhythm concert tune",
    "sport": "football tennis runner goal match team coach stadium race medal",
    "sea": "ocean wave fish boat coral whale tide harbor sailor island",
    "tree": "forest leaf branch root oak pine seed bark grove timber",
}
FILLER = "the a of and in is was with for on".split()


def _sentence(rng: random.Random, topic: str, n: int) -> str:
    words = TOPICS[topic].split()
    return " ".join(rng.choice(words) if rng.random() < 0.7 else rng.choice(FILLER) for _ in range(n))


def write_training_set(out: Path, n_queries: int = 16, n_negatives: int = 4, seed: int = 0) -> Path:
    """A "training-set" artifact: each query's positive shares its topic, negatives come from other topics."""
    from retr.data.artifacts import ArtifactWriter

    rng = random.Random(seed)
    topics = list(TOPICS)
    with ArtifactWriter(out, "training-set", {"synthetic": seed, "n": n_queries}, []) as w:
        with open(w.dir / "train.jsonl", "w") as handle:
            for i in range(n_queries):
                topic = topics[i % len(topics)]
                others = [t for t in topics if t != topic]
                record = {
                    "query_id": f"q{i}",
                    "query": _sentence(rng, topic, 4),
                    "positives": [{"id": f"p{i}", "title": "", "text": _sentence(rng, topic, 14)}],
                    "negatives": [
                        {"id": f"n{i}-{j}", "title": "", "text": _sentence(rng, rng.choice(others), 14),
                         "rank": j + 1, "score": 10.0 - j}
                        for j in range(n_negatives)
                    ],
                }
                handle.write(json.dumps(record) + "\n")
        (w.dir / "bm25.trec").write_text("")
    return out


def write_passages(path: Path, pages: int = 6, per_page: int = 4, seed: int = 0) -> Path:
    rng = random.Random(seed)
    topics = list(TOPICS)
    with open(path, "w") as handle:
        for page in range(pages):
            for k in range(per_page):
                doc = {"_id": f"{100 + page}-{k}", "title": f"Page {page}", "text": _sentence(rng, topics[page % 6], 16)}
                handle.write(json.dumps(doc) + "\n")
    return path
