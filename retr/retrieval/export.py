"""Export an encoder to the Hugging Face / sentence-transformers world.

``format="hf"`` writes one standard model directory: the weights with any LoRA adapter merged, the tokenizer with
the tokens training added, and, when sentence-transformers can express the encoder exactly, its configuration
(modules, pooling, normalisation, per-side prompts and lengths) so that ``SentenceTransformer(DIR)`` gives the
vectors ``retr`` gives. ``format="peft"`` keeps the adapter apart: ``base/`` (the starting model, itself merged
when it was trained) and ``adapter/``. Both write ``retr_encoder.json`` (the encoder options, and what
sentence-transformers cannot express, if anything) and ``mteb_model_meta.json`` (MTEB ModelMeta fields).

sentence-transformers cannot express: bidirectional attention on a decoder (it runs the model causally),
templates with text after ``{text}`` (its prompts are prefixes), ``last<k>`` pooling, and ``last`` pooling on a
decoder (``retr`` ends each sequence with EOS). For such encoders the directory loads with ``retr.load_encoder``
(or ``retr index --encoder DIR``), and ``retr_encoder.json`` says why.
"""

from __future__ import annotations

import json
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from retr.data.options import option
from retr.retrieval import prompts

FORMATS = ("hf", "peft")
MTEB_JSON = "mteb_model_meta.json"
ST_POOLING = {"mean": "mean", "first": "cls", "weighted_mean": "weightedmean", "last": "lasttoken"}


@dataclass
class ExportConfig:
    model: str = option("default", "model to export: a `retr train` output, default, minilm or a model dir")
    out: Path = option(Path("runs/export"), "output folder (an 'export' artifact: a Hugging Face model dir)")
    format: str = option("hf", "hf: one model dir, LoRA merged, with a sentence-transformers config when it can "
                               "express the encoder; peft: base/ and adapter/ kept apart")
    overwrite: bool = option(False, "replace an existing export artifact")

    def __post_init__(self) -> None:
        self.out = Path(self.out)
        if self.format not in FORMATS:
            from retr.data.errors import UsageError

            raise UsageError(f"unknown export format {self.format!r}; choose one of {', '.join(FORMATS)}")


def export(cfg: ExportConfig) -> Path:
    """:func:`export_encoder` into an "export" artifact at ``cfg.out`` (manifest: the model it came from)."""
    from retr.data.artifacts import ArtifactWriter, config_dict
    from retr.retrieval.backbone import backbone_identity

    with ArtifactWriter(cfg.out, "export", config_dict(cfg), [backbone_identity(cfg.model)],
                        overwrite=cfg.overwrite) as writer:
        record = export_encoder(cfg.model, writer.dir, cfg.format)
        writer.metrics.update(sentence_transformers=record["sentence_transformers"],
                              sentence_transformers_gaps=record["sentence_transformers_gaps"])
    return cfg.out


def sentence_transformers_gaps(options: dict[str, Any], decoder: bool) -> list[str]:
    """Why sentence-transformers would not reproduce these encoder options exactly (empty: it would)."""
    gaps = []
    if decoder and options["attention"] == "bidirectional":
        gaps.append("bidirectional attention on a decoder (sentence-transformers runs it causally)")
    for side in ("query", "passage"):
        template = options[f"{side}_template"]
        if not template.endswith(prompts.PLACEHOLDER):
            gaps.append(f"the {side} template has text after {prompts.PLACEHOLDER} (sentence-transformers prompts "
                        "are prefixes)")
    if options["pooling"] not in ST_POOLING:
        gaps.append(f"pooling {options['pooling']!r}")
    elif options["pooling"] == "last" and decoder:
        gaps.append("last pooling on a decoder ends every sequence with EOS in retr")
    return gaps


def export_encoder(spec: str, out: Path, format: str = "hf", **options: Any) -> dict[str, Any]:
    """Write the export of ``spec`` (a model artifact, ``default``, ``minilm`` or a model dir) into ``out``.

    ``options`` override the encoder options (as for ``load_encoder``). Returns the ``retr_encoder.json`` record.
    """
    from retr.retrieval.encoder import EXPORTED_OPTIONS as EXPORT_JSON, load_encoder  # torch: only when exporting

    if format not in FORMATS:
        raise ValueError(f"unknown export format {format!r}; choose one of {', '.join(FORMATS)}")
    encoder = load_encoder(spec, device="cpu", **{**options, "dtype": "float32"})
    if encoder.options.quantize:
        raise ValueError(f"{spec}: int8 quantisation is an inference setting; export the float model")
    options = encoder.options.as_dict()
    gaps = sentence_transformers_gaps(options, encoder.is_decoder)
    out.mkdir(parents=True, exist_ok=True)
    tokenizer = encoder.tokenizer
    if tokenizer.pad_token is None:  # batching in sentence-transformers needs one
        tokenizer.pad_token = tokenizer.eos_token
    tokenizer.padding_side = "right"
    if format == "hf":
        encoder.model.save_pretrained(out)
        tokenizer.save_pretrained(out)
        if not gaps:
            _write_sentence_transformers(out, options, encoder.dim)
    else:
        _write_peft(spec, out)
    record = {
        "source": encoder.backbone, "format": format, "decoder": encoder.is_decoder, "options": options,
        "sentence_transformers": not gaps and format == "hf", "sentence_transformers_gaps": gaps,
    }
    (out / EXPORT_JSON).write_text(json.dumps(record, indent=2, default=str) + "\n")
    (out / MTEB_JSON).write_text(json.dumps(mteb_meta(spec, encoder, options), indent=2) + "\n")
    return record


def _write_sentence_transformers(out: Path, options: dict[str, Any], dim: int) -> None:
    """modules.json and friends, written by sentence-transformers itself so they match its version."""
    from sentence_transformers import SentenceTransformer
    from sentence_transformers.base.modules import Normalize, Transformer
    from sentence_transformers.sentence_transformer.modules import Pooling

    body = Transformer(str(out), max_seq_length=options["max_passage_length"],
                       query_length=options["max_query_length"], document_length=options["max_passage_length"])
    modules = [body, Pooling(dim, ST_POOLING[options["pooling"]])]
    if options["normalize"]:
        modules.append(Normalize())
    prefixes = {name: options[f"{side}_template"][: -len(prompts.PLACEHOLDER)]
                for name, side in (("query", "query"), ("document", "passage"))}
    model = SentenceTransformer(modules=modules, prompts={k: v for k, v in prefixes.items() if v},
                                similarity_fn_name="cosine", device="cpu")
    model.save(str(out))


def _write_peft(spec: str, out: Path) -> None:
    """``base/`` (merged starting model + tokenizer) and ``adapter/`` (the LoRA weights as trained)."""
    from retr.retrieval.backbone import _base_spec, artifact_encoder_json, is_model_artifact, load_backbone

    if not is_model_artifact(spec):
        raise ValueError(f"{spec}: --format peft needs a `retr train` output (it has an adapter to keep apart)")
    meta = artifact_encoder_json(spec)
    base, base_tokenizer, _ = load_backbone(_base_spec(Path(spec), meta["base"]), dtype="float32")
    base.save_pretrained(out / "base")
    base_tokenizer.save_pretrained(out / "base")
    shutil.copytree(Path(spec) / meta.get("adapter", "adapter"), out / "adapter")
    tokenizer_dir = Path(spec) / meta.get("tokenizer", "tokenizer")
    if tokenizer_dir.is_dir():
        shutil.copytree(tokenizer_dir, out / "tokenizer")


def mteb_meta(spec: str, encoder: Any, options: dict[str, Any]) -> dict[str, Any]:
    """MTEB ``ModelMeta`` fields (load with ``mteb.ModelMeta(**json, loader=None)``)."""
    n_parameters = sum(p.numel() for p in encoder.model.parameters())
    uses_instructions = options["query_template"] != prompts.PLACEHOLDER
    return {
        "name": f"retr/{Path(str(spec)).name}", "revision": encoder.identity()["sha256"][:40],
        "release_date": None, "languages": None, "n_parameters": n_parameters,
        "memory_usage_mb": round(n_parameters * 4 / 2**20, 1), "max_tokens": options["max_passage_length"],
        "embed_dim": encoder.dim, "license": None, "open_weights": True, "public_training_code": None,
        "public_training_data": None, "framework": ["Sentence Transformers", "PyTorch"],
        "similarity_fn_name": "cosine" if options["normalize"] else "dot", "use_instructions": uses_instructions,
        "training_datasets": None, "modalities": ["text"], "model_type": ["dense"],
    }
