"""What a GGUF file holds, from its header alone: family, size, quantization, FIM support,
context length and chat template (`hintwise models list` and `models add`).

Reading the header takes a tenth of a second and loads no weights, so the list stays quick with
a folder of multi-gigabyte models.
"""

from __future__ import annotations

import os
from dataclasses import asdict, dataclass
from pathlib import Path

from hintwise.models import fim
from hintwise.models.errors import GGUFError
from hintwise.models.files.gguf import read_header

# Marker texts of the common chat templates, checked in this order.
CHAT_TEMPLATES = (
    ("<start_of_turn>", "gemma"),
    ("<|im_start|>", "chatml"),
    ("<|start_header_id|>", "llama-3"),
    ("<｜User｜>", "deepseek"),
    ("<|user|>", "phi / zephyr"),
    ("[INST]", "llama-2 / mistral"),
)


def quantization_name(file_type: int | None) -> str | None:
    """llama.cpp's name for `general.file_type` (15 → Q4_K_M), from llama-cpp-python's own
    table of LLAMA_FTYPE constants so new types are named as soon as llama.cpp knows them."""
    if file_type is None:
        return None
    import llama_cpp

    for name, value in vars(llama_cpp).items():
        if name.startswith("LLAMA_FTYPE_") and value == file_type and name != "LLAMA_FTYPE_GUESSED":
            return name.removeprefix("LLAMA_FTYPE_").removeprefix("MOSTLY_").removeprefix("ALL_")
    return f"type {file_type}"


def chat_template_kind(template: str | None) -> str | None:
    if not template:
        return None
    for marker, kind in CHAT_TEMPLATES:
        if marker in template:
            return kind
    return "custom"


@dataclass
class ModelCard:
    """One GGUF file described; `problem` says why it is not usable, if it is not."""

    file: str
    path: str
    size_mb: float
    name: str | None = None
    family: str | None = None  # the llama.cpp architecture (gemma3, llama, qwen2, ...)
    parameters: str | None = None  # the size label the file declares (270M, 1.5B, ...)
    quantization: str | None = None
    fim: str | None = None
    context_length: int | None = None
    chat_template: str | None = None
    problem: str | None = None

    def to_json(self) -> dict:
        return asdict(self)

    def summary(self) -> str:
        """One line for a terminal."""
        if self.problem:
            return f"not usable: {self.problem}"
        parts = [
            f"{self.family}" + (f" {self.parameters}" if self.parameters else ""),
            self.quantization or "?",
            f"FIM ({self.fim})" if self.fim else "no FIM",
            f"context {self.context_length:,}" if self.context_length else "context ?",
            f"chat template {self.chat_template}" if self.chat_template else "no chat template",
        ]
        return ", ".join(parts)


def describe(path: str | os.PathLike[str]) -> ModelCard:
    path = Path(path)
    card = ModelCard(file=path.name, path=str(path), size_mb=round(path.stat().st_size / 1e6, 1))
    try:
        header = read_header(path, fim.marker_texts())
    except GGUFError as error:
        card.problem = str(error)
        return card
    tokens = fim.detect_in_header(header.found_tokens)
    label = header.metadata.get("general.size_label")
    card.name = header.name
    card.family = header.architecture
    card.parameters = str(label) if label else None
    card.quantization = quantization_name(header.file_type)
    card.fim = tokens.family if tokens else None
    card.context_length = header.context_length
    card.chat_template = chat_template_kind(header.chat_template)
    return card
