"""Builders of the training tests' inputs (importable by unit and integration tests): tiny random Llama / Qwen2
models with a tokenizer trained here, a synthetic "training-set" artifact, a tiny passage corpus."""

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


def _tokenizer(directory: Path):
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    rng = random.Random(0)
    texts = [_sentence(rng, t, 12) for t in TOPICS for _ in range(30)]
    texts += ['", summarize the above passage within 2 words: ', '", predict the following passage within 2 words: ']
    texts += ["Given a search query, write a passage that answers it.\nQuery: x\nPassage: y"] * 5
    tok = Tokenizer(models.BPE(unk_token="<unk>"))
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=400, special_tokens=["<pad>", "<s>", "</s>", "<unk>"],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
    )
    tok.train_from_iterator(texts, trainer)
    fast = PreTrainedTokenizerFast(
        tokenizer_object=tok, pad_token="<pad>", bos_token="<s>", eos_token="</s>", unk_token="<unk>"
    )
    fast.save_pretrained(directory)
    return fast


def make_tiny_model(directory: Path, arch: str = "llama") -> Path:
    import torch
    from transformers import AutoModelForCausalLM, LlamaConfig, Qwen2Config

    tokenizer = _tokenizer(directory)
    common = dict(
        vocab_size=len(tokenizer), hidden_size=32, intermediate_size=64, num_hidden_layers=2,
        num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=512, tie_word_embeddings=True,
        pad_token_id=tokenizer.pad_token_id, bos_token_id=tokenizer.bos_token_id, eos_token_id=tokenizer.eos_token_id,
    )
    config = LlamaConfig(**common) if arch == "llama" else Qwen2Config(**common)
    torch.manual_seed(0)
    model = AutoModelForCausalLM.from_config(config)
    model.save_pretrained(directory)
    return directory


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
