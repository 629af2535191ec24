"""Prompt windows and token healing on the real Gemma vocabulary."""

from __future__ import annotations

import pytest

from hintwise.models.prompt import fit_prefix, fit_suffix, heal

pytestmark = pytest.mark.model


def test_fit_prefix_keeps_short_prompts_whole(gemma_engine):
    window = fit_prefix(gemma_engine.tokenize, "def f():\n    return 1\n", 100)
    assert window.cut_chars == 0
    assert window.text == "def f():\n    return 1\n"


def test_fit_prefix_cuts_at_a_line_start_with_room_to_type(gemma_engine):
    prefix = "".join(f"line_{i} = {i}\n" for i in range(500)) + "x = "
    window = fit_prefix(gemma_engine.tokenize, prefix, 200)
    assert prefix[window.cut_chars - 1] == "\n"
    assert window.text.startswith("line_")
    assert 100 <= len(window.tokens) <= 200


def test_fit_prefix_handles_one_enormous_line(gemma_engine):
    prefix = "x = [" + ", ".join(str(i) for i in range(5000))
    window = fit_prefix(gemma_engine.tokenize, prefix, 300)
    assert len(window.tokens) <= 300
    assert prefix.endswith(window.text)


def test_fit_suffix_ends_at_a_line_end(gemma_engine):
    suffix = "".join(f"    y{i} = {i}\n" for i in range(200))
    tokens = fit_suffix(gemma_engine.tokenize, suffix, 50)
    assert len(tokens) <= 50
    assert gemma_engine.llm.detokenize(tokens).decode().endswith("\n")


def test_heal_backs_off_the_last_token(gemma_engine):
    tokens = gemma_engine.tokenize("    ret")
    healing = heal(tokens, gemma_engine.piece)
    assert healing.text == b"ret"
    assert healing.tokens == tokens[:-1]
    allowed = gemma_engine.piece_index().allowed(b"ret", gemma_engine.piece)
    pieces = {gemma_engine.piece(t) for t in allowed}
    assert b"return" in pieces
    assert all(p.startswith(b"ret") or b"ret".startswith(p) for p in pieces)


def test_healing_after_indentation_keeps_the_users_amount_of_whitespace(gemma_engine):
    allowed = gemma_engine.piece_index().allowed(b"    ", gemma_engine.piece)
    pieces = {gemma_engine.piece(t) for t in allowed}
    assert b"    " in pieces
    assert b"        " not in pieces  # deeper indentation is not the user's
