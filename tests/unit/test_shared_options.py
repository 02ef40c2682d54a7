"""Options shared by several commands are defined once (EncoderOptions, BM25Params) and included flat, so the CLI
options, the YAML keys and the manifests' config dicts are what they were before the sharing (main 28ddc96)."""

from __future__ import annotations

import dataclasses
import typing

import pytest

from retr.data.artifacts import config_dict
from retr.data.options import build_config, include, included, option
from retr.indexing.dense import IndexConfig, encoder_overrides
from retr.retrieval.bm25_search import BM25Params
from retr.retrieval.encoder_options import EncoderOptions
from retr.retrieval.search import SearchConfig
from retr.training.config import TrainConfig
from retr.training.mining import MineConfig

TRAIN_FORMAT = ("pooling", "attention", "query_template", "passage_template")


def _fields(cls: type) -> dict[str, dataclasses.Field]:
    return {f.name: f for f in dataclasses.fields(cls)}


def _help(field: dataclasses.Field) -> str:
    return str(field.metadata["help"])


@pytest.mark.parametrize("config, names", [(IndexConfig, tuple(_fields(EncoderOptions))), (TrainConfig, TRAIN_FORMAT)])
def test_encoder_fields_come_from_encoder_options(config: type, names: tuple[str, ...]) -> None:
    """Same names, EncoderOptions' help (plus what None means) and type (or None); the default None = the model's."""
    source, target = _fields(EncoderOptions), _fields(config)
    source_hints, target_hints = typing.get_type_hints(EncoderOptions), typing.get_type_hints(config)
    assert config.__included__[EncoderOptions] == names
    for name in names:
        assert _help(source[name]) and _help(target[name]).startswith(_help(source[name]).rstrip(".")), name
        assert target[name].default is None
        assert target_hints[name] == source_hints[name] | None
    shown = "Default: the model's (256)" if config is IndexConfig else "else 256"
    assert config is TrainConfig or shown in _help(target["max_passage_length"])


def test_bm25_parameters_are_one_object() -> None:
    for config in (MineConfig, SearchConfig):
        assert config.__included__[BM25Params] == ("k1", "b")
        for name, field in _fields(BM25Params).items():
            assert _fields(config)[name].default == field.default
            assert _help(_fields(config)[name]) == _help(field)
        assert config().bm25 == BM25Params()
    assert build_config(MineConfig, {"k1": 1.2, "b": 0.75}).bm25 == BM25Params(k1=1.2, b=0.75)
    assert build_config(SearchConfig, {"b": 0.5}).bm25 == BM25Params(k1=0.9, b=0.5)


def test_included_encoder_values_reach_the_encoder() -> None:
    cfg = build_config(IndexConfig, {"pooling": "last", "max_query_length": 32, "prompt": "e5"})
    overrides = encoder_overrides(cfg)
    assert set(overrides) == set(_fields(EncoderOptions))
    assert overrides["pooling"] == "last" and overrides["max_query_length"] == 32
    assert overrides["query_template"] == overrides["passage_template"] == "e5"
    assert overrides["normalize"] is None


def test_include_places_fields_and_refuses_a_second_definition() -> None:
    @dataclasses.dataclass
    @include(BM25Params, after="first")
    class Config:
        first: int = option(1, "first")
        last: int = option(2, "last")

    assert [f.name for f in dataclasses.fields(Config)] == ["first", "k1", "b", "last"]
    assert included(Config(k1=2.0), BM25Params) == {"k1": 2.0, "b": 0.4}
    with pytest.raises(TypeError, match="defined by BM25Params"):
        @include(BM25Params, after="first")
        class Copy:
            first: int = option(1, "first")
            k1: float = option(0.9, "a copy")
    with pytest.raises(TypeError, match="no field 'missing'"):
        include(BM25Params, after="missing")(Config)


# config_dict of each default config at main 28ddc96, before the shared options: stage stamps of running studies
# compare these dicts, so keys (in order) and values must not change.
BEFORE = {
    IndexConfig: {
        "corpus": "scifact", "out": "runs/index", "encoder": "default", "factory": "Flat", "precision": "fp32",
        "prompt": None, "pooling": None, "attention": None, "query_template": None, "passage_template": None,
        "normalize": None, "max_query_length": None, "max_passage_length": None, "dtype": None, "quantize": None,
        "batch_tokens": None, "chunk_size": 1024, "shard": "0/1", "limit": None, "doc_ids": None,
        "train_size": 65536, "search_params": "", "seed": 0, "threads": None, "gpu": None, "overwrite": False,
    },
    SearchConfig: {
        "index": None, "queries": "scifact", "split": "test", "k": 1000, "out": "runs/search", "encoder": None,
        "batch_size": 64, "query_template": None, "max_query_length": None, "rescore": None, "rescore_factor": 4,
        "k1": 0.9, "b": 0.4, "threads": 2, "drop_self": None, "bm25_cache": None, "overwrite": False,
    },
    MineConfig: {
        "dataset": "scifact", "split": "train", "out": "runs/mine", "k": 100, "k1": 0.9, "b": 0.4, "negatives": 8,
        "rank_min": 10, "rank_max": 100, "min_relevance": 1, "max_queries": None, "max_negative_ratio": None,
        "seed": 0, "threads": 2, "bm25_cache": None, "index": None, "overwrite": False,
    },
    TrainConfig: {
        "objective": "grl", "data": [], "model": "default", "out": "runs/train", "overwrite": False, "seed": 0,
        "pooling": None, "attention": None, "query_template": None, "passage_template": None,
        "max_query_length": None, "max_passage_length": None, "temperature": 0.05, "negatives": 3,
        "lambda_cl": 1.0, "lambda_dpo": 0.5, "lambda_kl": 1.0, "lambda_sft": 1.0, "dpo_beta": 0.1,
        "gen_temperature": 1.0,
        "gen_template": "Given a search query, write a passage that answers it.\nQuery: {query}\nPassage:",
        "llara_tokens": 8, "llara_lm_weight": 0.0, "max_examples": 0, "lora_r": 16, "lora_alpha": 32,
        "lora_dropout": 0.2, "lora_targets": "all-linear", "batch_size": 8, "grad_accum": 1, "epochs": 1.0,
        "max_steps": 0, "lr": 0.0002, "weight_decay": 0.0, "warmup_ratio": 0.1, "max_grad_norm": 1.0,
        "grad_cache": True, "chunk_size": 8, "gradient_checkpointing": False, "precision": "auto",
        "parallel": "ddp", "device": "auto", "threads": 0, "checkpoint_every": 50, "report_to": "none",
    },
}


@pytest.mark.parametrize("config", list(BEFORE), ids=lambda c: c.__name__)
def test_config_dicts_are_unchanged(config: type) -> None:
    recorded = config_dict(config())
    assert list(recorded) == list(BEFORE[config])
    assert recorded == BEFORE[config]


def test_given_encoder_and_bm25_values_are_recorded_flat() -> None:
    assert config_dict(build_config(IndexConfig, {"pooling": "last", "normalize": False}))["pooling"] == "last"
    recorded = config_dict(build_config(MineConfig, {"k1": 1.2}))
    assert (recorded["k1"], recorded["b"]) == (1.2, 0.4) and "bm25" not in recorded
