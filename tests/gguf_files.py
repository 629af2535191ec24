"""Small real GGUF files written with llama.cpp's own `gguf` writer, for header-level tests."""

from __future__ import annotations

from pathlib import Path

import gguf
import numpy as np


def write_vocab_gguf(
    path: Path,
    tokens: list[str],
    token_types: list[int] | None = None,
    architecture: str = "llama",
    tensor: bool = True,
) -> Path:
    """A GGUF with a vocabulary and one tiny tensor (no usable weights: header tests only)."""
    writer = gguf.GGUFWriter(str(path), architecture)
    writer.add_name(path.stem)
    writer.add_context_length(2048)
    writer.add_tokenizer_model("gpt2")
    writer.add_token_list(tokens)
    writer.add_token_types(token_types or [gguf.TokenType.NORMAL] * len(tokens))
    if tensor:
        writer.add_tensor("token_embd.weight", np.zeros((4, 8), dtype=np.float32))
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    return path
