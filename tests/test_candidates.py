"""The candidate search's ranking logic (models.llama.candidates) and how the completer uses its
candidates: the suffix text that is scored, the ranking, alternatives for invoked requests.

Pipeline logic on the scripted engine (its script is the ranking); the real model's ranking is
in test_candidates_model.py.
"""

from __future__ import annotations

import pytest
from scripted_engine import ScriptedEngine

from hintwise.lsp_server.code.documents import Document
from hintwise.lsp_server.completion.completer import Completer
from hintwise.lsp_server.config import CompletionSettings
from hintwise.models.llama.candidates import rank, suffix_tail
from hintwise.models.worker import ModelWorker

URI = "file:///t.py"
BODY = "def area(width, height):\n    |\n    return result\n"
SETTINGS = CompletionSettings(prewarm=False, time_limit_ms=30000)


# -- the suffix that is scored after each candidate ----------------------------------------


def test_the_tail_is_the_next_non_blank_line_after_the_cursors_line():
    assert suffix_tail("\n    return result\n    pass\n") == "\n    return result"
    # The rest of the cursor's own line is left out (the candidate usually re-writes it).
    assert suffix_tail(")\n\n\n    return x\n") == "\n\n\n    return x"
    assert suffix_tail("\r\n    return x\r\n") == "\n    return x"


def test_no_tail_without_a_non_blank_line_below():
    assert suffix_tail("") == ""
    assert suffix_tail("x)") == ""
    assert suffix_tail("\n\n   \n") == ""


def test_more_lines_and_a_long_line_is_cut():
    assert suffix_tail("\na\n\nb\nc", lines=2) == "\na\n\nb"
    assert suffix_tail("\n" + "x" * 1000) == "\n" + "x" * 240


# -- the ranking ---------------------------------------------------------------------------


def test_candidates_are_ranked_by_score_best_first():
    assert rank([("a", -9.0), ("b", -3.5), ("c", -4.0)]) == [1, 2, 0]  # type: ignore[list-item]


def test_an_unscored_candidate_keeps_the_greedy_order():
    # A search cut short (time, no suffix) must not reorder: the greedy one stays first.
    assert rank([("a", -9.0), ("b", None), ("c", -1.0)]) == [0, 1, 2]  # type: ignore[list-item]


# -- the completer with a searching engine -------------------------------------------------


@pytest.fixture
def start():
    workers: list[ModelWorker] = []

    def make(script, **settings) -> tuple[Completer, ScriptedEngine]:
        engine = ScriptedEngine(script, search=True)
        worker = ModelWorker(lambda: engine).start()
        assert worker.wait_ready(5)
        workers.append(worker)
        return Completer(worker, "scripted"), engine

    yield make
    for worker in workers:
        worker.stop()


async def ask(completer: Completer, source: str, automatic: bool, **settings):
    document = Document(URI, "python", 1, source.replace("|", "", 1))
    offset = source.index("|")
    return await completer.complete(
        document, offset, CompletionSettings(**{**SETTINGS.__dict__, **settings}), automatic
    )


async def test_an_invoked_request_gets_up_to_two_distinct_alternatives(start):
    script = [
        "result = width * height",
        "result = width * height  ",  # the same after post-processing
        "return width * height",
        "area = width * height",
        "print(width)",
    ]
    completer, engine = start(script)
    result = await ask(completer, BODY, automatic=False)
    assert result.text == "result = width * height"
    assert [other.text for other in result.alternatives] == [
        "return width * height",
        "area = width * height",
    ]
    ids = {result.id, *(other.id for other in result.alternatives)}
    assert len(ids) == 3 and None not in ids
    request = engine.completion_requests[-1]
    assert request.candidates >= 3 and request.candidate_min_p == 0.0


async def test_automatic_requests_search_in_single_line_mode_only(start):
    completer, engine = start(["width * height", "1", "width"])
    inside = "def area(width, height):\n    result = |\n    return result\n"  # one line
    await ask(completer, inside, automatic=True, candidate_min_p=0.05)
    single = engine.completion_requests[-1]
    assert single.candidates == SETTINGS.candidates and single.candidate_min_p == 0.05
    completer.forget(URI)
    block = "def area(width, height):\n    |"  # an empty body: a block is wanted
    await ask(completer, block, automatic=True)
    assert engine.completion_requests[-1].candidates == 1
    completer.forget(URI)
    await ask(completer, BODY, automatic=True)  # a gap in a body: ranked by the code below too
    assert engine.completion_requests[-1].candidates == SETTINGS.candidates
    completer.forget(URI)
    await ask(completer, inside, automatic=True, candidates=1)
    assert engine.completion_requests[-1].candidates == 1


async def test_alternatives_follow_typing_along_and_are_not_asked_again(start):
    completer, engine = start(["result = width * height", "return width", "ratio = 2"])
    first = await ask(completer, BODY, automatic=False)
    assert len(first.alternatives) == 2
    calls = len(engine.completion_requests)
    typed = await ask(completer, BODY.replace("|", "re|"), automatic=False)
    assert typed.from_cache and len(engine.completion_requests) == calls
    assert typed.text == "sult = width * height"
    assert [other.text for other in typed.alternatives] == ["turn width"]
    assert typed.alternatives[0].id == first.alternatives[0].id


async def test_an_invoked_request_computes_alternatives_an_automatic_one_did_not(start):
    completer, engine = start(["result = width * height", "return width"])
    shown = await ask(completer, BODY, automatic=True, candidates=1)
    assert shown.alternatives == [] and len(engine.completion_requests) == 1
    again = await ask(completer, BODY, automatic=False, candidates=1)
    assert len(engine.completion_requests) == 2
    assert [other.text for other in again.alternatives] == ["return width"]


async def test_a_copy_of_the_next_line_gives_way_to_the_runner_up_without_a_new_call(start):
    completer, engine = start(["return result", "result = width * height"])
    result = await ask(completer, BODY, automatic=False)
    assert result.text == "result = width * height"
    assert "second choice" in result.reason
    assert len(engine.completion_requests) == 1


async def test_the_gate_sees_the_chosen_candidates_own_token_count(start):
    completer, _ = start(["result = width * height", "area = width * height * 1"])
    result = await ask(completer, BODY, automatic=False)
    answer = result.engine
    assert answer is not None
    # Every candidate's tokens are counted as work; the suggestion's own are its log-probs.
    assert answer.generated_tokens > len(answer.token_logprobs) > 0


async def test_an_engine_that_does_not_search_is_not_asked_again(start):
    completer, engine = start(["result = width * height", "return width"])
    engine.search = False  # FIM tokens or a remote server: one candidate whatever is asked
    first = await ask(completer, BODY, automatic=False)
    assert first.alternatives == []
    again = await ask(completer, BODY, automatic=False)
    assert again.from_cache and len(engine.completion_requests) == 1


def test_undefined_names_are_those_the_code_below_needs_and_the_code_above_lacks():
    from hintwise.models.llama.candidates import undefined_names

    assert undefined_names("def mean(values):\n    ", "\n    return total / len(values)\n") == [
        "total"
    ]
    above = "import json\ndef f(path):\n    with open(path) as handle:\n        "
    assert undefined_names(above, "\n    return json.loads(text)\n") == ["text"]
    # A loop variable the suffix binds itself is not wanted from the hole.
    below = "\n    for n in numbers:\n        if n > best:\n"
    assert undefined_names("def f(numbers):\n    ", below) == ["best"]
