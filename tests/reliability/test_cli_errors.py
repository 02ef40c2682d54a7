"""One error policy, probed through the real CLI: every command, given a bad option value, a bad config key, a
config value of the wrong type or an out-of-range number, prints one line and exits 2 before doing any work
(issue 8 item 3; issue 9 D8, D9, D10, D14, D17)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.reliability.conftest import assert_user_error, retr, snapshot

BAD_VALUES = [
    (["mine", "--k", "ten"], "--k"),
    (["train", "--max-steps", "many"], "--max-steps"),
    (["index", "--chunk-size", "big"], "--chunk-size"),
    (["search", "--k", "x"], "--k"),
    (["score", "run.trec", "--permutations", "x"], "--permutations"),
    (["export", "default", "--format", "zip"], "format"),
    (["run", "missing.yaml"], "missing.yaml"),
    (["show", "missing"], "missing"),
    (["demo", "--nope"], "--nope"),
    (["mine", "--nope", "1"], "--nope"),
]
# issue 9 D10: numbers out of range, refused before any work
OUT_OF_RANGE = [
    (["train", "--max-steps", "-3"], "max_steps"),
    (["search", "--index", "idx", "--batch-size", "-4"], "batch_size"),
    (["search", "--index", "idx", "--batch-size", "0"], "batch_size"),
    (["score", "run.trec", "--permutations", "-5"], "permutations"),
    (["index", "--batch-tokens", "-1"], "batch_tokens"),
    (["search", "--k", "3000000000"], "k must be between"),
    (["mine", "--k", "3000000000"], "k must be"),
]
# issue 9 D8: YAML configs with the wrong types, and unknown keys
BAD_CONFIGS = [
    ("mine", "k: ten\n", "k must be an integer"),
    ("mine", "negatives: 2.5\n", "negatives must be an integer"),
    ("index", "chunk_size: big\n", "chunk_size must be an integer"),
    ("train", "max_steps: many\n", "max_steps must be an integer"),
    ("search", "queries: 5\n", "queries must be a string"),
    ("mine", "nope: 1\n", "unknown option(s) nope"),
    ("index", "nope: 1\n", "unknown option(s) nope"),
    ("search", "nope: 1\n", "unknown option(s) nope"),
    ("train", "nope: 1\n", "unknown option(s) nope"),
    ("score", "nope: 1\n", "unknown option(s) nope"),
    ("mine", "[1, 2]\n", "expected a YAML mapping"),
    ("mine", "k: [\n", "not a readable YAML file"),
]
# issue 9 D9, D17: pipelines
BAD_PIPELINES = [
    ("stages:\n  - {name: m, stage: mine, with: {k: 10, nope: 1}}\n", "unknown option(s) nope"),
    ("stages: [\n", "not a readable YAML"),
    ("stages: 5\n", "non-empty list"),
    ("stages: [5]\n", "expected a mapping"),
    ("stages:\n  - {name: m, stage: mine, with: [1, 2]}\n", "must be a mapping"),
    ("stagez: []\n", "unknown key(s) stagez"),
    ("stages:\n  - {name: ../../escape, stage: mine}\n", "letters, digits"),
    ("stages:\n  - {name: m, stage: mine, with: {k: ten}}\n", "stage m: k must be an integer"),
]


def probe(args: list[str], tmp_path: Path, *words: str) -> None:
    before = snapshot(tmp_path)
    assert_user_error(retr(*args, cwd=tmp_path), *words)
    assert snapshot(tmp_path) == before, "a refused command writes nothing"


@pytest.mark.parametrize("args, word", BAD_VALUES + OUT_OF_RANGE, ids=lambda v: " ".join(v) if isinstance(v, list) else None)
def test_bad_option_values(tmp_path: Path, args: list[str], word: str) -> None:
    (tmp_path / "run.trec").write_text("q1 Q0 d1 1 1.0 t\n")
    (tmp_path / "idx").mkdir()
    probe(args, tmp_path, word)


@pytest.mark.parametrize("command, text, message", BAD_CONFIGS)
def test_bad_config_files(tmp_path: Path, command: str, text: str, message: str) -> None:
    (tmp_path / "c.yaml").write_text(text)
    probe([command, "--config", "c.yaml"], tmp_path, message)


@pytest.mark.parametrize("text, message", BAD_PIPELINES)
def test_bad_pipelines(tmp_path: Path, text: str, message: str) -> None:
    (tmp_path / "p.yaml").write_text(f"workdir: {tmp_path / 'w'}\n" + text if not text.startswith("stagez")
                                     else text)
    probe(["run", "p.yaml"], tmp_path, message)
    assert not (tmp_path.parent / "escape").exists()
