"""Whether a plausible correction makes a unit likelier to the model: the evidence a review
comment needs before it is shown.

A token the model did not expect is weak evidence on its own (a 270M model is surprised by `|` in
`str | None`, by `x is None`, by any string default). So a comment is only shown for a syntactic
swap (code/swaps.py) that the model, reading the corrected code, finds likelier than the code as
written by a wide margin: the swapped token and the lines after it, summed. The most surprising
swap sites are checked first, at most MAX_CHECKS per unit, each from where it differs (the
context keeps the unit's start cached), over the swapped line and the WINDOW_LINES after it.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

from hintwise.lsp_server.code.swaps import Swap, swaps
from hintwise.models.engine import TokenScore, TokenScorer

# A site is checked when a token of it (see suspect_span) is at least this far (natural log) below
# the model's own choice there: a token the model expected is no slip.
SUSPECT_GAP = 1.0
MAX_CHECKS = 6
# Lines after the swapped one that the likelihoods compare (the cost of a check grows with them).
WINDOW_LINES = 3
# How much likelier (natural log) the corrected code must be: above every gain seen on clean
# standard-library code (parts of 11 modules and the clean twins of bench/review.py: up to 5.6 for
# an arithmetic swap, 5.9 for `is` → `is not`, 4.7 for a constant), where no comment is wanted. A
# `not` added or removed is never shown: the model prefers `if not x:` or drops a `not` by habit
# (clean code up to e^5.6, a correct line of a seeded function e^8.5) while the seeded missing
# `not`s scored at most e^1.6. Their sites are still checked (what the benchmarks measured).
# `is` ↔ `is not` and `in` ↔ `not in` are the same slip: on the correct lines of the seeded
# functions they gave 4 false comments (e^6.7 to e^7.9, one line) and no hit, so they need e^9.
MARGIN = 6.0
MARGINS = {"negation": math.inf, "negated comparison": 9.0}


@dataclass
class Verified:
    """A swap the model prefers to the code as written."""

    swap: Swap
    line: int  # 0-based line of the unit's text
    gain: float  # log-likelihood of the corrected window minus that of the written one
    surprise: float  # how far the written token was below the model's own choice
    replacement: str  # the corrected line

    def message(self) -> str:
        times = f"{math.exp(min(self.gain, 50)):.0f}×"
        written, fix = self.swap.written.strip(), self.swap.fix.strip()
        if not written:
            return f"Missing `not`? The model finds this condition negated {times} likelier."
        if self.swap.kind == "negation":
            return f"Is this `not` wrong? The model finds the code without it {times} likelier."
        return (
            f"`{written}` may be a slip for `{fix}`: the model finds `{fix}` {times} likelier here."
        )


def suspects(text: str, scores: list[TokenScore], sites: list[Swap]) -> list[tuple[Swap, float]]:
    """The swap sites worth checking, most surprising first: (swap, how far the token there was
    below the model's choice), at most MAX_CHECKS."""
    ranked = []
    for swap in sites:
        gaps = [s.expected_logprob - s.logprob for s in _tokens_at(scores, *suspect_span(swap))]
        gap = max((g for g in gaps if not math.isnan(g)), default=0.0)
        if gap >= SUSPECT_GAP:
            ranked.append((swap, gap))
    ranked.sort(key=lambda pair: -pair[1])
    return ranked[:MAX_CHECKS]


def verify(
    engine: TokenScorer,
    prefix: str,
    text: str,
    language: str,
    cancelled: Callable[[], bool],
    margin: float = MARGIN,
) -> list[Verified] | None:
    """The swaps of `text` the model finds likelier than what is written by `margin`, best
    first; None when cancelled."""
    checked = check_all(engine, prefix, text, language, cancelled)
    if checked is None:
        return None
    return sorted(
        (v for v in checked if v.gain >= MARGINS.get(v.swap.kind, margin)), key=lambda v: -v.gain
    )


def check_all(
    engine: TokenScorer,
    prefix: str,
    text: str,
    language: str,
    cancelled: Callable[[], bool],
) -> list[Verified] | None:
    """Every suspect swap with its gain (the benchmark calibrates the margin on these). Only the
    tokens at swap sites are scored first; code without any site costs nothing."""
    sites = swaps(text, language)
    if not sites:
        return []
    scores = engine.score(prefix, text, cancelled, [suspect_span(s) for s in sites])
    if scores is None:
        return None if cancelled() else []
    chosen = suspects(text, scores, sites)
    # Last site first: each check then finds the unit's start up to its own site in the cache.
    chosen.sort(key=lambda pair: -pair[0].start)
    checked = []
    for swap, surprise in chosen:
        gain = _gain(engine, prefix, text, swap, cancelled)
        if gain is None:
            return None
        line = text.count("\n", 0, swap.start)
        fixed = swap.apply(text).split("\n")
        checked.append(Verified(swap, line, gain, surprise, fixed[line]))
    return checked


def _gain(
    engine: TokenScorer, prefix: str, text: str, swap: Swap, cancelled: Callable[[], bool]
) -> float | None:
    """Log-likelihood of the corrected window minus the written one's, from the first token
    where they differ to the end of the window (a line end: tokens never span a newline).
    -inf when a window could not be scored."""
    ends = [i for i in range(swap.start, len(text)) if text[i] == "\n"]
    cut = ends[WINDOW_LINES] if len(ends) > WINDOW_LINES else len(text)
    line_start = text.rfind("\n", 0, swap.start) + 1
    written = engine.score(prefix, text[:cut], cancelled, [(line_start, cut)])
    fixed_text = swap.apply(text[:cut])
    fixed = engine.score(prefix, fixed_text, cancelled, [(line_start, len(fixed_text))])
    if written is None or fixed is None:
        return None if cancelled() else -math.inf
    first = 0
    while (
        first < min(len(fixed), len(written))
        and fixed[first].offset == written[first].offset
        and fixed[first].text == written[first].text
    ):
        first += 1
    gain = sum(s.logprob for s in fixed[first:]) - sum(s.logprob for s in written[first:])
    return -math.inf if math.isnan(gain) else gain


def suspect_span(swap: Swap) -> tuple[int, int]:
    """The characters whose tokens show a slip: the operator's (all of `is not`), and for `is`
    the token after it too (where `not` was expected: `x is None` meant `x is not None`)."""
    end = max(swap.end, swap.start + 1)
    return (swap.start, end + 1 if swap.written == "is" else end)


def _tokens_at(scores: list[TokenScore], start: int, end: int) -> list[TokenScore]:
    """The scored tokens that overlap characters start..end."""
    return [s for s in scores if s.offset < end and start < s.offset + max(len(s.text), 1)]
