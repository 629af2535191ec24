"""The completer's decisions, fast: the real Completer on a real ModelWorker (its queue,
supersession and cancellation), with a scripted engine instead of the model. The same pipeline
with the real model is in test_completion.py and, over LSP, in test_server.py.
"""

from __future__ import annotations

import asyncio
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from scripted_engine import ScriptedEngine, first_token, tokens_of

from hintwise.lsp_server.code.documents import Document
from hintwise.lsp_server.completion import context as cursor_context
from hintwise.lsp_server.completion.completer import Completer
from hintwise.lsp_server.config import CompletionSettings, GateSettings
from hintwise.lsp_server.gate.keeper import Gatekeeper
from hintwise.models.engine import (
    CompletionRequest,
    GenerationRequest,
    HealthReporter,
    SpeedMeter,
    TokenScorer,
)
from hintwise.models.worker import ModelWorker, Priority

URI = "file:///work/project/area.py"
OTHER_URI = "file:///work/project/other.py"
AREA = "def area(width, height):\n    return |\n"
TEXT = "width * height"
PRIME = """def is_prime(n):
    if n < 2:
        |
        return False
    return True
"""
SETTINGS = CompletionSettings()

# A broken supersession leaves a request waiting on a blocked call: fail, do not hang.
pytestmark = pytest.mark.timeout(20)


def document(source: str, uri: str = URI) -> tuple[Document, int]:
    """A document from `source` with `|` marking the cursor, and the cursor's offset."""
    return Document(uri, "python", 1, source.replace("|", "", 1)), source.index("|")


def type_into(doc: Document, offset: int, text: str) -> int:
    """Insert `text` at `offset` as typing would; returns the new cursor offset."""
    position = doc.position_at(offset)
    doc.apply_change(text, position, position)
    return offset + len(text)


class Started:
    """Completers on real workers with scripted engines, stopped after the test."""

    def __init__(self) -> None:
        self.workers: list[ModelWorker] = []

    def __call__(
        self, script=(TEXT,), gate: Gatekeeper | None = None
    ) -> tuple[Completer, ScriptedEngine]:
        engine = ScriptedEngine(script)
        worker = ModelWorker(lambda: engine).start()
        assert worker.wait_ready(5)
        self.workers.append(worker)
        return Completer(worker, "scripted", gate), engine

    def stop(self) -> None:
        for worker in self.workers:
            worker.stop()


@pytest.fixture
def start():
    started = Started()
    yield started
    started.stop()


def until(condition, timeout: float = 5.0) -> bool:
    """Poll `condition` (work on the worker thread) for up to `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.002)
    return False


async def blocked(engine: ScriptedEngine, call: int) -> None:
    assert await asyncio.to_thread(engine.wait_blocked, call), f"call {call} never started"


async def drained(completer: Completer) -> None:
    """Wait until the worker has run everything queued at WARM priority or above."""
    job = completer.worker.submit(lambda engine, cancelled: None, Priority.BACKGROUND)
    await asyncio.wrap_future(job.future)


def gatekeeper(tmp_path: Path, **settings) -> Gatekeeper:
    """The shipped default gate (no personal gate in `tmp_path`) with the given settings."""
    return Gatekeeper(GateSettings(**settings), tmp_path, now=lambda: 1000.0)


# -- the scripted engine keeps the promises the completer relies on ---------------------------


def _request(**values) -> CompletionRequest:
    return CompletionRequest(prefix="x = ", **values)


def test_the_scripted_engine_is_an_engine_and_nothing_more():
    engine = ScriptedEngine(generations=["It divides by zero."])
    assert not isinstance(engine, TokenScorer | HealthReporter | SpeedMeter)
    assert engine.info.name == "scripted" and engine.live_generated == 0
    assert not engine.prepared and engine.prepare() and engine.prepared
    generation = engine.generate(GenerationRequest(prompt="Explain."), lambda: False)
    assert generation.text == "It divides by zero." and generation.stop_reason == "eos"
    engine.close()
    assert engine.closed


def test_the_scripted_engine_applies_the_stop_rule_and_counts_tokens():
    engine = ScriptedEngine(["a + b\nprint(a)"])
    request = _request(stop=lambda text: i if (i := text.find("\n")) >= 0 else None)
    completion = engine.complete(request, lambda: False)
    assert completion.text == "a + b"
    assert completion.stop_reason == "stop"
    # "a", " +", " b", "\n" (generated, then cut)
    assert completion.generated_tokens == 4 == len(completion.token_logprobs)
    assert completion.first_content_token == first_token("a") and completion.prefix_cut == 0
    assert engine.complete(_request(), lambda: False).stop_reason == "eos"
    capped = engine.complete(_request(max_tokens=2), lambda: False)
    assert (capped.text, capped.stop_reason, capped.generated_tokens) == ("a +", "max_tokens", 2)
    exact = engine.complete(_request(max_tokens=len(tokens_of("a + b\nprint(a)"))), lambda: False)
    assert exact.stop_reason == "max_tokens"
    assert engine.requests[0] is request and len(engine.requests) == 4


def test_the_scripted_engine_gives_the_runner_up_when_the_first_token_is_banned():
    engine = ScriptedEngine(lambda request: ["return n", "return 0", "# note", "n + 1"])
    assert first_token("  return n") == first_token("return 0") != first_token("n + 1")
    banned = frozenset({first_token("return")})
    assert engine.complete(_request(), lambda: False).text == "return n"
    assert engine.complete(_request(banned_first=banned), lambda: False).text == "# note"
    both = _request(banned_first=banned, avoid_first=("#",))
    assert engine.complete(both, lambda: False).text == "n + 1"


def test_the_scripted_engine_warms_and_stops_when_cancelled():
    engine = ScriptedEngine([TEXT])
    warm = engine.complete(_request(warm_only=True), lambda: False)
    assert (warm.text, warm.stop_reason, warm.generated_tokens) == ("", "warm", 0)
    asked = iter([False, False, True])  # cancelled before the third token
    cut = engine.complete(_request(), lambda: next(asked))
    assert (cut.text, cut.stop_reason) == ("width *", "cancelled")
    assert engine.calls[1].saw_cancel and engine.live_generated == 2


def test_the_scripted_engine_blocks_a_call_until_released_or_cancelled():
    engine = ScriptedEngine([TEXT])
    engine.block(0)
    engine.block(1)
    stop = threading.Event()
    with ThreadPoolExecutor(2) as pool:
        released = pool.submit(engine.complete, _request(), lambda: False)
        assert engine.wait_blocked(0)
        cancelled = pool.submit(engine.complete, _request(), stop.is_set)
        assert engine.wait_blocked(1)
        assert not released.done() and not cancelled.done()
        engine.release(0)
        assert released.result(5).text == TEXT
        stop.set()
        assert cancelled.result(5).stop_reason == "cancelled"
    assert not engine.calls[0].saw_cancel and engine.calls[1].saw_cancel
    assert engine.calls[1].completion.text == ""


# -- a suggestion ----------------------------------------------------------------------------


async def test_a_suggestion_and_what_the_engine_was_asked(start):
    completer, engine = start(["width * height\n    print(width)"])
    doc, offset = document(AREA)
    result = await completer.complete(doc, offset, SETTINGS)
    assert result.text == TEXT and result.reason == "ok"
    assert result.id and result.uri == URI and result.offset == offset
    assert result.mode == "single" and result.model == "scripted"
    assert not result.from_cache
    assert result.engine.stop_reason == "stop"  # the single-line rule stopped it at the newline
    assert result.attempts == (len(tokens_of(TEXT + "\n")),)
    assert set(result.latency_ms) >= {"context", "queue", "postprocess", "total"}
    [request] = engine.requests
    assert request.prefix == doc.text[:offset] and request.suffix == doc.text[offset:]
    assert not request.warm_only and request.banned_first == frozenset()
    assert request.max_tokens == SETTINGS.max_tokens
    assert request.time_limit_s == SETTINGS.time_limit_ms / 1000
    assert completer.counters.last is result
    assert completer.anchors[URI] == 0


async def test_the_prompt_keeps_its_start_line_between_keystrokes(start):
    completer, engine = start(["total"])
    settings = CompletionSettings(prefix_tokens=8)  # a window of 64 characters
    window = settings.prefix_tokens * cursor_context.CHARS_PER_TOKEN
    body = "".join(f"    value_{index:02} = {index:03}\n" for index in range(12))  # 20 each
    doc, offset = document(f"def f():\n{body}    return width_and_height_sum|\n")
    await completer.complete(doc, offset, settings)
    anchor = offset - len(engine.requests[0].prefix)
    assert anchor > 0 and doc.text[anchor - 1] == "\n"
    # Backspaces: a window cut afresh would now start a line earlier than the anchor.
    deleted = anchor - (offset - window) + 1
    offset -= deleted
    doc.apply_change("", doc.position_at(offset), doc.position_at(offset + deleted))
    assert cursor_context.build(doc, offset, settings).prefix_start < anchor
    await completer.complete(doc, offset, settings)
    assert engine.requests[1].prefix == doc.text[anchor:offset]


# -- the typing-along cache ------------------------------------------------------------------


async def test_typing_along_is_answered_from_the_cache_without_the_model(start):
    completer, engine = start()
    doc, offset = document(AREA)
    first = await completer.complete(doc, offset, SETTINGS)
    for index, char in enumerate("widt", start=1):
        offset = type_into(doc, offset, char)
        again = await completer.complete(doc, offset, SETTINGS)
        assert again.text == TEXT[index:]
        assert again.from_cache and again.id == first.id
        assert again.reason == "typed along a shown suggestion"
        assert again.engine is first.engine and again.offset == offset
    assert len(engine.requests) == 1
    counters = completer.counters
    assert (counters.requests, counters.model_calls, counters.cache_hits) == (5, 1, 4)
    assert counters.last is again


async def test_asking_again_where_the_window_moved_is_answered_from_the_cache(start):
    """The engine's window cut moves the prompt's start after an answer; the same request
    again (a re-trigger, a focus change) is still the suggestion on screen."""
    completer, engine = start()
    body = "".join(f"    value_{index:02} = {index:03}\n" for index in range(12))
    doc, offset = document(f"def area(width, height):\n{body}    return |\n")
    first = await completer.complete(doc, offset, SETTINGS)
    completer.anchors[URI] = doc.text.index("    value_05")  # where the engine cut the window
    again = await completer.complete(doc, offset, SETTINGS)
    assert again.from_cache and again.id == first.id and again.text == first.text
    offset = type_into(doc, offset, "wid")
    along = await completer.complete(doc, offset, SETTINGS)
    assert along.from_cache and along.text == TEXT[3:]
    assert len(engine.requests) == 1


async def test_asking_again_after_an_answer_not_worth_showing_skips_the_model(start):
    completer, engine = start(["   ", "   ", "   "])
    doc, offset = document(AREA)
    first = await completer.complete(doc, offset, SETTINGS)
    assert first.text is None and first.reason == "empty suggestion"
    again = await completer.complete(doc, offset, SETTINGS)
    assert again.text is None and again.from_cache
    assert again.reason == "asked again, same answer: empty suggestion"
    assert len(engine.requests) == 1
    await completer.complete(doc, offset, SETTINGS, automatic=False)  # the user asks: afresh
    assert len(engine.requests) == 2
    type_into(doc, offset, " ")
    await completer.complete(doc, offset, SETTINGS)  # another text: afresh
    assert len(engine.requests) == 3


async def test_typing_all_of_it_or_something_else_asks_the_model(start):
    completer, engine = start()
    doc, offset = document(AREA)
    await completer.complete(doc, offset, SETTINGS)
    typed = type_into(doc, offset, "wx")
    assert not (await completer.complete(doc, typed, SETTINGS)).from_cache
    doc, offset = document(AREA, uri=OTHER_URI)
    await completer.complete(doc, offset, SETTINGS)
    offset = type_into(doc, offset, TEXT)
    assert not (await completer.complete(doc, offset, SETTINGS)).from_cache
    assert len(engine.requests) == 4 and completer.counters.cache_hits == 0


async def test_a_retired_suggestion_is_not_served_again(start):
    completer, engine = start()
    doc, offset = document(AREA)
    first = await completer.complete(doc, offset, SETTINGS)
    completer.cache.retire(first.id)  # the tracker's on_rejected
    offset = type_into(doc, offset, "wi")
    again = await completer.complete(doc, offset, SETTINGS)
    assert not again.from_cache and again.id != first.id
    assert len(engine.requests) == 2


async def test_a_different_line_suffix_is_not_served_from_the_cache(start):
    completer, engine = start()
    doc, offset = document(AREA)
    await completer.complete(doc, offset, SETTINGS)
    type_into(doc, offset, ")")  # an editor's auto-closed bracket, say
    offset = type_into(doc, offset, "wi")
    again = await completer.complete(doc, offset, SETTINGS)
    assert not again.from_cache
    assert len(engine.requests) == 2


async def test_a_forgotten_document_has_no_cache_and_no_anchor(start):
    completer, engine = start()
    doc, offset = document(AREA)
    await completer.complete(doc, offset, SETTINGS)
    completer.forget(URI)
    assert URI not in completer.anchors
    offset = type_into(doc, offset, "wi")
    assert not (await completer.complete(doc, offset, SETTINGS)).from_cache
    assert len(engine.requests) == 2


# -- no completion wanted here ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("source", "automatic", "reason"),
    [
        ("def area(width, height):\n    return wi|dth\n", True, "cursor inside a word"),
        ("def area(width, height):\n    |return width\n", True, "cursor before the code"),
        ("x = f(|a, b, c, d, e)\n", True, "more than 8 characters right of the cursor"),
        ("\x00\x01\x02 binary|", False, "binary content"),
    ],
)
async def test_mode_none_means_no_model_call_and_a_reason(start, source, automatic, reason):
    completer, engine = start()
    doc, offset = document(source)
    result = await completer.complete(doc, offset, SETTINGS, automatic=automatic)
    assert result.text is None and result.id is None
    assert result.mode == "none" and result.reason.startswith(reason)
    assert engine.requests == []
    counters = completer.counters
    assert (counters.requests, counters.skipped, counters.model_calls) == (1, 1, 0)
    assert counters.last is None


@pytest.mark.parametrize(
    ("source", "said", "shown", "indent"),
    [
        # Cursor after the indentation: the new line, then the indentation the code had.
        ("def area(w, h):\n    |return w * h\n", "total = w * h", "total = w * h\n    ", ""),
        # Cursor at column 0 of an indented line: the model's line must come indented.
        ("def area(w, h):\n|    return w * h\n", "    total = w * h", "    total = w * h\n", " "),
    ],
)
async def test_asked_for_at_the_start_of_a_line_with_code_a_line_above_it(
    start, source, said, shown, indent
):
    completer, engine = start([said])
    doc, offset = document(source)
    result = await completer.complete(doc, offset, SETTINGS, automatic=False)
    assert result.text == shown
    assert result.reason == "ok" and result.mode == "single"
    assert doc.text[:offset] + shown + doc.text[offset:] == source.replace("|", shown)
    request = engine.requests[0]
    assert request.indent_first == indent


@pytest.mark.parametrize("first", ["return w * h", "if w > h:", "result = (w"])
async def test_a_line_above_that_repeats_or_breaks_the_code_gives_way_to_the_runner_up(
    start, first
):
    """A copy of the line, a block opener the line would become the body of, a line that does
    not parse: none is shown; the runner-up is asked for once."""
    completer, _ = start([first, "total = w * h"])
    doc, offset = document("def area(w, h):\n    |return w * h\n")
    result = await completer.complete(doc, offset, SETTINGS, automatic=False)
    assert result.text == "total = w * h\n    " and len(result.attempts) == 2


async def test_completions_turned_off(start):
    completer, engine = start()
    doc, offset = document(AREA)
    off = CompletionSettings(enabled=False)
    result = await completer.complete(doc, offset, off)
    assert result.text is None
    assert result.reason == "completions are turned off (completion.enabled)"
    completer.prewarm(doc, offset, off)
    await drained(completer)
    assert engine.requests == []
    counters = completer.counters
    assert (counters.requests, counters.skipped, counters.model_calls) == (1, 0, 0)


# -- the acceptance gate ---------------------------------------------------------------------


async def test_the_gate_keeps_an_automatic_request_from_the_model(start, tmp_path):
    gate = gatekeeper(tmp_path, pre_threshold=1.0)
    completer, engine = start(gate=gate)
    doc, offset = document(AREA)
    result = await completer.complete(doc, offset, SETTINGS, automatic=True)
    assert result.text is None and engine.requests == []
    assert result.reason.startswith("acceptance gate: unlikely to be accepted here (")
    assert result.reason.endswith("< 1.00), model not called")
    pre = result.verdicts["pre"]
    assert not pre.passed and pre.threshold == 1.0 and 0.0 <= pre.score < 1.0
    assert pre.features and "post" not in result.verdicts
    assert result.decision == "skipped"
    assert (completer.counters.gated, completer.counters.model_calls) == (1, 0)
    assert gate.counters["pre_skipped"] == 1


async def test_the_gate_never_holds_back_an_invoked_request(start, tmp_path):
    gate = gatekeeper(tmp_path, pre_threshold=1.0, post_threshold=1.0)
    completer, engine = start(gate=gate)
    doc, offset = document(AREA)
    result = await completer.complete(doc, offset, SETTINGS, automatic=False)
    assert result.text == TEXT and len(engine.requests) == 1
    pre, post = result.verdicts["pre"], result.verdicts["post"]
    assert pre.passed and pre.score < 1.0 and pre.threshold == 1.0
    assert post.passed and post.score < 1.0 and post.threshold == 1.0
    # the engine's figures reach the gate: its log-probs and token count
    assert post.features["mean_logprob"] == pytest.approx(-0.25)
    assert post.features["suggestion_tokens"] == len(tokens_of(TEXT))
    assert result.decision == "generated"
    assert result.gate_scores() == {"pre": round(pre.score, 6), "post": round(post.score, 6)}
    counters = completer.counters
    assert (counters.gated, counters.hidden) == (0, 0)
    assert gate.counters == {"pre_skipped": 0, "post_hidden": 0, "scored": 2}


async def test_the_gate_hides_an_automatic_suggestion_after_generation(start, tmp_path):
    gate = gatekeeper(tmp_path, post_threshold=0.999)
    completer, engine = start(gate=gate)
    doc, offset = document(AREA)
    result = await completer.complete(doc, offset, SETTINGS, automatic=True)
    assert len(engine.requests) == 1
    assert result.text is None and result.id is None
    assert result.reason.startswith("acceptance gate: suggestion hidden (")
    assert result.reason.endswith("< 1.00)")
    assert result.verdicts["pre"].passed and not result.verdicts["post"].passed
    assert result.decision == "hidden" and result.engine is not None
    assert (completer.counters.hidden, completer.counters.gated) == (1, 0)
    assert gate.counters["post_hidden"] == 1
    # a hidden suggestion is not served to the typing that would follow it
    offset = type_into(doc, offset, "wi")
    await completer.complete(doc, offset, SETTINGS, automatic=True)
    assert len(engine.requests) == 2 and completer.counters.cache_hits == 0


async def test_a_gate_turned_off_scores_nothing_and_stops_nothing(start, tmp_path):
    gate = gatekeeper(tmp_path, enabled=False, pre_threshold=1.0, post_threshold=1.0)
    completer, _ = start(gate=gate)
    doc, offset = document(AREA)
    result = await completer.complete(doc, offset, SETTINGS, automatic=True)
    assert result.text == TEXT
    assert {stage: (v.score, v.passed) for stage, v in result.verdicts.items()} == {
        "pre": (None, True),
        "post": (None, True),
    }
    assert gate.counters["scored"] == 0


# -- the runner-up when the best answer only copies the code below ----------------------------


async def test_a_copy_of_the_next_line_is_retried_once_without_its_first_token(start):
    completer, engine = start(["return False", "print(n)"])
    doc, offset = document(PRIME)
    result = await completer.complete(doc, offset, SETTINGS, automatic=False)
    assert result.text == "print(n)"
    assert result.reason == "ok (second choice)"
    first, second = engine.requests
    assert first.banned_first == frozenset()
    assert second.banned_first == frozenset({first_token("return False")})
    assert first.avoid_first == ("#",) and second.prefix == first.prefix
    assert result.attempts == (2, 4)  # "return", " False" | "print", "(", "n", ")"
    assert completer.counters.model_calls == 2


async def test_a_usable_first_answer_is_not_retried(start):
    completer, engine = start(["print(n)", "return False"])
    doc, offset = document(PRIME)
    result = await completer.complete(doc, offset, SETTINGS, automatic=False)
    assert result.text == "print(n)" and result.reason == "ok"
    assert len(engine.requests) == 1 and result.attempts == (4,)


async def test_a_short_first_answer_is_not_retried(start):
    completer, engine = start(["n", "print(n)"])
    doc, offset = document(PRIME)
    result = await completer.complete(doc, offset, SETTINGS, automatic=False)
    assert result.text is None and result.reason == "fewer than 3 characters"
    assert len(engine.requests) == 1


async def test_the_runner_up_is_asked_for_only_once(start):
    completer, engine = start(["return False", "if n < 2:", "print(n)"])
    doc, offset = document(PRIME)
    result = await completer.complete(doc, offset, SETTINGS, automatic=False)
    assert result.text is None and result.id is None
    assert result.reason == "repeats the previous line (second choice)"
    assert len(engine.requests) == 2 and len(result.attempts) == 2


# -- the statement being typed: never broken, shown when finished (issue 12, defects 4 and 7) --

MEAN = """def mean(values):
    total = sum(values)
    return t|
"""


async def test_a_suggestion_that_breaks_the_line_is_replaced_by_the_runner_up(start):
    # Neovim: `return t` + ` = total / len(values)` would be `return t = total / len(values)`.
    completer, engine = start([" = total / len(values)", "otal / len(values)"])
    doc, offset = document(MEAN)
    result = await completer.complete(doc, offset, SETTINGS, automatic=True)
    assert result.text == "otal / len(values)"
    assert result.reason == "ok (second choice)"
    assert engine.requests[1].banned_first == frozenset({first_token(" = total")})
    assert completer.counters.model_calls == 2


async def test_a_broken_runner_up_is_not_shown_either(start):
    completer, engine = start([" = total / len(values)", ".count = 0", "otal"])
    doc, offset = document(MEAN)
    result = await completer.complete(doc, offset, SETTINGS, automatic=False)
    assert result.text is None and result.id is None
    assert result.reason == "would make the line a syntax error (second choice)"
    assert len(engine.requests) == 2


@pytest.mark.parametrize("automatic", [True, False])
@pytest.mark.parametrize(
    ("source", "answer"),
    [
        ("if n < 2:\n    n = 2\nelse|\n    n += 1\n", ":"),
        ("try:\n    n = int(s)\nexcept ValueError as |\n    n = 0\n", "e:"),
        ("total = sum(values|\n", ")"),
    ],
)
async def test_a_short_answer_that_finishes_the_statement_is_shown(
    start, source, answer, automatic
):
    completer, engine = start([answer + "\n"])
    doc, offset = document(source)
    result = await completer.complete(doc, offset, SETTINGS, automatic=automatic)
    assert result.text == answer and result.reason == "ok"
    assert len(engine.requests) == 1


async def test_a_multi_line_answer_that_repeats_itself_is_cut(start):
    completer, _ = start(["print(x, y, z)\n    print(x, y, z)\n    print(x, y, z)\n"])
    doc, offset = document("def show(x, y, z):\n    |\n")
    result = await completer.complete(doc, offset, SETTINGS, automatic=False)
    assert result.mode == "multi"
    assert result.text == "print(x, y, z)"


# -- supersession and cancellation -----------------------------------------------------------


async def test_a_newer_request_cancels_the_running_generation(start):
    completer, engine = start()
    engine.block(0)
    doc, offset = document(AREA)
    older = asyncio.create_task(completer.complete(doc, offset, SETTINGS))
    await blocked(engine, 0)
    offset = type_into(doc, offset, "w")
    newer = await completer.complete(doc, offset, SETTINGS)
    superseded = await older
    assert superseded.text is None and superseded.reason == "cancelled"
    assert superseded.engine.stop_reason == "cancelled"
    assert engine.calls[0].saw_cancel
    assert newer.text == TEXT and not engine.calls[1].saw_cancel
    counters = completer.counters
    assert (counters.model_calls, counters.cancelled) == (2, 1)
    [stopped] = counters.cancellations
    assert stopped["stop_reason"] == "cancelled" and stopped["tokens_after_cancel"] == 0
    assert counters.last is newer


async def test_a_newer_request_drops_a_queued_one_before_the_model_sees_it(start):
    completer, engine = start()
    engine.block(0)
    other, other_offset = document(AREA, uri=OTHER_URI)
    busy = asyncio.create_task(completer.complete(other, other_offset, SETTINGS))
    await blocked(engine, 0)
    doc, offset = document(AREA)
    older = asyncio.create_task(completer.complete(doc, offset, SETTINGS))
    await asyncio.sleep(0)  # submitted: queued behind the other document
    newer = asyncio.create_task(completer.complete(doc, offset, SETTINGS))
    superseded = await older
    assert superseded.text is None
    assert superseded.reason == "superseded by a newer request"
    engine.release(0)
    assert (await busy).text == TEXT and (await newer).text == TEXT
    assert [call.request.prefix for call in engine.calls] == [
        other.text[:other_offset],
        doc.text[:offset],
    ]
    assert completer.counters.cancelled == 0  # nothing was stopped mid-generation


async def test_requests_for_another_document_do_not_cancel(start):
    completer, engine = start()
    engine.block(0)
    doc, offset = document(AREA)
    first = asyncio.create_task(completer.complete(doc, offset, SETTINGS))
    await blocked(engine, 0)
    other, other_offset = document(AREA, uri=OTHER_URI)
    second = asyncio.create_task(completer.complete(other, other_offset, SETTINGS))
    await asyncio.sleep(0.02)
    engine.release(0)
    assert (await first).text == TEXT and (await second).text == TEXT
    assert not engine.calls[0].saw_cancel


async def test_a_request_the_client_cancels_stops_the_generation(start):
    completer, engine = start()
    engine.block(0)
    doc, offset = document(AREA)
    task = asyncio.create_task(completer.complete(doc, offset, SETTINGS))
    await blocked(engine, 0)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    # the worker is free again once the engine has stopped
    other, other_offset = document(AREA, uri=OTHER_URI)
    assert (await completer.complete(other, other_offset, SETTINGS)).text == TEXT
    assert engine.calls[0].saw_cancel
    assert engine.calls[0].completion.stop_reason == "cancelled"
    assert until(lambda: completer.counters.cancelled == 1)


# -- no model --------------------------------------------------------------------------------


async def test_no_model_gives_the_loaders_message(tmp_path):
    def broken():
        raise FileNotFoundError(f"no model at {tmp_path / 'nowhere.gguf'}")

    worker = ModelWorker(broken).start()
    try:
        assert not worker.wait_ready(5)
        completer = Completer(worker, "missing")
        doc, offset = document(AREA)
        result = await completer.complete(doc, offset, SETTINGS)
        assert result.text is None
        assert result.reason == f"no model: no model at {tmp_path / 'nowhere.gguf'}"
        completer.prewarm(doc, offset, SETTINGS)  # nothing to warm: no error either
        counters = completer.counters
        # today's count: the call was submitted, so it counts as a model call
        assert (counters.requests, counters.model_calls, counters.cancelled) == (1, 1, 0)
    finally:
        worker.stop()


# -- pre-warm --------------------------------------------------------------------------------


async def test_prewarm_sends_a_warm_only_request(start):
    completer, engine = start()
    doc, offset = document(AREA)
    completer.prewarm(doc, offset, SETTINGS)
    assert await asyncio.to_thread(until, lambda: completer.counters.prewarmed == 1)
    [request] = engine.requests
    assert request.warm_only and request.prefix == doc.text[:offset]
    assert engine.calls[0].completion.stop_reason == "warm"
    assert engine.calls[0].completion.generated_tokens == 0
    assert completer.anchors[URI] == 0
    counters = completer.counters
    assert (counters.requests, counters.model_calls) == (0, 0)


@pytest.mark.parametrize(
    ("settings", "source"),
    [
        (CompletionSettings(prewarm=False), AREA),
        (CompletionSettings(enabled=False), AREA),
        (SETTINGS, "\x00\x01\x02 binary|"),
    ],
)
async def test_no_prewarm_when_turned_off_or_binary(start, settings, source):
    completer, engine = start()
    doc, offset = document(source)
    completer.prewarm(doc, offset, settings)
    await drained(completer)
    assert engine.requests == []


async def test_a_completion_cancels_the_prewarm_of_its_document(start):
    completer, engine = start()
    engine.block(0)
    doc, offset = document(AREA)
    completer.prewarm(doc, offset, SETTINGS)
    await blocked(engine, 0)
    result = await completer.complete(doc, offset, SETTINGS)
    assert result.text == TEXT
    warm, asked = engine.calls
    assert warm.request.warm_only and warm.saw_cancel
    assert warm.completion.stop_reason == "cancelled"
    assert not asked.request.warm_only
    assert completer.counters.prewarmed == 0


async def test_a_completion_drops_a_queued_prewarm_of_its_document(start):
    completer, engine = start()
    engine.block(0)
    other, other_offset = document(AREA, uri=OTHER_URI)
    busy = asyncio.create_task(completer.complete(other, other_offset, SETTINGS))
    await blocked(engine, 0)
    doc, offset = document(AREA)
    completer.prewarm(doc, offset, SETTINGS)
    asked = asyncio.create_task(completer.complete(doc, offset, SETTINGS))
    await asyncio.sleep(0)  # submitted
    engine.release(0)
    assert (await busy).text == TEXT and (await asked).text == TEXT
    await drained(completer)
    assert [call.request.warm_only for call in engine.calls] == [False, False]


async def test_a_newer_prewarm_replaces_a_queued_one(start):
    completer, engine = start()
    engine.block(0)
    other, other_offset = document(AREA, uri=OTHER_URI)
    busy = asyncio.create_task(completer.complete(other, other_offset, SETTINGS))
    await blocked(engine, 0)
    doc, offset = document(AREA)
    completer.prewarm(doc, offset, SETTINGS)
    offset = type_into(doc, offset, "w")
    completer.prewarm(doc, offset, SETTINGS)
    engine.release(0)
    await busy
    assert await asyncio.to_thread(until, lambda: completer.counters.prewarmed == 1)
    assert [call.request.prefix for call in engine.calls[1:]] == [doc.text[:offset]]


# -- the counters ----------------------------------------------------------------------------


async def test_the_counters_as_status_reports_them(start):
    completer, engine = start()
    doc, offset = document(AREA)
    await completer.complete(doc, offset, SETTINGS)  # a model call
    offset = type_into(doc, offset, "w")
    await completer.complete(doc, offset, SETTINGS)  # from the cache
    await completer.complete(*document("x = f(|abcdefghij)\n"), SETTINGS)  # skipped
    described = completer.counters.describe(with_prompt=True)
    assert {key: described[key] for key in described if key != "last"} == {
        "requests": 3,
        "model_calls": 1,
        "cache_hits": 1,
        "skipped": 1,
        "cancelled": 0,
        "gated": 0,
        "hidden": 0,
        "prewarmed": 0,
        "cancellations": [],
    }
    last = described["last"]
    assert last["from_cache"] and last["text"] == TEXT[1:]
    assert last["reason"] == "typed along a shown suggestion"
    assert last["prompt_text"] == AREA[: AREA.index("|")]
    assert last["tokens"]["generated"] == len(tokens_of(TEXT))
    assert len(engine.requests) == 1
