"""Reviewing one unit on the model thread: score its tokens (engines that can), keep the lines
where the model expected another operator or constant, ask for comments on those lines only, and
merge what the model said with what it expected."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from hintwise.lsp_server.code.surprise import Candidate, candidates
from hintwise.lsp_server.code.units import Unit
from hintwise.lsp_server.review.comments import (
    Comment,
    apply_replacement,
    filter_comments,
    map_range,
    parse_comments,
)
from hintwise.lsp_server.review.question import grounded_request, review_request
from hintwise.models.engine import Engine, TokenScorer


@dataclass
class UnitReview:
    """What the model answered for one unit and what survived the filters."""

    unit: Unit
    prompt: str
    raw: str
    comments: list[Comment]
    dropped: dict[str, int]
    stop_reason: str
    latency_ms: float


def review_unit(
    engine: Engine,
    unit: Unit,
    text: str,
    language: str,
    flagged_lines: set[int],
    max_per_unit: int,
    cancelled: Callable[[], bool],
) -> UnitReview | None:
    """Ask the model about one unit and filter its answer; None when cancelled meanwhile.

    With an engine that scores tokens (the local llama.cpp one), the comments are grounded in
    the model's own predictions: the lines where it expected another operator or constant are
    the only lines the JSON answer may name, and each such line gets a comment (the model's
    message when it survives the filters, else what the model expected there). Engines without
    scoring get the plain schema-constrained review.
    """
    scores = (
        engine.score(f"# {language}\n", unit.text, cancelled)
        if isinstance(engine, TokenScorer)
        else None
    )
    if cancelled():
        return None
    found = candidates(unit, scores, max_per_unit, language=language) if scores else None
    if scores is not None and not found:
        return UnitReview(unit, "", "", [], {}, "stop", 0.0)
    request = (
        grounded_request(unit, language, found)
        if found
        else review_request(unit, language, max_per_unit)
    )
    generation = engine.generate(request, cancelled)
    if generation.stop_reason == "cancelled":
        return None
    comments, dropped = parse_comments(generation.text, unit)
    if generation.stop_reason in ("max_tokens", "time", "context") and not comments:
        dropped[f"answer cut ({generation.stop_reason})"] = 1
    kept, filtered = filter_comments(comments, text.split("\n"), flagged_lines, max_per_unit)
    for reason, count in filtered.items():
        dropped[reason] = dropped.get(reason, 0) + count
    if found:
        kept = _merge(kept, found, text, language, flagged_lines)
    for comment in kept:
        comment.unit = unit.key
        map_range(text, language, comment)
    prompt = request.messages[0]["content"] if request.messages else request.prompt
    return UnitReview(
        unit,
        prompt,
        generation.text,
        kept,
        dropped,
        generation.stop_reason,
        generation.prompt_ms + generation.generate_ms,
    )


def _merge(
    kept: list[Comment], found: list[Candidate], text: str, language: str, flagged: set[int]
) -> list[Comment]:
    """One comment per candidate line: the model's if it wrote one there, else the surprise."""
    by_line = {comment.line: comment for comment in kept}
    merged = []
    for candidate in found:
        if candidate.line in flagged:
            continue
        comment = by_line.get(candidate.line) or Comment(
            candidate.line, "warning", candidate.message()
        )
        if comment.replacement is None or apply_replacement(text, language, comment) is None:
            comment.replacement = candidate.replacement
            if apply_replacement(text, language, comment) is None:
                comment.replacement = None
        merged.append(comment)
    return sorted(merged, key=lambda c: c.line)
