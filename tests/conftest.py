"""Shared fixtures: the real-data folder (skip when absent) and quiet, offline defaults."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")


@pytest.fixture(scope="session")
def data_dir() -> Path:
    from retr.data.datasets import data_root

    root = data_root()
    if not (root / "scifact").is_dir():
        pytest.skip(f"real data not found at {root} (set RETR_DATA_DIR)")
    return root
