"""Real GGUF LoRA adapters for tests and benchmarks, written without any training.

The layout is the one llama.cpp's `llama_adapter_lora_init` (src/llama-adapter.cpp) accepts and
`convert_lora_to_gguf.py` writes: `general.type = adapter`, `adapter.type = lora`,
`adapter.lora.alpha`, `general.architecture` equal to the base model's, and for each adapted
weight `W` (ggml shape [n_in, n_out]) a pair `W.lora_a` (ggml [n_in, r], numpy (r, n_in)) and
`W.lora_b` (ggml [r, n_out], numpy (n_out, r)), as PEFT stores lora_A and lora_B. llama.cpp adds
(alpha / r) * B A x to W x. With B all zero the adapter changes nothing, which makes a file that
loads like a trained one but must not alter a single suggestion.
"""

from __future__ import annotations

from pathlib import Path

import gguf
import numpy as np

ALL_LINEAR = ("attn_q", "attn_k", "attn_v", "attn_output", "ffn_gate", "ffn_up", "ffn_down")


def base_shapes(base: Path, targets: tuple[str, ...] = ALL_LINEAR) -> tuple[str, dict]:
    """The base GGUF's architecture and the ggml shapes (n_in, n_out) of its `targets` weights."""
    reader = gguf.GGUFReader(str(base))
    architecture = str(reader.fields["general.architecture"].contents())
    shapes = {}
    for tensor in reader.tensors:
        parts = tensor.name.split(".")
        if len(parts) == 4 and parts[0] == "blk" and parts[2] in targets and parts[3] == "weight":
            shapes[tensor.name] = (int(tensor.shape[0]), int(tensor.shape[1]))
    return architecture, shapes


def write_lora(
    base: Path,
    out: Path,
    rank: int = 8,
    alpha: float = 16.0,
    zero_b: bool = False,
    std: float = 0.02,
    seed: int = 0,
    targets: tuple[str, ...] = ALL_LINEAR,
    dtype: type = np.float32,
    architecture: str | None = None,
    shapes: dict | None = None,
    b_std: float | None = None,
    blocks: str = "all",
) -> Path:
    """A GGUF LoRA for `base`: random A, and random B (or zero B: a no-op adapter).

    `b_std` gives B its own spread (default `std`); `blocks` "first" or "last" adapts only that
    transformer block. `architecture` / `shapes` override what the base says, to write an
    adapter for another model (which llama.cpp must refuse)."""
    found_architecture, found_shapes = base_shapes(base, targets)
    shapes = shapes if shapes is not None else found_shapes
    if blocks != "all":
        numbers = sorted({int(name.split(".")[1]) for name in shapes})
        kept = numbers[0] if blocks == "first" else numbers[-1]
        shapes = {name: shape for name, shape in shapes.items() if name.split(".")[1] == str(kept)}
    b_std = std if b_std is None else b_std
    rng = np.random.default_rng(seed)
    writer = gguf.GGUFWriter(str(out), architecture or found_architecture)
    writer.add_string("general.type", "adapter")
    writer.add_string("adapter.type", "lora")
    writer.add_float32("adapter.lora.alpha", float(alpha))
    for name, (n_in, n_out) in sorted(shapes.items()):
        a = rng.normal(0.0, std, size=(rank, n_in)).astype(dtype)
        b = np.zeros((n_out, rank), dtype) if zero_b else rng.normal(0, b_std, (n_out, rank))
        writer.add_tensor(f"{name}.lora_a", a)
        writer.add_tensor(f"{name}.lora_b", b.astype(dtype))
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    return out
