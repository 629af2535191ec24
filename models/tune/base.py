"""The base model for training: the same GGUF the server runs, loaded by transformers.

transformers dequantizes the GGUF into a regular model (Gemma 3 270M: 268 M parameters in
float32); the tokenizer comes from the same file, so its ids are the ids llama.cpp uses.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

os.environ.setdefault("HF_HUB_OFFLINE", "1")  # a GGUF on disk: never ask the hub for anything
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")


@dataclass
class Base:
    model: Any
    tokenizer: Any
    load_s: float

    def tokenize(self, text: str) -> list[int]:
        return list(self.tokenizer(text, add_special_tokens=False)["input_ids"])

    @property
    def bos(self) -> int | None:
        return self.tokenizer.bos_token_id

    @property
    def pad(self) -> int:
        pad = self.tokenizer.pad_token_id
        return 0 if pad is None else int(pad)


def load(base_gguf: Path, modules: dict[str, Any]) -> Base:
    """The dequantized model in float32 and its tokenizer, both from `base_gguf`."""
    import time

    torch, transformers = modules["torch"], modules["transformers"]
    started = time.monotonic()
    transformers.utils.logging.disable_progress_bar()  # the caller reports progress
    folder, name = str(base_gguf.parent), base_gguf.name
    tokenizer = transformers.AutoTokenizer.from_pretrained(folder, gguf_file=name)
    model = transformers.AutoModelForCausalLM.from_pretrained(
        folder, gguf_file=name, dtype=torch.float32
    )
    return Base(model=model, tokenizer=tokenizer, load_s=time.monotonic() - started)
