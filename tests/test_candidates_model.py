"""The candidate search on the real bundled model (Gemma 3 270M, no FIM tokens): the code after
the cursor changes the suggestion, the search stops when cancelled, and the prompt stays cached.

Assertions hold with a wide margin: on the hole below the chosen candidate's score is several
nats ahead of the runner-up here, and the greedy answer without a suffix is another line.
"""

from __future__ import annotations

import pytest

from hintwise.models.engine import CompletionRequest

pytestmark = pytest.mark.model

# HumanEval/8's single-line hole (MIT, (c) OpenAI): the loop body's first line is missing.
PREFIX = (
    "from typing import List, Tuple\n\n\n"
    "def sum_product(numbers: List[int]) -> Tuple[int, int]:\n"
    '    """ For a given list of integers, return a tuple consisting of a sum and a product of '
    "all the integers in a list.\n"
    "    Empty sum should be equal to 0 and empty product should be equal to 1.\n"
    "    >>> sum_product([])\n    (0, 1)\n    >>> sum_product([1, 2, 3, 4])\n    (10, 24)\n"
    '    """\n    sum_value = 0\n    prod_value = 1\n\n    for n in numbers:\n'
)
SUFFIX = "\n        prod_value *= n\n    return sum_value, prod_value\n"


def one_line(text: str) -> int | None:
    """Stop at the first line break after some content (single-line mode)."""
    at = text.find("\n", len(text) - len(text.lstrip()))
    return at if at > 0 and text[:at].strip() else None


def request(suffix: str, **values) -> CompletionRequest:
    return CompletionRequest(
        prefix=PREFIX,
        suffix=suffix,
        stop=one_line,
        time_limit_s=60,
        indent_first=" ",  # at column 0 of the empty line, as the pipeline asks there
        **{"candidates": 4, **values},
    )


def test_the_code_below_decides_between_candidates(gemma_engine):
    without = gemma_engine.complete(request(""), lambda: False)
    # Without a line below to score, the greedy answer stands (here `if n == 0:`).
    assert "sum_value" not in without.text
    assert without.score is None
    ranked = gemma_engine.complete(request(SUFFIX), lambda: False)
    # `prod_value *= n` below: the line that updates the other accumulator is chosen (its
    # score leads the runner-up by about 9 nats here).
    assert ranked.text.strip() == "sum_value += n", ranked
    assert ranked.score is not None and ranked.searched >= 2
    # The gate keeps getting the chosen candidate's own log-probs.
    assert len(ranked.token_logprobs) >= 2
    assert ranked.generated_tokens > len(ranked.token_logprobs)


def test_alternatives_are_whole_and_ranked_when_asked_for(gemma_engine):
    ranked = gemma_engine.complete(request(SUFFIX, alternatives=True), lambda: False)
    assert len(ranked.alternatives) >= 2
    scores = [ranked.score, *(other.score for other in ranked.alternatives)]
    assert all(score is not None for score in scores)
    assert scores == sorted(scores, reverse=True)  # type: ignore[type-var]
    assert all(other.text.strip() for other in ranked.alternatives)


def test_a_cancel_stops_the_whole_search_and_the_prompt_stays_cached(gemma_engine):
    calls = 0

    def cancelled() -> bool:
        nonlocal calls
        calls += 1
        return calls > 5  # a few tokens into the search

    stopped = gemma_engine.complete(request(SUFFIX, alternatives=True), cancelled)
    assert stopped.stop_reason == "cancelled"
    assert stopped.generated_tokens <= 5
    again = gemma_engine.complete(request(SUFFIX), lambda: False)
    # The search rewound the context to the prompt, never past it: only the last prompt
    # token is evaluated again.
    assert again.evaluated_tokens <= 2 and again.reused_tokens >= again.prompt_tokens - 2
