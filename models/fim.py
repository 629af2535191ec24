"""Fill-in-the-middle prompt formats, chosen from the tokens a GGUF vocabulary declares.

A model can only infill if it was trained with FIM tokens, and those tokens are in its
vocabulary, so the vocabulary is the ground truth: a file called `qwen-coder.gguf` that lacks
`<|fim_prefix|>` gets plain prefix continuation, and a renamed StarCoder file still gets FIM.
Prompts are built as token ids, never by pasting token texts into a string, so code that happens to
contain `<fim_prefix>` cannot forge a control token.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

Order = Literal["psm", "spm"]


@dataclass(frozen=True)
class FimFormat:
    """One family's FIM layout: which token texts mark prefix, suffix and middle, and in what order.

    `stop` lists token texts that end a FIM answer besides the model's end-of-generation token
    (e.g. a file separator: the model would otherwise go on writing the next file).
    """

    family: str
    prefix: str
    suffix: str
    middle: str
    order: Order = "psm"
    stop: tuple[str, ...] = ()


# Families are tried in this order; the first whose three markers are all in the vocabulary wins.
FORMATS: tuple[FimFormat, ...] = (
    # Qwen2.5-Coder and CodeGemma share marker texts; their stop tokens differ, so list both.
    FimFormat(
        "qwen2.5-coder / codegemma",
        "<|fim_prefix|>",
        "<|fim_suffix|>",
        "<|fim_middle|>",
        stop=("<|fim_pad|>", "<|file_sep|>", "<|file_separator|>", "<|endoftext|>", "<|im_end|>"),
    ),
    FimFormat(
        "starcoder",
        "<fim_prefix>",
        "<fim_suffix>",
        "<fim_middle>",
        stop=("<file_sep>", "<|endoftext|>", "<fim_pad>"),
    ),
    FimFormat(
        "deepseek-coder",
        "<｜fim▁begin｜>",
        "<｜fim▁hole｜>",
        "<｜fim▁end｜>",
        stop=("<｜end▁of▁sentence｜>", "<|EOT|>"),
    ),
    # Same markers in DeepSeek-Coder-V2's ASCII spelling.
    FimFormat(
        "deepseek-coder",
        "<|fim▁begin|>",
        "<|fim▁hole|>",
        "<|fim▁end|>",
        stop=("<|end▁of▁sentence|>", "<|EOT|>"),
    ),
    # CodeLlama's SentencePiece vocabulary stores the markers with a leading word boundary.
    FimFormat("codellama", "▁<PRE>", "▁<SUF>", "▁<MID>", stop=("▁<EOT>",)),
    FimFormat("codellama", "<PRE>", "<SUF>", "<MID>", stop=("<EOT>",)),
    # Codestral (Mistral) puts the suffix first: [SUFFIX] suffix [PREFIX] prefix, then the middle.
    FimFormat("codestral", "[PREFIX]", "[SUFFIX]", "[MIDDLE]", order="spm", stop=("</s>",)),
)


def marker_texts() -> set[str]:
    """Every token text any format needs: what to look for in a vocabulary."""
    texts: set[str] = set()
    for fmt in FORMATS:
        texts.update((fmt.prefix, fmt.suffix, fmt.middle, *fmt.stop))
    return texts


@dataclass(frozen=True)
class FimTokens:
    """A FIM format bound to one vocabulary's token ids."""

    format: FimFormat
    prefix_id: int
    suffix_id: int
    middle_id: int
    stop_ids: frozenset[int]

    @property
    def family(self) -> str:
        return self.format.family


def detect(vocabulary: dict[str, int]) -> FimTokens | None:
    """Pick the FIM format whose markers the vocabulary (token text → id) holds, if any."""
    for fmt in FORMATS:
        prefix, suffix, middle = (
            vocabulary.get(text) for text in (fmt.prefix, fmt.suffix, fmt.middle)
        )
        if prefix is None or suffix is None or middle is None:
            continue
        stops = frozenset(vocabulary[text] for text in fmt.stop if text in vocabulary)
        return FimTokens(fmt, prefix, suffix, middle, stops)
    return None


def detect_in_header(found_tokens: dict[str, tuple[int, int]]) -> FimTokens | None:
    """`detect` on the tokens a GGUF header scan found (`GGUFHeader.found_tokens`): marker
    texts that are control or user-defined tokens (or untyped), as llama.cpp treats them."""
    # 0 (undefined) and 1 (normal) too: some converters type their FIM markers as normal.
    marker_types = (0, 1, 3, 4)
    return detect(
        {
            text: token_id
            for text, (token_id, token_type) in found_tokens.items()
            if token_type in marker_types
        }
    )


def build_tokens(
    fim: FimTokens,
    prefix: Sequence[int],
    suffix: Sequence[int],
    bos: Sequence[int] = (),
) -> list[int]:
    """Lay out already-tokenized prefix and suffix around the family's markers.

    For prompt-cache reuse the part that changes while typing (the end of the prefix) should come
    last; PSM formats cannot do that, which is why the suffix window is kept short.
    """
    if fim.format.order == "spm":
        return [*bos, fim.suffix_id, *suffix, fim.prefix_id, *prefix, fim.middle_id]
    return [*bos, fim.prefix_id, *prefix, fim.suffix_id, *suffix, fim.middle_id]


def build_text(fmt: FimFormat, prefix: str, suffix: str) -> str:
    """The same layout as text, for servers that take a prompt string (e.g. an HTTP engine)."""
    if fmt.order == "spm":
        return f"{fmt.suffix}{suffix}{fmt.prefix}{prefix}{fmt.middle}"
    return f"{fmt.prefix}{prefix}{fmt.suffix}{suffix}{fmt.middle}"
