"""The base model for training: the same GGUF the server runs, loaded by transformers.

transformers dequantizes the GGUF into a regular model (Gemma 3 270M: 268 M parameters in
float32); the tokenizer comes from the same file, so its ids are the ids llama.cpp uses. Both
take long to build from the GGUF (the tokenizer alone ~45 s for Gemma's 262,144 tokens), so
the first load saves them in a cache folder (safetensors, config.json, tokenizer.json) that
later runs load in seconds. The cache is written beside and renamed into place: a killed
first run leaves no half cache.
"""

from __future__ import annotations

import json
import os
import shutil
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

os.environ.setdefault("HF_HUB_OFFLINE", "1")  # a GGUF on disk: never ask the hub for anything
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

WEIGHTS = "model.safetensors"


@dataclass
class Base:
    model: Any
    tokenizer: Any
    load_s: float
    cached: bool  # loaded from the cache folder, not from the GGUF

    def tokenize(self, text: str) -> list[int]:
        return list(self.tokenizer(text, add_special_tokens=False)["input_ids"])

    @property
    def bos(self) -> int | None:
        return self.tokenizer.bos_token_id


def cache_dir(base_gguf: Path, parent: Path) -> Path:
    """The cache folder of `base_gguf`'s dequantized model under `parent`."""
    from hintwise.models.files.adapters import model_key

    return parent / f"base-{model_key(base_gguf)}"


def _from_gguf(base_gguf: Path, transformers: Any, torch: Any) -> tuple[Any, Any]:
    folder, name = str(base_gguf.parent), base_gguf.name
    tokenizer = transformers.AutoTokenizer.from_pretrained(folder, gguf_file=name)
    model = transformers.AutoModelForCausalLM.from_pretrained(
        folder, gguf_file=name, dtype=torch.float32
    )
    return model, tokenizer


def _write_cache(model: Any, tokenizer: Any, cache: Path, safetensors_torch: Any) -> None:
    """config.json without the GGUF quantization note (transformers refuses to save a model it
    dequantized itself, so the weights go through safetensors directly) and the weights, with
    the output head tied to the embeddings stored once."""
    partial = cache.with_name(cache.name + ".partial")
    shutil.rmtree(partial, ignore_errors=True)
    partial.mkdir(parents=True)
    config = model.config.to_dict()
    config.pop("quantization_config", None)
    config["architectures"] = [type(model).__name__]
    (partial / "config.json").write_text(json.dumps(config, indent=1), encoding="utf-8")
    tokenizer.save_pretrained(str(partial))
    safetensors_torch.save_model(model, str(partial / WEIGHTS))
    shutil.rmtree(cache, ignore_errors=True)
    partial.rename(cache)


def load(base_gguf: Path, modules: dict[str, Any], cache_parent: Path | None = None) -> Base:
    """The dequantized model in float32 and its tokenizer: from the cache folder under
    `cache_parent` when it is there, else from `base_gguf` (then cached)."""
    import safetensors.torch

    torch, transformers = modules["torch"], modules["transformers"]
    transformers.utils.logging.disable_progress_bar()  # the caller reports progress
    started = time.monotonic()
    cache = cache_dir(base_gguf, cache_parent) if cache_parent is not None else None
    if cache is not None and (cache / WEIGHTS).is_file():
        tokenizer = transformers.AutoTokenizer.from_pretrained(str(cache))
        model = transformers.AutoModelForCausalLM.from_pretrained(str(cache), dtype=torch.float32)
        return Base(model, tokenizer, time.monotonic() - started, cached=True)
    model, tokenizer = _from_gguf(base_gguf, transformers, torch)
    if cache is not None:
        _write_cache(model, tokenizer, cache, safetensors.torch)
    return Base(model, tokenizer, time.monotonic() - started, cached=False)
