"""`retr export`: a trained model becomes a Hugging Face dir that sentence-transformers loads to the same vectors."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from retr.retrieval.encoder import load_encoder
from retr.retrieval.export import export_encoder, sentence_transformers_gaps
from tests.unit.test_backbone import make_model_artifact
from tests.unit.tiny_models import make_tiny_model

# The last text is longer than the 16-token budget: truncation must agree too.
TEXTS = ["the cat sat on the mat", "dense retrieval encodes queries and passages into vectors",
         "proteins fold into shapes that decide what they do in the cell " * 4]
OPTIONS = {"attention": "causal", "query_template": "query: {text}", "max_passage_length": 16,
           "max_query_length": 12}


@pytest.fixture(scope="module")
def artifact(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("export")
    base = make_tiny_model(root / "llama", "llama")
    out, _, _ = make_model_artifact(root, base, OPTIONS)
    return out


@pytest.mark.parametrize("pooling", ["mean", "weighted_mean", "first"])
def test_sentence_transformers_gives_retr_vectors(artifact: Path, tmp_path: Path, pooling: str) -> None:
    from sentence_transformers import SentenceTransformer

    record = export_encoder(str(artifact), tmp_path / "hf", pooling=pooling)
    assert record["sentence_transformers"] and not record["sentence_transformers_gaps"]
    ours = load_encoder(str(artifact), pooling=pooling)
    theirs = SentenceTransformer(str(tmp_path / "hf"), device="cpu")
    for got, want in ((theirs.encode_document(TEXTS), ours.encode_passages(TEXTS)),
                      (theirs.encode_query(TEXTS), ours.encode_queries(TEXTS))):
        assert np.sum(got * want, axis=1).min() >= 0.9999
    meta = json.loads((tmp_path / "hf" / "mteb_model_meta.json").read_text())
    assert meta["embed_dim"] == ours.dim and meta["use_instructions"] is True


@pytest.mark.parametrize("attention", ["causal", "bidirectional"])
def test_the_export_loads_back_into_retr_with_its_format(artifact: Path, tmp_path: Path, attention: str) -> None:
    export_encoder(str(artifact), tmp_path / "hf", attention=attention, pooling="last")
    exported, trained = load_encoder(str(tmp_path / "hf")), load_encoder(str(artifact), attention=attention,
                                                                          pooling="last")
    assert exported.options.attention == attention and exported.options.pooling == "last"
    for side in ("query", "passage"):
        assert np.allclose(exported.encode(TEXTS, side), trained.encode(TEXTS, side), atol=1e-5)


def test_export_cli_writes_an_artifact_and_refuses_a_user_folder(artifact: Path, tmp_path: Path) -> None:
    from retr.data.artifacts import open_artifact
    from tests.reliability.conftest import retr

    result = retr("export", artifact, "--out", tmp_path / "exp", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    manifest = open_artifact(tmp_path / "exp", kind="export", verify=True).manifest
    assert manifest["metrics"]["sentence_transformers"] is True  # the artifact's options are causal, prefix prompts
    assert (tmp_path / "exp" / "modules.json").is_file()
    exported = load_encoder(str(tmp_path / "exp"))  # an export artifact loads back, with its format
    assert exported.options.attention == "causal" and exported.backbone["export"]
    assert np.allclose(exported.encode_passages(TEXTS), load_encoder(str(artifact)).encode_passages(TEXTS), atol=1e-5)
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "notes.txt").write_text("keep")
    refused = retr("export", artifact, "--out", tmp_path / "mine", cwd=tmp_path)
    assert refused.returncode != 0 and len(refused.stderr.strip().splitlines()) == 1
    assert (tmp_path / "mine" / "notes.txt").read_text() == "keep"


def test_bidirectional_export_records_why_sentence_transformers_differs(artifact: Path, tmp_path: Path) -> None:
    record = export_encoder(str(artifact), tmp_path / "hf", attention="bidirectional")
    assert not record["sentence_transformers"]
    assert not (tmp_path / "hf" / "modules.json").exists()
    saved = json.loads((tmp_path / "hf" / "retr_encoder.json").read_text())
    assert saved["options"]["attention"] == "bidirectional" and "bidirectional" in saved["sentence_transformers_gaps"][0]


@pytest.mark.parametrize("change, gap", [({"pooling": "last8"}, "pooling"), ({"pooling": "last"}, "EOS"),
                                         ({"passage_template": "{text} in eight words:"}, "after")])
def test_gaps_name_what_sentence_transformers_cannot_express(change: dict, gap: str) -> None:
    options = {"attention": "causal", "query_template": "{text}", "passage_template": "{text}", "pooling": "mean",
               **change}
    assert gap in " ".join(sentence_transformers_gaps(options, decoder=True))
    assert not sentence_transformers_gaps({**options, "pooling": "mean", "passage_template": "{text}"}, True)


def test_peft_format_keeps_the_adapter_apart(artifact: Path, tmp_path: Path) -> None:
    from peft import PeftModel
    from transformers import AutoModelForCausalLM, AutoTokenizer

    export_encoder(str(artifact), tmp_path / "peft", format="peft")
    tokenizer = AutoTokenizer.from_pretrained(tmp_path / "peft" / "tokenizer")
    base = AutoModelForCausalLM.from_pretrained(tmp_path / "peft" / "base")
    base.resize_token_embeddings(len(tokenizer))
    model = PeftModel.from_pretrained(base, tmp_path / "peft" / "adapter")
    assert any("lora" in name for name, _ in model.named_parameters())


def test_peft_format_needs_a_trained_model(tmp_path: Path) -> None:
    base = make_tiny_model(tmp_path / "llama", "llama")
    with pytest.raises(ValueError, match="retr train"):
        export_encoder(str(base), tmp_path / "out", format="peft")
