"""Inputs are verified where they are used (issue 9, D3/D4/D12): a byte flipped in a Lucene file or in a model's
adapter weights, or a file added next to them, is refused before the file is read; a query Lucene cannot search
is refused by its id."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from retr.data.artifacts import ArtifactError, open_artifact
from retr.data.errors import UsageError
from tests.reliability.conftest import write_beir


@pytest.fixture(autouse=True)
def private_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RETR_HOME", str(tmp_path / "home"))


def flip_byte(path: Path) -> None:
    """Change one byte in the middle of ``path`` in place, keeping size and mtime."""
    before = path.stat()
    with open(path, "r+b") as handle:
        handle.seek(before.st_size // 2)
        byte = handle.read(1)
        handle.seek(before.st_size // 2)
        handle.write(bytes([byte[0] ^ 0xFF]))
    os.utime(path, ns=(before.st_atime_ns, before.st_mtime_ns))


@pytest.fixture(scope="module")
def bm25_index(tmp_path_factory) -> Path:
    from retr.indexing.bm25 import BM25IndexConfig, build_bm25_index

    root = tmp_path_factory.mktemp("bm25")
    data = write_beir(root / "data")
    return build_bm25_index(BM25IndexConfig(corpus=str(data), out=root / "index"))


def copy_artifact(source: Path, target: Path) -> Path:
    import shutil

    shutil.copytree(source, target)
    return target


def test_bm25_search_refuses_a_flipped_byte_in_a_lucene_file(bm25_index: Path, tmp_path: Path) -> None:
    from retr.retrieval.bm25_search import search_bm25

    index = copy_artifact(bm25_index, tmp_path / "index")
    assert search_bm25(open_artifact(index), {"q": "protein folding"}, k=3)["q"]
    largest = max((p for p in (index / "lucene").iterdir() if p.is_file()), key=lambda p: p.stat().st_size)
    flip_byte(largest)
    with pytest.raises(ArtifactError, match=f"{largest.name}: does not match its manifest"):
        search_bm25(open_artifact(index), {"q": "protein folding"}, k=3)


def test_bm25_search_refuses_a_lucene_file_the_manifest_does_not_list(bm25_index: Path, tmp_path: Path) -> None:
    from retr.retrieval.bm25_search import search_bm25

    index = copy_artifact(bm25_index, tmp_path / "index")
    (index / "lucene" / "segments_99").write_bytes(b"forged")
    with pytest.raises(ArtifactError, match="segments_99: not listed in the manifest"):
        search_bm25(open_artifact(index), {"q": "protein"}, k=3)


def test_a_query_over_lucenes_clause_limit_is_refused_by_its_id(bm25_index: Path) -> None:
    from retr.retrieval.bm25_search import search_bm25

    queries = {"fine": "protein folding", "huge": " ".join(f"zz{i}q" for i in range(1500)), "after": "solar"}
    with pytest.raises(UsageError, match="query huge: has 1500 distinct terms") as caught:
        search_bm25(open_artifact(bm25_index), queries, k=3)
    assert "\n" not in str(caught.value)


def test_model_weights_are_verified_before_loading(tmp_path: Path) -> None:
    from retr.retrieval.backbone import load_backbone
    from tests.unit.test_backbone import make_model_artifact
    from tests.unit.tiny_models import make_tiny_model

    base = make_tiny_model(tmp_path / "base", "llama")
    out, _, _ = make_model_artifact(tmp_path, base, {})
    load_backbone(str(out))
    weights = out / "adapter" / "adapter_model.safetensors"
    flip_byte(weights)
    with pytest.raises(ArtifactError, match="adapter_model.safetensors: does not match its manifest"):
        load_backbone(str(out))


def test_model_folder_with_an_added_weight_file_is_refused(tmp_path: Path) -> None:
    from retr.retrieval.backbone import load_backbone
    from tests.unit.test_backbone import make_model_artifact
    from tests.unit.tiny_models import make_tiny_model

    base = make_tiny_model(tmp_path / "base", "llama")
    out, _, _ = make_model_artifact(tmp_path, base, {})
    (out / "adapter" / "adapter_model.bin").write_bytes(b"x")
    with pytest.raises(ArtifactError, match="adapter_model.bin: not listed in the manifest"):
        load_backbone(str(out))
    manifest = json.loads((out / "manifest.json").read_text())
    assert all(not o["path"].endswith(".bin") for o in manifest["outputs"])
