"""Review precision with the real bundled model: clean modern Python gets no comment, a seeded
slip gets one on its line with the fix, and scoring from the cache gives the numbers a full
scoring gives."""

from __future__ import annotations

import math

import pytest

from hintwise.lsp_server.code.units import find_units
from hintwise.lsp_server.review.reviewer import review_unit
from hintwise.lsp_server.review.verify import MARGIN, check_all

pytestmark = pytest.mark.model

MODERN = '''from dataclasses import dataclass


@dataclass
class Point:
    x: int | None = None
    label: str = "origin"


def describe(point: Point | None, *, style: str = "short") -> str | None:
    """Describe a point, or None when there is none."""
    if point is None:
        return None
    match style:
        case "short" | "brief":
            return f"{point.label}: {point.x}"
        case _:
            pass
    if (size := len(point.label)) > 10:
        return f"{point.label[:10]}… ({size} chars)"
    return f"Point {point.label!r} at x={point.x or 0}"


def first_word(text: str | None, default: str = "") -> str:
    words = (text or default).split()
    return words[0] if words else default
'''

SEEDED = """def name_length(user):
    if user is None:
        return len(user.name)
    return 0


def last_item(items):
    if len(items) == 0:
        return None
    return items[len(items) - 1]
"""


def review(engine, text: str) -> list:
    comments = []
    for unit in find_units(text, "python"):
        result = review_unit(engine, unit, text, "python", set(), 2, lambda: False)
        assert result is not None
        comments += result.comments
    return comments


def test_clean_modern_python_gets_no_comment(gemma_engine):
    assert review(gemma_engine, MODERN) == []
    # and not by a hair: every checked swap is far below the margin
    for unit in find_units(MODERN, "python"):
        checked = check_all(gemma_engine, "# python\n", unit.text, "python", lambda: False)
        assert checked is not None
        assert all(c.gain < MARGIN - 2 for c in checked), checked


def test_a_seeded_slip_gets_a_comment_on_its_line_with_the_fix(gemma_engine):
    comments = review(gemma_engine, SEEDED)
    assert [c.line for c in comments] == [1], comments  # and nothing on the correct function
    # `is` for `is not`: about e^11 on the dev machine, the margin is e^9 for a negated comparison
    assert comments[0].replacement == "    if user is not None:"
    assert "`is` may be a slip for `is not`" in comments[0].message


def test_scoring_a_changed_text_from_the_cache_matches_a_full_scoring(gemma_engine):
    from hintwise.models.llama import scoring

    never = lambda: False  # noqa: E731
    changed = SEEDED.replace("is None", "is not None")
    gemma_engine.score("# python\n", SEEDED, never)
    reused = gemma_engine.score("# python\n", changed, never)
    scoring._LAST.clear()
    full = gemma_engine.score("# python\n", changed, never)
    assert reused is not None and full is not None
    assert [s.text for s in reused] == [s.text for s in full]
    # equal up to llama.cpp's batch-size rounding (chunks start elsewhere)
    assert max(abs(a.logprob - b.logprob) for a, b in zip(reused, full, strict=True)) < 0.1
    # only the tokens asked for are scored (the output layer is most of the cost)
    scoring._LAST.clear()
    start = changed.index("last_item")
    sparse = gemma_engine.score("# python\n", changed, never, [(start, start + 4)])
    assert sparse is not None
    scored = [s for s in sparse if not math.isnan(s.logprob)]
    assert 1 <= len(scored) <= 3
    for token in scored:
        [same] = [s for s in full if s.offset == token.offset]
        assert abs(same.logprob - token.logprob) < 0.1
