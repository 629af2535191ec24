"""Where a review may propose a one-token fix: decided by the syntax tree (real tree-sitter), never
inside annotations, decorators, imports, strings, defaults or patterns."""

from __future__ import annotations

from hintwise.lsp_server.code.swaps import swaps

MODERN = '''from typing import Callable

@decorator(1 + 2, flag=not_set)
def f(a: str | None = "x", *, b: int = 1, c=None) -> int | None:
    """Docstring with a < b and 1 + 1."""
    name = f"{a + 1} and {b < 2}"
    label: int | None = None
    match a:
        case 1 | 2:
            pass
    if (n := len(a)) > 3:
        return n
    return {**kw, "k": 3}
'''


def where(text: str) -> set[tuple[str, str, str]]:
    """(line text, written, fix) of every proposed swap."""
    lines = text.split("\n")
    return {(lines[text.count("\n", 0, s.start)].strip(), s.written, s.fix) for s in swaps(text)}


def test_nothing_is_proposed_in_types_decorators_imports_strings_defaults_or_patterns():
    found = where(MODERN)
    lines = {line for line, _, _ in found}
    assert lines == {"if (n := len(a)) > 3:", 'return {**kw, "k": 3}'}, found
    # the comparison, its constant, the walrus' own value is code too: only those lines
    assert ("if (n := len(a)) > 3:", ">", ">=") in found
    assert ("if (n := len(a)) > 3:", "3", "2") in found


def test_each_defect_class_has_its_inverse():
    text = (
        "def g(xs, n, flag, other):\n"
        "    if n == 0 and flag:\n"
        "        return xs[n - 1]\n"
        "    while n < len(xs) or not other:\n"
        "        n += 2\n"
        "    if xs is None or n not in xs:\n"
        "        return n % 8\n"
        "    return -1\n"
    )
    found = {(written, fix) for _, written, fix in where(text)}
    expected = {
        ("==", "!="),
        ("and", "or"),
        ("0", "1"),
        ("", "not "),  # `flag` may have been meant negated
        ("-", "+"),
        ("1", "0"),
        ("1", "2"),
        ("<", "<="),
        ("<", ">"),
        ("or", "and"),
        ("not other", "other"),  # a negation that should not be there
        ("+=", "-="),
        ("2", "1"),
        ("2", "3"),
        ("is", "is not"),
        ("not in", "in"),
        ("%", "//"),
        ("8", "7"),
        ("8", "9"),
    }
    assert expected <= found, expected - found
    # `-1` is never turned into `-0`; a comparison is never negated whole (its operator is)
    assert ("-1", "-0") not in found
    assert all(fix != "not " or written == "" for written, fix in found)


def test_swaps_apply_to_the_exact_characters():
    text = "def h(s: str) -> bool:\n    return s.count('é') >= 2\n"
    [comparison, *_] = [s for s in swaps(text) if s.kind == "comparison"]
    assert comparison.apply(text).endswith("return s.count('é') > 2\n")


def test_other_languages_get_no_swaps():
    assert swaps("function f(a) { return a < 1; }", "javascript") == []


def test_suspects_are_the_sites_whose_tokens_the_model_least_expected():
    """The model's surprise at a site is read on the operator's own tokens, and for `is` on the
    token after it (where a dropped `not` shows); sites the model expected are not checked."""
    from hintwise.lsp_server.review.verify import SUSPECT_GAP, suspects
    from hintwise.models.engine import TokenScore

    text = "def f(x, n):\n    if x is missing:\n        return n + 1\n"
    pieces = [(" is", -0.1), (" missing", -6.0), (" +", -0.2), (" ", -0.1), ("1", -0.3)]
    scores = []
    for piece, logprob in pieces:
        at = text.index(piece, scores[-1].offset + 1 if scores else 0)
        scores.append(TokenScore(at, piece, logprob, "?", 0.0))
    ranked = suspects(text, scores, swaps(text))
    assert [(s.written, s.fix) for s, _ in ranked] == [("is", "is not")]
    assert ranked[0][1] == 6.0 >= SUSPECT_GAP


class WordScorer:
    """A stand-in scorer for the verification logic: one token per word or symbol, each with the
    log-prob its table gives (0 for any other), NaN outside the spans asked for."""

    def __init__(self, logprobs: dict[str, float]):
        self.logprobs = logprobs

    def score(self, prefix, text, cancelled, spans=None):
        import math
        import re

        from hintwise.models.engine import TokenScore

        found = []
        for match in re.finditer(r"\s*(\w+|[^\w\s]+)|\s+", text):
            start, piece = match.start(), match.group()
            wanted = spans is None or any(a < match.end() and start < b for a, b in spans)
            logprob = self.logprobs.get(piece.strip(), 0.0) if wanted else math.nan
            found.append(TokenScore(start, piece, logprob, "?", 0.0 if wanted else math.nan))
        return found


def test_a_swap_is_shown_only_past_its_kinds_margin():
    """`1` → `0` gains 8.5 nats (past MARGIN); removing a `not` gains 7 (short of the margin a
    negation needs), so only the constant is reported, with the corrected line."""
    from hintwise.lsp_server.review.verify import MARGIN, MARGINS, verify

    text = "def f(n, ready):\n    if not ready:\n        return n % 4 == 1\n    return n\n"
    scorer = WordScorer({"1": -9.0, "0": -0.5, "2": -9.0, "not": -7.0})
    found = verify(scorer, "# python\n", text, "python", lambda: False)
    assert found is not None
    assert [(v.swap.written, v.swap.fix, v.replacement) for v in found] == [
        ("1", "0", "        return n % 4 == 0")
    ]
    assert found[0].gain == 8.5 >= MARGIN
    assert MARGINS["negation"] > 7.0 > MARGIN  # (never shown at all)
