"""Where the model was surprised: tokens of a piece of code that the model, scoring it token by
token, expected to be something else by a wide margin.

An explanation's culprit is chosen among such lines (`any_token=True`); the facts say what was
written and what the model expected. Without `any_token` only operators, constants and keywords
count (a swapped `<`, an off-by-one `1`, a dropped `not`): the review before issue 13 used that
(bench/review_today.py); reviews now use syntactic swaps checked by likelihood (review/verify.py),
because a surprising token alone gave ~14 false comments per 1,000 lines of clean code. Tokens
in comments and strings are prose and never count.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass

from tree_sitter import Node

from hintwise.lsp_server.code.syntax import CodeError, parse
from hintwise.lsp_server.code.units import Unit
from hintwise.models.engine import TokenScore

# Tokens where a swapped operator, constant or keyword is a likely bug: the seeded defects of the
# benchmark and the bug classes the review prompt names (wrong comparison, off-by-one, inverted
# condition). A token counts when it, or what the model expected instead, is one of these.
SWAPPABLE = re.compile(
    r"^(==|!=|<=|>=|<|>|\+|-|\*|/|//|%|\+=|-=|\*=|&&|\|\||!|&|\||and|or|not|is|in|\d+"
    r"|True|False|None|true|false|null|nil|if|elif|else)$"
)
# How much likelier the model's own choice must be than the token written (natural log: e^4 ≈ 55×).
SURPRISE_GAP = 4.0
_NEGATIONS = ("not", "!")
_WORD = re.compile(r"\w")
_LETTER = re.compile(r"[^\W\d]")
_PROSE_NODES = ("string", "template_string", "raw_string_literal")


def worth_swapping(text: str, score: TokenScore, written: str, expected: str) -> bool:
    """An operator, constant or keyword the model would have written differently; or a missing
    negation. Not a piece of a longer name (`is` of `is_prime`), and not a name the model would
    have replaced by a constant or a new statement (`n` → `False`, `limit` → `if`): a 270M model
    guessing another statement is no sign of a bug."""
    start = score.offset + len(score.text) - len(score.text.lstrip())
    end = start + len(written)
    before = text[start - 1] if 0 < start <= len(text) else ""
    after = text[end] if 0 <= end < len(text) else ""
    glued = (_WORD.match(before) and _WORD.match(written[0])) or (
        _WORD.match(after) and _WORD.match(written[-1])
    )
    if glued:
        return False
    if SWAPPABLE.match(written) or expected in _NEGATIONS:
        return True
    # a token of operators, digits and punctuation together (`!='`, `1)`) swapped for one
    return not _LETTER.search(written) and bool(SWAPPABLE.match(expected))


@dataclass
class Candidate:
    """A line where the model expected another operator, constant or keyword."""

    line: int  # 0-based file line
    written: str
    expected: str
    gap: float  # log-prob of the model's choice minus that of the written token
    replacement: str | None  # the line with the expected token in place

    def message(self) -> str:
        return (
            f"`{self.written.strip()}` is unexpected here; the model expected "
            f"`{self.expected.strip()}` ({math.exp(min(self.gap, 50)):.0f}× likelier). "
            "Check the operator or constant."
        )


def prose_spans(text: str, language: str) -> list[tuple[int, int]]:
    """Character spans of the comments and strings of `text` (tree-sitter): prose, where an
    unexpected word is no bug."""
    try:
        tree = parse(text, language)
    except CodeError:
        return []
    data = text.encode("utf-8", errors="surrogatepass")
    spans: list[tuple[int, int]] = []

    def char(byte: int) -> int:
        return len(data[:byte].decode("utf-8", errors="surrogatepass"))

    def visit(node: Node) -> None:
        if "comment" in node.type or node.type in _PROSE_NODES:
            spans.append((char(node.start_byte), char(node.end_byte)))
            return
        for child in node.children:
            visit(child)

    visit(tree.root_node)
    return spans


def _candidate(unit: Unit, score: TokenScore, written: str, expected: str) -> Candidate:
    start = score.offset + len(score.text) - len(score.text.lstrip())
    line = unit.text.count("\n", 0, start)
    swapped = unit.text[:start] + expected + unit.text[start + len(written) :]
    lines = swapped.split("\n")
    replacement = lines[line] if expected and line < len(lines) else None
    gap = score.expected_logprob - score.logprob
    return Candidate(unit.start_line + line, written, expected, gap, replacement)


def candidates(
    unit: Unit,
    scores: list[TokenScore],
    limit: int,
    any_token: bool = False,
    language: str = "python",
) -> list[Candidate]:
    """The `limit` lines of the unit whose most surprising operator/constant token (any token
    with `any_token`) is furthest below the model's own choice (by at least SURPRISE_GAP);
    tokens in comments and strings do not count."""
    best: dict[int, Candidate] = {}
    prose = prose_spans(unit.text, language)
    for score in scores:
        if score.offset >= len(unit.text):
            continue  # past the code shown (what the model saw after it)
        if any(start <= score.offset < end for start, end in prose):
            continue
        written, expected = score.text.strip(), score.expected.strip()
        if not written or written == expected:
            continue
        if not any_token and not worth_swapping(unit.text, score, written, expected):
            continue
        if score.expected_logprob - score.logprob < SURPRISE_GAP:
            continue
        found = _candidate(unit, score, written, expected)
        if found.line not in best or best[found.line].gap < found.gap:
            best[found.line] = found
    return sorted(best.values(), key=lambda c: -c.gap)[:limit]
