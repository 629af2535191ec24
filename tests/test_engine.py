"""The llama.cpp engine with the real bundled Gemma 3 270M: cache reuse, cancellation, log-probs,
token healing. These call the model directly (no LSP) so the counts are exact."""

from __future__ import annotations

import dataclasses
import threading
import time

import pytest

from hintwise.models.engine import CompletionRequest

BODY = '''import math


def is_prime(n: int) -> bool:
    """Return True when n is a prime number."""
    if n < 2:
        return False
    for divisor in range(2, int(math.sqrt(n)) + 1):
        if n % divisor == 0:
            '''

pytestmark = pytest.mark.model


def first_line(text: str) -> int | None:
    index = text.find("\n")
    return index if index >= 0 else None


def never() -> bool:
    return False


def test_completes_a_function_body_with_logprobs(gemma_engine):
    result = gemma_engine.complete(CompletionRequest(prefix=BODY, stop=first_line), never)
    assert result.text.strip() == "return False"
    assert result.fim is False
    assert len(result.token_logprobs) == result.generated_tokens > 0
    assert all(lp <= 0 for lp in result.token_logprobs)
    assert sum(result.token_logprobs) / len(result.token_logprobs) > -1.0


def test_one_typed_character_evaluates_only_the_new_tokens(gemma_engine):
    gemma_engine.complete(CompletionRequest(prefix=BODY + "re", stop=first_line), never)
    prompt = len(gemma_engine.tokenize(BODY + "ret")) + 1  # + BOS
    result = gemma_engine.complete(CompletionRequest(prefix=BODY + "ret", stop=first_line), never)
    assert result.prompt_tokens == prompt - 1  # healing backed off the last token
    # Everything up to the typed character came from the KV cache.
    assert result.reused_tokens >= result.prompt_tokens - 2
    assert result.evaluated_tokens <= 2


def test_an_unchanged_prompt_reuses_everything_but_one_token(gemma_engine):
    request = CompletionRequest(prefix=BODY, stop=first_line)
    gemma_engine.complete(request, never)
    again = gemma_engine.complete(request, never)
    assert again.evaluated_tokens == 1
    assert again.reused_tokens == again.prompt_tokens - 1


def test_token_healing_mid_identifier(gemma_engine):
    healed = gemma_engine.complete(CompletionRequest(prefix=BODY + "ret", stop=first_line), never)
    assert healed.healed == "ret"
    assert healed.text.startswith("urn")
    raw = gemma_engine.complete(
        CompletionRequest(prefix=BODY + "ret", stop=first_line, token_healing=False), never
    )
    assert raw.healed == ""
    # Without healing the model continues "ret" as if it were a finished word.
    assert not raw.text.startswith("urn")


def test_cancellation_stops_generation_within_a_token(gemma_engine):
    cancel = threading.Event()
    generated_at_cancel: list[int] = []

    def cancelled() -> bool:
        if not cancel.is_set() and gemma_engine.live_generated >= 5:
            generated_at_cancel.append(gemma_engine.live_generated)
            cancel.set()
        return cancel.is_set()

    request = CompletionRequest(
        prefix="# A long list of numbers\nnumbers = [", max_tokens=200, time_limit_s=120
    )
    started = time.perf_counter()
    result = gemma_engine.complete(request, cancelled)
    assert result.stop_reason == "cancelled"
    assert result.generated_tokens - generated_at_cancel[0] <= 1
    assert time.perf_counter() - started < 60


def test_cancellation_during_a_cold_prompt_stops_between_chunks(gemma_engine):
    prefix = "".join(f"value_{i} = {i} * {i}\n" for i in range(300))
    calls = {"n": 0}

    def cancelled() -> bool:
        calls["n"] += 1
        return calls["n"] > 2

    result = gemma_engine.complete(CompletionRequest(prefix=prefix, prefix_budget=2000), cancelled)
    assert result.stop_reason == "cancelled"
    assert 0 < result.evaluated_tokens < result.prompt_tokens
    # What was evaluated stays in the cache for the next request.
    resumed = gemma_engine.complete(
        CompletionRequest(prefix=prefix, prefix_budget=2000, max_tokens=1), never
    )
    assert resumed.reused_tokens >= result.reused_tokens + result.evaluated_tokens - 1


def test_time_and_token_caps(gemma_engine):
    capped = gemma_engine.complete(CompletionRequest(prefix="numbers = [", max_tokens=3), never)
    assert capped.generated_tokens == 3
    assert capped.stop_reason == "max_tokens"
    timed = gemma_engine.complete(
        CompletionRequest(prefix="numbers = [", max_tokens=500, time_limit_s=0.2), never
    )
    assert timed.stop_reason == "time"
    # 500 tokens would take ~8 s; stopping means the limit plus the token in flight.
    assert timed.generate_ms < 3000


def test_prompt_window_reanchors_at_a_line_when_over_budget(gemma_engine):
    prefix = "".join(f"item_{i} = {i}\n" for i in range(400)) + "total = "
    result = gemma_engine.complete(
        CompletionRequest(prefix=prefix, prefix_budget=256, max_tokens=1), never
    )
    assert result.prefix_cut > 0
    assert prefix[result.prefix_cut - 1] == "\n"
    assert result.prompt_tokens <= 256


def test_a_banned_first_token_gives_the_runner_up(gemma_engine):
    best = gemma_engine.complete(CompletionRequest(prefix=BODY, stop=first_line), never)
    assert best.first_content_token is not None
    runner_up = gemma_engine.complete(
        CompletionRequest(
            prefix=BODY, stop=first_line, banned_first=frozenset({best.first_content_token})
        ),
        never,
    )
    assert runner_up.first_content_token != best.first_content_token
    assert runner_up.text.strip() and runner_up.text != best.text


@pytest.fixture(scope="module")
def smollm2_engine():
    from hintwise.lsp_server.config import Settings
    from hintwise.lsp_server.engines.choice import load_engine

    engine = load_engine(Settings(model=type(Settings().model)(name="smollm2-135m")))
    yield engine
    engine.close()


def test_the_smaller_bundled_model_runs_too(smollm2_engine):
    assert smollm2_engine.info.architecture == "llama"
    assert smollm2_engine.add_bos is False
    # An empty document: no BOS and no text, so no prompt at all; an empty answer, no crash.
    empty = smollm2_engine.complete(CompletionRequest(prefix=""), never)
    assert empty.text == "" and empty.prompt_tokens == 0
    result = smollm2_engine.complete(CompletionRequest(prefix=BODY, stop=first_line), never)
    assert result.generated_tokens > 0 and len(result.token_logprobs) == result.generated_tokens


@pytest.mark.parametrize("engine_name", ["gemma_engine", "smollm2_engine"])
def test_at_column_zero_inside_a_block_the_suggestion_starts_with_real_indentation(
    engine_name, request
):
    """BPE vocabularies have " return"-style tokens: one space, then a word. Asked to start
    indented, the model must begin with a run of whitespace, not indent by a single space."""
    engine = request.getfixturevalue(engine_name)
    prefix = BODY.rstrip(" ") + "                return False\n    return True\n\n\n"
    prefix += 'def is_even(n: int) -> bool:\n    """Return True when n is even."""\n'
    result = engine.complete(
        CompletionRequest(prefix=prefix, stop=first_line, indent_first=" "), never
    )
    indent = len(result.text) - len(result.text.lstrip(" \t"))
    assert result.text.strip(), result
    assert indent >= 4 and indent % 4 == 0, repr(result.text)


PREAMBLE = '''# path: pkg/widgets.py
def frobnicate_widgets(count: int, *, colour: str) -> list:
    """Make `count` widgets of one colour."""
    ...

'''


def test_the_preamble_comes_first_and_survives_typing(gemma_engine):
    """Other files' text goes before the prefix; typing after it reuses it from the cache."""
    prefix = "def build():\n    result = frob"
    request = CompletionRequest(prefix=prefix, preamble=PREAMBLE, stop=first_line, time_limit_s=30)
    result = gemma_engine.complete(request, never)
    assert result.preamble_tokens == len(gemma_engine.tokenize(PREAMBLE))
    assert result.prompt_text.index("# path: pkg/widgets.py") < result.prompt_text.index("build")
    assert result.text.startswith("nicate_widgets(")  # the name exists only in the preamble
    typed = gemma_engine.complete(
        CompletionRequest(prefix=prefix + "n", preamble=PREAMBLE, stop=first_line, max_tokens=1),
        never,
    )
    assert typed.reused_tokens >= typed.preamble_tokens
    assert typed.evaluated_tokens <= 3


def test_a_preamble_over_its_budget_keeps_its_end_from_a_line_start(gemma_engine):
    preamble = "".join(f"value_{n} = {n}\n" for n in range(200))
    request = CompletionRequest(prefix="x = ", preamble=preamble, preamble_budget=100, max_tokens=1)
    result = gemma_engine.complete(request, never)
    assert 0 < result.preamble_tokens <= 100
    kept = result.prompt_text[: result.prompt_text.rindex("x =")].removeprefix("<bos>")
    assert kept.endswith("value_199 = 199\n") and kept.startswith("value_")
    assert preamble.endswith(kept) and len(kept) < len(preamble)
    off = gemma_engine.complete(dataclasses.replace(request, preamble_budget=0), never)
    assert off.preamble_tokens == 0 and "value_" not in off.prompt_text
