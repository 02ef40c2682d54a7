"""The text encoder: a backbone plus options (attention, pooling, prompts, lengths, normalisation, dtype, int8).

``load_encoder(spec, **overrides)`` -> :class:`Encoder` with ``encode_queries`` / ``encode_passages`` (float32
NumPy arrays). Texts are tokenised with their prompt, truncated inside the text only (a prompt's prefix and suffix
survive truncation), sorted by length and cut into token-budget batches, so padding is minimal and the output
order is the input order. ``tokenize``, ``collate`` and ``embed`` are the differentiable pieces training uses.
"""

from __future__ import annotations

import json
import warnings
from pathlib import Path
from typing import Any, Iterator, Sequence

import numpy as np

from retr.data.artifacts import sha256_json
from retr.data.errors import UsageError
from retr.retrieval import prompts
from retr.retrieval.attention import forward_hidden
from retr.retrieval.encoder_options import LAST_K, EncoderOptions
from retr.retrieval.pooling import pool

CHARS_PER_TOKEN_CAP = 64  # texts are cut at 64 chars per allowed token before tokenising (no token is that long)
EXPORTED_OPTIONS = "retr_encoder.json"  # written by retr.retrieval.export beside an exported model


class Encoder:
    """A backbone with its encoding options; see the module docstring."""

    def __init__(self, model: Any, tokenizer: Any, options: EncoderOptions, backbone: dict[str, Any],
                 spec: str, decoder: bool, device: Any = None, compute: str | None = None) -> None:
        import torch

        self.model = model
        self.tokenizer = tokenizer
        self.options = options
        self.backbone = backbone
        self.spec = spec
        self.is_decoder = decoder
        self.device = torch.device(device) if device is not None else next(model.parameters()).device
        # what the forward computes in (recorded in index manifests): the weights' dtype, bf16-autocast or int8
        self.compute = compute or str(next(model.parameters()).dtype).removeprefix("torch.")
        self.batch_tokens = 16384 if self.device.type == "cpu" else 65536
        self.max_batch_size = 512
        if not decoder and options.attention != "bidirectional":
            raise UsageError(f"{spec}: an encoder model; its attention is always bidirectional")
        self.pad_id = _first_not_none(tokenizer.pad_token_id, tokenizer.eos_token_id, 0)
        self.eos_id = tokenizer.eos_token_id if decoder else None

    @classmethod
    def wrap(cls, model: Any, tokenizer: Any, options: EncoderOptions | None = None, spec: str = "in-memory",
             **option_overrides: Any) -> "Encoder":
        """An Encoder around an in-memory model (e.g. a peft model being trained): ``tokenize``, ``collate`` and
        ``embed`` then give training exactly the inputs and pooling that indexing uses."""
        from retr.retrieval.backbone import is_decoder_config

        options = options or EncoderOptions(**{k: v for k, v in option_overrides.items() if v is not None})
        backbone = {"kind": "backbone", "spec": spec, "sha256": sha256_json({"in-memory": spec})}
        return cls(model, tokenizer, options, backbone, spec, is_decoder_config(model.config))

    # ---------------------------------------------------------------- identity
    @property
    def dim(self) -> int:
        return int(self.model.config.hidden_size if hasattr(self.model.config, "hidden_size")
                   else self.model.get_input_embeddings().weight.shape[1])

    def identity(self) -> dict[str, Any]:
        """The manifest input record: backbone identity and options; ``sha256`` covers both."""
        options = self.options.as_dict()
        return {
            "kind": "encoder",
            "id": self.spec,
            "sha256": sha256_json({"backbone": self.backbone["sha256"], "options": options}),
            "backbone": self.backbone,
            "options": options,
            "dim": self.dim,
        }

    # ---------------------------------------------------------------- tokenisation
    def tokenize(self, texts: Sequence[str], side: str) -> list[list[int]]:
        """Token ids of each text inside the side's prompt, cut to the side's max length inside the text only.

        For ``last`` pooling on a decoder an EOS token ends every sequence (its state sees the whole text).
        """
        template = self.options.query_template if side == "query" else self.options.passage_template
        max_length = self.options.max_query_length if side == "query" else self.options.max_passage_length
        append_eos = self.options.pooling == "last" and self.eos_id is not None
        return tokenize_prompted(self.tokenizer, texts, template, max_length,
                                 eos_id=self.eos_id if append_eos else None, pad_id=self.pad_id)

    def collate(self, sequences: Sequence[Sequence[int]], padding_side: str = "right"):
        """Padded ``input_ids`` and ``attention_mask`` tensors on the encoder's device (either side gives the
        same embeddings: positions come from the mask)."""
        import torch

        width = max(len(s) for s in sequences)
        input_ids = torch.full((len(sequences), width), self.pad_id, dtype=torch.long)
        mask = torch.zeros((len(sequences), width), dtype=torch.long)
        for row, seq in enumerate(sequences):
            cols = slice(0, len(seq)) if padding_side == "right" else slice(width - len(seq), width)
            input_ids[row, cols] = torch.as_tensor(seq, dtype=torch.long)
            mask[row, cols] = 1
        return input_ids.to(self.device), mask.to(self.device)

    # ---------------------------------------------------------------- forward
    def embed(self, input_ids, attention_mask):
        """Pooled (and normalised) embeddings [batch, dim]; differentiable, in the model's dtype."""
        import torch.nn.functional as F

        hidden = forward_hidden(self.model, input_ids, attention_mask, self.options.attention)
        vectors = pool_states(hidden, attention_mask, self.options.pooling)
        return F.normalize(vectors, p=2, dim=-1) if self.options.normalize else vectors

    def encode_queries(self, texts: Sequence[str], progress: bool = False) -> np.ndarray:
        return self.encode(texts, "query", progress)

    def encode_passages(self, texts: Sequence[str], progress: bool = False) -> np.ndarray:
        return self.encode(texts, "passage", progress)

    def encode(self, texts: Sequence[str], side: str = "passage", progress: bool = False) -> np.ndarray:
        """float32 [len(texts), dim] in the input order."""
        return self.encode_ids(self.tokenize(texts, side), progress=progress)

    def encode_ids(self, sequences: Sequence[Sequence[int]], progress: bool = False, bar: Any = None) -> np.ndarray:
        """Encode tokenised sequences, longest first in token-budget batches; ``bar`` is an outer tqdm to update."""
        import torch
        from tqdm.auto import tqdm

        out = np.zeros((len(sequences), self.dim), dtype=np.float32)
        lengths = [len(s) for s in sequences]
        own_bar = tqdm(total=len(sequences), unit="text", disable=not progress) if bar is None else None
        autocast = torch.autocast(self.device.type, dtype=torch.bfloat16, enabled=self.compute == "bf16-autocast")
        with torch.inference_mode(), autocast:
            for batch in token_budget_batches(lengths, self.batch_tokens, self.max_batch_size):
                input_ids, mask = self.collate([sequences[i] for i in batch])
                out[batch] = self.embed(input_ids, mask).float().cpu().numpy()
                (bar or own_bar).update(len(batch))
        if own_bar is not None:
            own_bar.close()
        return out


def tokenize_prompted(tokenizer: Any, texts: Sequence[str], template: str, max_length: int,
                      eos_id: int | None = None, pad_id: int = 0) -> list[list[int]]:
    """Token ids of ``template`` filled with each text (special tokens included), at most ``max_length`` long.

    Too long a text loses its last tokens, never the template's prefix or suffix (e.g. LLaRA's placeholders) nor
    the special tokens. Untruncated texts get exactly the tokens of the joint prompt string. With ``eos_id`` every
    sequence ends with that token (within ``max_length``). This is the one tokenisation of the project: training
    uses it too, so that an index encodes passages exactly as the model saw them.
    """
    budget = max(1, max_length - int(eos_id is not None))
    cap = max_length * CHARS_PER_TOKEN_CAP
    formatted, spans = [], []
    for text in texts:
        text = text[:cap]
        prompt, start = prompts.apply(template, text)
        formatted.append(prompt)
        spans.append((start, start + len(text)))
    if not formatted:
        return []
    fast = getattr(tokenizer, "is_fast", False)
    encoded = tokenizer(
        formatted, add_special_tokens=True, return_offsets_mapping=fast, return_special_tokens_mask=fast,
        return_attention_mask=False, verbose=False,
    )
    # An empty prompt still needs one token (not padding, whose embedding may be zero): EOS, else UNK.
    empty = _first_not_none(eos_id, tokenizer.eos_token_id, tokenizer.unk_token_id, pad_id)
    sequences = []
    for i, ids in enumerate(encoded["input_ids"]):
        ids = list(ids)
        if len(ids) > budget and fast:
            ids = _truncate_text(ids, encoded["offset_mapping"][i], encoded["special_tokens_mask"][i], spans[i], budget)
        elif len(ids) > budget:  # no offsets from a slow tokenizer: plain truncation
            ids = ids[:budget]
        if eos_id is not None and (not ids or ids[-1] != eos_id):
            ids.append(eos_id)
        sequences.append(ids or [empty])
    return sequences


def pool_states(hidden, attention_mask, mode: str):
    """:func:`retr.retrieval.pooling.pool`, plus ``last<k>``: the mean of the last k unpadded tokens."""
    match = LAST_K.match(mode)
    if not match:
        return pool(hidden, attention_mask, mode)
    k = int(match.group(1))
    from_end = attention_mask.sum(1, keepdim=True) - attention_mask.cumsum(1)  # 0 at the last real token
    weights = ((attention_mask > 0) & (from_end < k)).to(hidden.dtype).unsqueeze(-1)
    return (hidden * weights).sum(1) / weights.sum(1).clamp(min=1e-9)


def token_budget_batches(lengths: Sequence[int], budget: int, max_size: int = 512) -> Iterator[list[int]]:
    """Indices grouped longest first so that rows x longest row <= ``budget`` (one row at least per batch)."""
    order = sorted(range(len(lengths)), key=lambda i: (-lengths[i], i))
    batch: list[int] = []
    for index in order:
        if batch and ((len(batch) + 1) * lengths[batch[0]] > budget or len(batch) >= max_size):
            yield batch
            batch = []
        batch.append(index)
    if batch:
        yield batch


def _truncate_text(ids: list[int], offsets, special_mask, span: tuple[int, int], budget: int) -> list[int]:
    """Drop the text's last tokens (never the prompt's or special tokens) until ``budget`` tokens remain."""
    start, end = span
    text_positions = [
        j for j, ((a, _), special) in enumerate(zip(offsets, special_mask)) if not special and start <= a < end
    ]
    excess = len(ids) - budget
    if excess > len(text_positions):  # the prompt alone is longer than the budget: keep its start
        return ids[:budget]
    drop = set(text_positions[len(text_positions) - excess:])
    return [token for j, token in enumerate(ids) if j not in drop]


def _first_not_none(*values: Any) -> Any:
    return next(v for v in values if v is not None)


def load_encoder(spec: str, device: Any = None, **option_overrides: Any) -> Encoder:
    """An :class:`Encoder` for a backbone spec; options default to a model artifact's encoder.json, then ours
    (query and passage budgets capped by the model's declared input limit, the query budget equal to it).

    Overrides left as None are ignored. ``device``: default cuda when available, else cpu.
    """
    import torch

    from retr.retrieval.allocator import keep_freed_memory
    from retr.retrieval.backbone import artifact_encoder_json, is_decoder_config, is_model_artifact, load_backbone

    keep_freed_memory()

    unknown = set(option_overrides) - EncoderOptions.fields()
    if unknown:
        raise UsageError(f"unknown encoder option(s): {', '.join(sorted(unknown))}")
    exported = Path(str(spec)).expanduser() / EXPORTED_OPTIONS  # a `retr export` dir keeps its format
    saved: dict[str, Any] = {}
    if is_model_artifact(spec):
        saved = artifact_encoder_json(spec).get("options") or {}
    elif exported.is_file():
        saved = json.loads(exported.read_text()).get("options") or {}
    values = {k: v for k, v in saved.items() if k in EncoderOptions.fields()}
    values.update({k: v for k, v in option_overrides.items() if v is not None})
    if "max_query_length" not in values:  # the model's own limit, when it declares one (MiniLM: 256)
        from retr.retrieval.backbone import declared_max_length

        declared = declared_max_length(spec)
        if declared is not None:
            values["max_query_length"] = declared
            values.setdefault("max_passage_length", min(declared, EncoderOptions.max_passage_length))
    options = EncoderOptions(**values)
    device = torch.device(device or ("cuda" if torch.cuda.is_available() else "cpu"))
    if options.quantize == "int8" and device.type != "cpu":
        raise UsageError("quantize=int8 is dynamic quantisation for CPU inference; leave it unset on a GPU")
    compute = resolve_compute(options, device.type)
    weights = "float32" if compute in ("int8", "bf16-autocast") else compute
    model, tokenizer, identity = load_backbone(spec, dtype=weights)
    decoder = is_decoder_config(model.config)
    model.to(device)
    if compute == "int8":
        model = quantize_int8(model)
    return Encoder(model, tokenizer, options, identity, str(spec), decoder, device, compute)


def resolve_compute(options: EncoderOptions, device_type: str) -> str:
    """What the forward computes in: ``int8`` (quantised), a weight dtype, or ``bf16-autocast`` (fp32 weights,
    bf16 matmuls). ``dtype auto`` follows training's precision rule (:func:`retr.retrieval.hardware.resolve_precision`):
    bf16 on a GPU (bf16 weights), bf16-autocast on a CPU with native bf16 (AVX512-BF16/AMX: measured x2.17 over fp32
    at min cosine 1.0000 on MiniLM), else float32 (emulated bf16 is slower than fp32)."""
    from retr.retrieval.hardware import resolve_precision

    if options.quantize == "int8":
        return "int8"
    if options.dtype != "auto":
        return options.dtype
    if resolve_precision("auto", device_type) == "fp32":
        return "float32"
    return "bfloat16" if device_type == "cuda" else "bf16-autocast"


def quantize_int8(model: Any) -> Any:
    """Dynamic int8 quantisation of the Linear layers (weights int8, activations quantised per batch), CPU only.

    The LM head is skipped: encoding never uses it. GPT-2's Conv1D projections are not ``nn.Linear`` and stay fp32.
    """
    import torch
    from torch.ao.quantization import default_dynamic_qconfig, quantize_dynamic

    spec = {
        name: default_dynamic_qconfig
        for name, module in model.named_modules()
        if isinstance(module, torch.nn.Linear) and not name.split(".")[-1] == "lm_head"
    }
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # torch.ao.quantization is deprecated in favour of torchao (not installed)
        return quantize_dynamic(model, spec, dtype=torch.qint8, inplace=True)
