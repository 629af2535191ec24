"""FIM prompt layout per model family, from the tokens a GGUF vocabulary declares."""

from __future__ import annotations

import gguf
import pytest
from gguf_files import write_vocab_gguf

from hintwise.models import fim
from hintwise.models.files.gguf import read_header

CONTROL = gguf.TokenType.CONTROL
BASE = ["<unk>", "<s>", "</s>", "def", " f", "(", "):", "\n", "    ", "return", " x", "pass"]

# family → (marker texts in prefix/suffix/middle order, stop texts, order) as each model ships them
FAMILIES = {
    "qwen2.5-coder": (
        ["<|fim_prefix|>", "<|fim_suffix|>", "<|fim_middle|>"],
        ["<|fim_pad|>", "<|file_sep|>", "<|endoftext|>"],
        "psm",
    ),
    "codegemma": (
        ["<|fim_prefix|>", "<|fim_suffix|>", "<|fim_middle|>"],
        ["<|file_separator|>"],
        "psm",
    ),
    "starcoder2": (["<fim_prefix>", "<fim_suffix>", "<fim_middle>"], ["<file_sep>"], "psm"),
    "deepseek-coder": (
        ["<｜fim▁begin｜>", "<｜fim▁hole｜>", "<｜fim▁end｜>"],
        ["<｜end▁of▁sentence｜>"],
        "psm",
    ),
    "codellama": (["▁<PRE>", "▁<SUF>", "▁<MID>"], ["▁<EOT>"], "psm"),
    "codestral": (["[PREFIX]", "[SUFFIX]", "[MIDDLE]"], [], "spm"),
}


def _vocabulary_file(tmp_path, family: str):
    markers, stops, _ = FAMILIES[family]
    tokens = BASE + markers + stops
    types = [gguf.TokenType.NORMAL] * len(BASE) + [CONTROL] * (len(markers) + len(stops))
    # Name the file misleadingly: detection must come from the vocabulary, not the file name.
    return write_vocab_gguf(tmp_path / "model.gguf", tokens, types), tokens


@pytest.mark.parametrize("family", sorted(FAMILIES))
def test_fim_tokens_are_read_from_the_vocabulary(tmp_path, family):
    path, tokens = _vocabulary_file(tmp_path, family)
    header = read_header(path, fim.marker_texts())
    found = {text: token_id for text, (token_id, _) in header.found_tokens.items()}
    detected = fim.detect(found)
    markers, stops, order = FAMILIES[family]
    assert detected is not None
    assert detected.format.order == order
    assert [detected.prefix_id, detected.suffix_id, detected.middle_id] == [
        tokens.index(text) for text in markers
    ]
    assert {tokens.index(text) for text in stops} <= detected.stop_ids


@pytest.mark.parametrize("family", sorted(FAMILIES))
def test_prompt_layout_puts_prefix_and_suffix_around_the_markers(tmp_path, family):
    path, _ = _vocabulary_file(tmp_path, family)
    header = read_header(path, fim.marker_texts())
    detected = fim.detect({t: i for t, (i, _) in header.found_tokens.items()})
    prefix, suffix, bos = [3, 4, 5, 6, 7, 8], [10, 7], [1]
    laid_out = fim.build_tokens(detected, prefix, suffix, bos)
    pre, suf, mid = detected.prefix_id, detected.suffix_id, detected.middle_id
    if FAMILIES[family][2] == "spm":
        assert laid_out == [1, suf, *suffix, pre, *prefix, mid]
    else:
        assert laid_out == [1, pre, *prefix, suf, *suffix, mid]
    text = fim.build_text(detected.format, "def f():\n    ", "\n")
    assert text.endswith(detected.format.middle)


def test_a_vocabulary_without_markers_gets_no_fim(tmp_path):
    # A "coder" file name does not make a model FIM-capable.
    path = write_vocab_gguf(tmp_path / "qwen2.5-coder-1.5b.gguf", BASE)
    header = read_header(path, fim.marker_texts())
    found = {t: i for t, (i, _) in header.found_tokens.items()}
    assert fim.detect(found) is None


def test_partial_marker_sets_are_not_enough(tmp_path):
    tokens = [*BASE, "<fim_prefix>", "<fim_suffix>"]  # no <fim_middle>
    path = write_vocab_gguf(tmp_path / "m.gguf", tokens)
    header = read_header(path, fim.marker_texts())
    assert fim.detect({t: i for t, (i, _) in header.found_tokens.items()}) is None


@pytest.mark.model
def test_the_bundled_models_declare_no_fim_tokens(gemma_path):
    header = read_header(gemma_path, fim.marker_texts())
    assert fim.detect({t: i for t, (i, _) in header.found_tokens.items()}) is None
