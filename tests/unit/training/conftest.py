"""Fixtures of the training tests (builders in helpers.py)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.unit.tiny_models import make_tiny_model
from tests.unit.training.helpers import write_passages, write_training_set


@pytest.fixture(scope="session")
def tiny_llama(tmp_path_factory) -> Path:
    return make_tiny_model(tmp_path_factory.mktemp("tiny-llama"), "llama", tied=True, max_positions=512)


@pytest.fixture(scope="session")
def tiny_qwen2(tmp_path_factory) -> Path:
    return make_tiny_model(tmp_path_factory.mktemp("tiny-qwen2"), "qwen2", tied=True, max_positions=512)


@pytest.fixture(scope="session")
def training_set(tmp_path_factory) -> Path:
    return write_training_set(tmp_path_factory.mktemp("ts") / "training-set")


@pytest.fixture(scope="session")
def passages(tmp_path_factory) -> Path:
    return write_passages(tmp_path_factory.mktemp("wiki") / "passages.jsonl")


@pytest.fixture(autouse=True, scope="session")
def _one_thread():
    """Tiny models run fastest on one thread, and the CPUs are shared (OpenMP spinning costs 10x under load)."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)
