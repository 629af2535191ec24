"""The review pipeline before issue 13, kept for side-by-side benchmarks (bench/review.py).

Lines where the first token's log-prob was SURPRISE_GAP below the model's choice (operators,
constants and keywords, by token text: code/surprise.candidates), a grounded JSON question about
those lines, and one comment per candidate line (the model's message, else the surprise).
"""

from __future__ import annotations

from hintwise.lsp_server.code.surprise import Candidate, candidates
from hintwise.lsp_server.code.units import Unit
from hintwise.lsp_server.review.comments import (
    Comment,
    apply_replacement,
    filter_comments,
    parse_comments,
)
from hintwise.lsp_server.review.question import grounded_request


def review_unit_today(engine, unit: Unit, text: str, language: str, max_per_unit: int) -> list:
    """The comments the pre-issue-13 pipeline showed for one unit."""
    never = lambda: False  # noqa: E731
    scores = engine.score(f"# {language}\n", unit.text, never)
    found = candidates(unit, scores, max_per_unit, language=language) if scores else None
    if not found:
        return []
    generation = engine.generate(grounded_request(unit, language, found), never)
    comments, _ = parse_comments(generation.text, unit)
    kept, _ = filter_comments(comments, text.split("\n"), set(), max_per_unit)
    return _merge(kept, found, text, language)


def _merge(kept: list[Comment], found: list[Candidate], text: str, language: str) -> list:
    """One comment per candidate line: the model's if it wrote one there, else the surprise."""
    by_line = {comment.line: comment for comment in kept}
    merged = []
    for candidate in found:
        comment = by_line.get(candidate.line) or Comment(
            candidate.line, "warning", candidate.message()
        )
        if comment.replacement is None or apply_replacement(text, language, comment) is None:
            comment.replacement = candidate.replacement
            if apply_replacement(text, language, comment) is None:
                comment.replacement = None
        merged.append(comment)
    return sorted(merged, key=lambda c: c.line)
