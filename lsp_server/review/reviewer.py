"""Reviewing one unit on the model thread: with an engine that scores tokens, the plausible
one-token defects the model confirms by likelihood (review/verify.py); else the model's JSON
answer, filtered."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

from hintwise.lsp_server.code.units import Unit
from hintwise.lsp_server.review.comments import (
    Comment,
    apply_replacement,
    filter_comments,
    map_range,
    parse_comments,
)
from hintwise.lsp_server.review.question import review_request
from hintwise.lsp_server.review.verify import Verified, verify
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
    """Review one unit; None when cancelled meanwhile.

    With an engine that scores tokens (the local llama.cpp one) a comment is shown only for a
    plausible one-token defect (a swapped comparison, boolean or arithmetic operator, an
    off-by-one constant, a dropped or added `not`) whose correction the model finds likelier than
    the code as written by a calibrated margin (review/verify.py); its message states that fact
    and its fix is the corrected line. Engines without scoring get the plain schema-constrained
    review.
    """
    if isinstance(engine, TokenScorer):
        started = time.perf_counter()
        found = verify(engine, f"# {language}\n", unit.text, language, cancelled)
        if found is None or cancelled():
            return None
        latency = (time.perf_counter() - started) * 1000
        return _verified_review(found, unit, text, language, flagged_lines, max_per_unit, latency)
    request = review_request(unit, language, max_per_unit)
    generation = engine.generate(request, cancelled)
    if generation.stop_reason == "cancelled":
        return None
    comments, dropped = parse_comments(generation.text, unit)
    if generation.stop_reason in ("max_tokens", "time", "context") and not comments:
        dropped[f"answer cut ({generation.stop_reason})"] = 1
    kept, filtered = filter_comments(comments, text.split("\n"), flagged_lines, max_per_unit)
    for reason, count in filtered.items():
        dropped[reason] = dropped.get(reason, 0) + count
    _finish(kept, unit, text, language)
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


def _verified_review(
    found: list[Verified],
    unit: Unit,
    text: str,
    language: str,
    flagged_lines: set[int],
    max_per_unit: int,
    latency_ms: float,
) -> UnitReview:
    """One comment per line, best gain first, up to the unit's cap; the raw answer lists the
    verified swaps (for `hintwise review --format json` readers and the benchmark)."""
    comments: list[Comment] = []
    dropped: dict[str, int] = {}
    for verified in found:
        line = unit.start_line + verified.line
        if line in flagged_lines:
            dropped["line already has a diagnostic"] = (
                dropped.get("line already has a diagnostic", 0) + 1
            )
        elif all(c.line != line for c in comments) and len(comments) < max_per_unit:
            comments.append(Comment(line, "warning", verified.message(), verified.replacement))
    comments.sort(key=lambda c: c.line)
    for comment in comments:
        if apply_replacement(text, language, comment) is None:
            comment.replacement = None
    _finish(comments, unit, text, language)
    raw = "\n".join(
        f"line {unit.start_line + v.line + 1}: {v.swap.written!r} → {v.swap.fix!r} ({v.gain:+.1f})"
        for v in found
    )
    # The question a reviewer model would be asked: what the feedback store exports as the
    # prompt of these comments (KTO rows), so a tuned model learns to answer it with them.
    messages = review_request(unit, language, max_per_unit).messages or [{"content": ""}]
    return UnitReview(unit, messages[0]["content"], raw, comments, dropped, "stop", latency_ms)


def _finish(comments: list[Comment], unit: Unit, text: str, language: str) -> None:
    for comment in comments:
        comment.unit = unit.key
        map_range(text, language, comment)
