"""The candidate search on the real bundled model (Gemma 3 270M, no FIM tokens): the code after
the cursor changes the suggestion, the search stops when cancelled, and the prompt stays cached.

Assertions hold with a wide margin: on the hole below the chosen candidate's score is several
nats ahead of the runner-up here, and the greedy answer without a suffix is another line.
"""

from __future__ import annotations

import pytest

from hintwise.models.engine import CompletionRequest

pytestmark = pytest.mark.model

PREFIX = "def mean(values):\n    "
SUFFIX = "\n    return total / len(values)\n"


def one_line(text: str) -> int | None:
    """Stop at the first line break after some content (single-line mode)."""
    at = text.find("\n", len(text) - len(text.lstrip()))
    return at if at > 0 and text[:at].strip() else None


def request(suffix: str, **values) -> CompletionRequest:
    return CompletionRequest(
        prefix=PREFIX, suffix=suffix, stop=one_line, time_limit_s=60, **{"candidates": 4, **values}
    )


def test_the_code_below_decides_between_candidates(gemma_engine):
    without = gemma_engine.complete(request(""), lambda: False)
    # Without a line below to score, the greedy answer stands (it does not define `total`).
    assert not without.text.strip().startswith("total")
    assert without.alternatives == [] or without.score is None
    ranked = gemma_engine.complete(request(SUFFIX), lambda: False)
    # `return total / len(values)` below: the suggestion defines `total`.
    assert ranked.text.strip().startswith("total"), ranked
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
        return calls > 12  # a few tokens into the search

    stopped = gemma_engine.complete(request(SUFFIX, alternatives=True), cancelled)
    assert stopped.stop_reason == "cancelled"
    assert stopped.generated_tokens <= 12
    again = gemma_engine.complete(request(SUFFIX), lambda: False)
    # The search rewound the context to the prompt, never past it: only the last prompt
    # token is evaluated again.
    assert again.evaluated_tokens <= 2 and again.reused_tokens >= again.prompt_tokens - 2
