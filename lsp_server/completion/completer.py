"""The completion pipeline, shared by the language server and `hintwise complete`.

context (tree-sitter, windows, mode) → typing-along cache → the gate's first verdict → model
worker → post-processing → the gate's second verdict. Everything here runs on the asyncio loop
except the engine call, which the worker runs on its own thread; the loop only awaits.
"""

from __future__ import annotations

import asyncio
import dataclasses
import functools
import time
import uuid
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from hintwise.lsp_server.code.documents import Document
from hintwise.lsp_server.completion import context as cursor_context
from hintwise.lsp_server.completion import postprocess
from hintwise.lsp_server.completion.cache import TypingCache
from hintwise.lsp_server.completion.project import Project
from hintwise.lsp_server.completion.result import Result
from hintwise.lsp_server.config import CompletionSettings
from hintwise.lsp_server.gate.keeper import Gatekeeper, Verdict
from hintwise.models.engine import Completion, CompletionRequest, Engine
from hintwise.models.errors import ModelUnavailable
from hintwise.models.gate.features import GateInput
from hintwise.models.worker import Job, ModelWorker, Priority


@dataclass
class Counters:
    """What the completer did, for `hintwise/status`, tests and benchmarks."""

    requests: int = 0
    model_calls: int = 0
    cache_hits: int = 0
    skipped: int = 0  # no completion wanted at that position (mode "none")
    cancelled: int = 0
    gated: int = 0  # the acceptance gate skipped the model call
    hidden: int = 0  # the acceptance gate hid the generated suggestion
    prewarmed: int = 0  # pre-warm jobs that ran to the end
    # Recent cancelled generations: tokens generated after the cancel, and ms until it stopped.
    cancellations: deque = field(default_factory=lambda: deque(maxlen=20))
    last: Result | None = None  # the most recent answer that reached the model or the cache

    def describe(self, with_prompt: bool = False) -> dict:
        """For `hintwise/status`; `with_prompt` adds the last prompt's token ids and text."""
        last = self.last.to_json() if self.last is not None else None
        if last is not None and with_prompt and self.last and self.last.engine is not None:
            last["prompt_ids"] = list(self.last.engine.prompt)
            last["prompt_text"] = self.last.engine.prompt_text
        return {
            "requests": self.requests,
            "model_calls": self.model_calls,
            "cache_hits": self.cache_hits,
            "skipped": self.skipped,
            "cancelled": self.cancelled,
            "gated": self.gated,
            "hidden": self.hidden,
            "prewarmed": self.prewarmed,
            "cancellations": list(self.cancellations),
            "last": last,
        }


@dataclass
class _Attempt:
    """What the model produced for a request, after post-processing (one or two calls)."""

    completion: Completion
    finished: postprocess.Finished
    attempts: tuple[int, ...]
    second_choice: bool
    others: list[str] = field(default_factory=list)  # the runner-ups, post-processed, distinct
    asked: int = 1  # candidates the engine was asked for


class Completer:
    """Per-server completion state: prompt anchors, the typing cache, and the model worker."""

    def __init__(self, worker: ModelWorker, model_name: str = "", gate: Gatekeeper | None = None):
        self.worker = worker
        self.model_name = model_name
        self.gate = gate
        self.anchors: dict[str, int] = {}
        self.cache = TypingCache()
        self.counters = Counters()
        # Other files' chunks and definitions before this one's (the server feeds its events).
        self.project = Project()

    def forget(self, uri: str) -> None:
        self.anchors.pop(uri, None)
        self.cache.forget(uri)

    def _request(
        self,
        ctx: cursor_context.CursorContext,
        settings: CompletionSettings,
        warm: bool = False,
        automatic: bool = True,
        document: Document | None = None,
    ) -> CompletionRequest:
        searched, min_p = candidate_search(ctx, settings, automatic)
        preamble = ""
        if document is not None and settings.project_tokens > 0:
            preamble = self.project.preamble(document, ctx.offset, settings.project_tokens)
        return CompletionRequest(
            prefix=ctx.prefix,
            suffix=ctx.suffix,
            max_tokens=settings.max_tokens,
            time_limit_s=settings.time_limit_ms / 1000,
            prefix_budget=settings.prefix_tokens,
            suffix_budget=settings.suffix_tokens,
            token_healing=settings.token_healing,
            stop=cursor_context.stop_rule(ctx, settings.max_lines),
            warm_only=warm,
            avoid_first=ctx.comment_markers() if ctx.code_expected() else (),
            indent_first=ctx.indent_char() if ctx.needs_indent() else "",
            preamble=preamble,
            preamble_budget=settings.project_tokens,
            candidates=searched,
            candidate_min_p=min_p,
            alternatives=not automatic,
        )

    def request_for(
        self, document: Document, offset: int, settings: CompletionSettings
    ) -> CompletionRequest | None:
        """The model request an automatic completion at `offset` would make, or None where
        none would be made: `hintwise tune` builds training prompts from it without paying for
        the answers it does not need."""
        ctx = cursor_context.build(document, offset, settings, self.anchors.get(document.uri))
        if ctx.mode == "none" or document.looks_binary():
            return None
        return self._request(ctx, settings, document=document)

    def prewarm(self, document: Document, offset: int, settings: CompletionSettings) -> None:
        """Evaluate the prompt for `offset` in the background so the next request is warm."""
        if not settings.enabled or not settings.prewarm or self.worker.state == "failed":
            return
        ctx = cursor_context.build(
            document, offset, settings, self.anchors.get(document.uri), automatic=False
        )
        if document.looks_binary():
            return
        request = self._request(ctx, settings, warm=True, document=document)
        uri = document.uri

        def warm(engine, cancelled):
            completion = engine.complete(request, cancelled)
            self.anchors[uri] = ctx.prefix_start + completion.prefix_cut
            if completion.stop_reason != "cancelled":
                self.counters.prewarmed += 1
            return completion

        self.worker.submit(warm, Priority.WARM, key=f"warm:{uri}")

    async def complete(
        self,
        document: Document,
        offset: int,
        settings: CompletionSettings,
        automatic: bool = True,
    ) -> Result:
        """A suggestion at character `offset` of `document`, or the reason there is none."""
        started = time.perf_counter()
        self.counters.requests += 1
        if not settings.enabled:
            return Result(None, "completions are turned off (completion.enabled)", uri=document.uri)
        if self.gate is not None:
            self.gate.maybe_reload()
        ctx = cursor_context.build(
            document, offset, settings, self.anchors.get(document.uri), automatic
        )
        latency = {"context": (time.perf_counter() - started) * 1000}
        base: dict[str, Any] = dict(
            uri=document.uri, offset=ctx.offset, mode=ctx.mode, model=self.model_name, context=ctx
        )
        if ctx.mode == "none":
            self.counters.skipped += 1
            latency["total"] = latency["context"]
            return Result(None, ctx.reason, latency_ms=latency, **base)
        cached = self._typed_along(ctx, latency, base, started)
        if cached is None:
            cached = self._asked_again(document, ctx, (settings, automatic), latency, started)
        if cached is not None and (automatic or has_alternatives(cached)):
            return cached
        verdicts: dict[str, Verdict] = {}
        gate_data = None
        if self.gate is not None:
            gate_data, verdicts["pre"] = self.gate.before(document.text, ctx.offset, ctx, automatic)
            if not verdicts["pre"].passed:
                return self._gated(verdicts, latency, base, started)
        attempt = await self._generate(document, ctx, settings, latency, base, started, automatic)
        if isinstance(attempt, Result):
            return attempt
        result = self._finish(attempt, gate_data, verdicts, automatic, latency, base, started)
        if not result.text and attempt.completion.stop_reason != "time":
            self.cache.add_nothing(document.text, ctx, (settings, automatic), result)
        return result

    def _typed_along(
        self,
        ctx: cursor_context.CursorContext,
        latency: dict[str, float],
        base: dict[str, Any],
        started: float,
    ) -> Result | None:
        """The rest of a shown suggestion the user is typing along, or None."""
        hit = self.cache.lookup(base["uri"], ctx)
        if hit is None:
            return None
        shown, remaining = hit
        typed = (shown.text or "")[: len(shown.text or "") - len(remaining)]
        self.counters.cache_hits += 1
        latency["total"] = (time.perf_counter() - started) * 1000
        self.counters.last = Result(
            remaining,
            "typed along a shown suggestion",
            id=shown.id,
            from_cache=True,
            latency_ms=latency,
            engine=shown.engine,
            verdicts=shown.verdicts,
            candidates_asked=shown.candidates_asked,
            alternatives=[
                dataclasses.replace(other, text=(other.text or "")[len(typed) :])
                for other in shown.alternatives
                if (other.text or "").startswith(typed) and len(other.text or "") > len(typed)
            ],
            **base,
        )
        return self.counters.last

    def _asked_again(
        self,
        document: Document,
        ctx: cursor_context.CursorContext,
        key: object,
        latency: dict[str, float],
        started: float,
    ) -> Result | None:
        """The same request as the last one here, whose answer was not worth showing."""
        known = self.cache.nothing(document.uri, document.text, ctx.offset, key)
        if known is None:
            return None
        self.counters.cache_hits += 1
        latency["total"] = (time.perf_counter() - started) * 1000
        return dataclasses.replace(
            known,
            reason=f"asked again, same answer: {known.reason}",
            from_cache=True,
            latency_ms=latency,
            context=ctx,
        )

    def _gated(
        self,
        verdicts: dict[str, Verdict],
        latency: dict[str, float],
        base: dict[str, Any],
        started: float,
    ) -> Result:
        pre = verdicts["pre"]
        self.counters.gated += 1
        latency["gate"] = pre.ms
        latency["total"] = (time.perf_counter() - started) * 1000
        reason = f"acceptance gate: unlikely to be accepted here ({pre.score:.2f} < "
        reason += f"{pre.threshold:.2f}), model not called"
        return Result(None, reason, latency_ms=latency, verdicts=verdicts, **base)

    async def _generate(
        self,
        document: Document,
        ctx: cursor_context.CursorContext,
        settings: CompletionSettings,
        latency: dict[str, float],
        base: dict[str, Any],
        started: float,
        automatic: bool = True,
    ) -> _Attempt | Result:
        """Ask the model; once more for its runner-up when the best answer only copied the code
        that is already there or would have made the line a syntax error (the prompt is cached:
        that costs only the generation). A Result
        when there is nothing to post-process (superseded, cancelled, no model)."""
        uri = document.uri
        self.worker.cancel_key(f"warm:{uri}")
        request = self._request(ctx, settings, automatic=automatic, document=document)
        latency.update(queue=0.0, tokenize=0.0, prompt=0.0, generate=0.0, postprocess=0.0)
        attempts: list[int] = []
        while True:
            completion = await self._call(request, uri, latency, base)
            if isinstance(completion, Result):
                return completion
            generated = time.perf_counter()
            attempts.append(completion.generated_tokens)
            self.anchors[uri] = ctx.prefix_start + completion.prefix_cut
            if completion.stop_reason == "cancelled":
                latency["total"] = (generated - started) * 1000
                return Result(None, "cancelled", latency_ms=latency, engine=completion, **base)
            finish = functools.partial(finish_text, ctx, document, settings)
            finished = finish(completion.text, completion.stop_reason)
            others = [finish(other.text, other.stop_reason) for other in completion.alternatives]
            latency["postprocess"] += (time.perf_counter() - generated) * 1000
            first = completion.first_content_token
            if (
                not finished.text
                and finished.worth_a_second_try
                and any(other.text for other in others)
            ):
                # The best candidate copied the code below or broke the line: the runner-up,
                # no new call.
                chosen = next(i for i, other in enumerate(others) if other.text)
                completion = dataclasses.replace(
                    completion,
                    text=completion.alternatives[chosen].text,
                    token_logprobs=completion.alternatives[chosen].token_logprobs,
                )
                finished, others = others[chosen], others[:chosen] + others[chosen + 1 :]
                return _Attempt(
                    completion,
                    finished,
                    tuple(attempts),
                    True,
                    distinct(finished, others),
                    request.candidates,
                )
            retry = finished.worth_a_second_try and len(attempts) < 2
            if finished.text or not retry or first is None:
                return _Attempt(
                    completion,
                    finished,
                    tuple(attempts),
                    bool(request.banned_first),
                    distinct(finished, others),
                    request.candidates,
                )
            request = dataclasses.replace(request, banned_first=request.banned_first | {first})

    async def _call(
        self,
        request: CompletionRequest,
        uri: str,
        latency: dict[str, float],
        base: dict[str, Any],
    ) -> Completion | Result:
        """One model call on the worker (a newer request for the same document cancels it)."""

        def generate(engine: Engine, cancelled: Callable[[], bool]) -> Completion:
            return engine.complete(request, cancelled)

        job = self.worker.submit(generate, key=uri)
        self.counters.model_calls += 1
        self._watch(job)
        try:
            completion: Completion = await asyncio.wrap_future(job.future)
        except asyncio.CancelledError:
            self.worker.cancel(job)
            task = asyncio.current_task()
            if task is not None and task.cancelling():
                raise  # the client cancelled this request
            return Result(None, "superseded by a newer request", latency_ms=latency, **base)
        except ModelUnavailable as error:
            return Result(None, f"no model: {error}", latency_ms=latency, **base)
        finished = time.perf_counter()
        latency["queue"] += ((job.started_at or finished) - job.submitted_at) * 1000
        latency["tokenize"] += completion.tokenize_ms
        latency["prompt"] += completion.prompt_ms
        latency["generate"] += completion.generate_ms
        return completion

    def _finish(
        self,
        attempt: _Attempt,
        gate_data: GateInput | None,
        verdicts: dict[str, Verdict],
        automatic: bool,
        latency: dict[str, float],
        base: dict[str, Any],
        started: float,
    ) -> Result:
        """The gate's second verdict on the post-processed text, and the Result."""
        completion, text, reason = (
            attempt.completion,
            attempt.finished.text,
            attempt.finished.reason,
        )
        if text and self.gate is not None and gate_data is not None:
            _, post = self.gate.after(
                gate_data,
                text,
                completion.token_logprobs,
                automatic,
                # the suggestion's own tokens (generated_tokens counts every candidate's)
                tokens=len(completion.token_logprobs) or None,
            )
            verdicts["post"] = post
            latency["gate"] = verdicts["pre"].ms + post.ms
            if not post.passed:
                self.counters.hidden += 1
                text = None
                reason = f"acceptance gate: suggestion hidden ({post.score:.2f} < "
                reason += f"{post.threshold:.2f})"
        latency["total"] = (time.perf_counter() - started) * 1000
        result = Result(
            text,
            f"{reason} (second choice)" if attempt.second_choice else reason,
            id=uuid.uuid4().hex if text else None,
            latency_ms=latency,
            engine=completion,
            attempts=attempt.attempts,
            verdicts=verdicts,
            candidates_asked=attempt.asked,
            **base,
        )
        if text:
            result.alternatives = [
                dataclasses.replace(
                    result, text=other, id=uuid.uuid4().hex, reason="alternative", alternatives=[]
                )
                for other in attempt.others
            ]
            self.cache.add(base["uri"], base["context"], result)
        self.counters.last = result
        return result

    def _watch(self, job: Job) -> None:
        """Record how quickly a cancelled generation really stopped."""

        def done(future) -> None:
            if not job.cancel_event.is_set() or future.cancelled() or future.exception():
                return
            completion = future.result()
            self.counters.cancelled += 1
            if job.started and job.cancelled_at is not None and job.finished_at is not None:
                self.counters.cancellations.append(
                    {
                        "tokens_after_cancel": max(
                            0, completion.generated_tokens - (job.generated_at_cancel or 0)
                        ),
                        "generated_tokens": completion.generated_tokens,
                        "stop_ms": round((job.finished_at - job.cancelled_at) * 1000, 2),
                        "stop_reason": completion.stop_reason,
                    }
                )

        job.future.add_done_callback(done)


# Suggestions an invoked request offers at most (the best and its runner-ups), as the editors'
# next/previous show them.
ALTERNATIVES = 3


def candidate_search(
    ctx: cursor_context.CursorContext, settings: CompletionSettings, automatic: bool
) -> tuple[int, float]:
    """How many candidates the engine searches, and the least likely first token it follows.

    Automatic requests search in single-line mode and in a gap inside a body, whose
    suggestion ends where the code below begins (what the ranking was measured on); an
    invoked request always does, wide, because the user may cycle through the alternatives."""
    if not automatic:
        return max(settings.candidates, ALTERNATIVES), 0.0
    if ctx.mode != "single" and not ctx.fills_gap():
        return 1, 0.0
    return settings.candidates, settings.candidate_min_p


def finish_text(
    ctx: cursor_context.CursorContext,
    document: Document,
    settings: CompletionSettings,
    raw: str,
    stop_reason: str,
) -> postprocess.Finished:
    """One candidate's raw text post-processed for display (see postprocess.finish)."""
    return postprocess.finish(
        ctx,
        document,
        raw,
        max_lines=settings.max_lines,
        min_chars=settings.min_chars,
        truncated=stop_reason in ("max_tokens", "time", "context"),
    )


def has_alternatives(result: Result) -> bool:
    """Whether a cached answer can serve an invoked request: the engine was asked for several
    candidates (its alternatives may be none: every runner-up the same text, or an engine
    that does not search, with FIM tokens or remote, where asking again gives the same)."""
    return result.engine is None or result.candidates_asked > 1


def distinct(finished: postprocess.Finished, others: list[postprocess.Finished]) -> list[str]:
    """The runner-ups' texts that differ from the suggestion and from each other, at most
    ALTERNATIVES - 1 of them."""
    seen = {(finished.text or "").strip()}
    texts: list[str] = []
    for other in others:
        text = other.text
        if text and text.strip() not in seen and len(texts) < ALTERNATIVES - 1:
            seen.add(text.strip())
            texts.append(text)
    return texts
