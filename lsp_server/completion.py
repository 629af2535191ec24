"""The completion pipeline, shared by the language server and `hintwise complete`.

context (tree-sitter, windows, mode) → typing-along cache → model worker → post-processing.
Everything here runs on the asyncio loop except the engine call, which the worker runs on its
own thread; the loop only awaits.
"""

from __future__ import annotations

import asyncio
import dataclasses
import time
import uuid
from collections import deque
from dataclasses import dataclass, field

from lsp_server import context as cursor_context
from lsp_server import postprocess
from lsp_server.config import CompletionSettings
from lsp_server.documents import Document
from models.engine import Completion, CompletionRequest
from models.worker import Job, ModelUnavailable, ModelWorker, Priority

# Open documents keep this many recent suggestions for typing along them.
CACHE_PER_DOCUMENT = 8


@dataclass
class Result:
    """One answer to a completion request: a suggestion, or the reason there is none."""

    text: str | None
    reason: str
    id: str | None = None
    uri: str = ""
    offset: int = 0
    mode: str = "none"
    model: str = ""
    from_cache: bool = False
    latency_ms: dict[str, float] = field(default_factory=dict)
    engine: Completion | None = None
    context: cursor_context.CursorContext | None = field(default=None, repr=False)
    created: float = field(default_factory=time.time)

    def to_json(self) -> dict:
        """The shape `hintwise complete --json` prints."""
        engine = self.engine
        return {
            "text": self.text,
            "id": self.id,
            "reason": self.reason,
            "mode": self.mode,
            "model": self.model,
            "fim": bool(engine and engine.fim),
            "from_cache": self.from_cache,
            "latency_ms": {key: round(value, 2) for key, value in self.latency_ms.items()},
            "tokens": {
                "prompt": engine.prompt_tokens if engine else 0,
                "evaluated": engine.evaluated_tokens if engine else 0,
                "reused": engine.reused_tokens if engine else 0,
                "generated": engine.generated_tokens if engine else 0,
            },
            "token_logprobs": [round(v, 4) for v in engine.token_logprobs] if engine else [],
            "stop_reason": engine.stop_reason if engine else None,
            "healed": engine.healed if engine else "",
        }


@dataclass
class _Shown:
    prefix_start: int
    prefix: str
    line_suffix: str
    result: Result


class TypingCache:
    """Recent suggestions per document, answering a request whose typed text follows one.

    Typing `re` into a shown `return x` must not call the model again: the answer is `turn x`.
    """

    def __init__(self) -> None:
        self._shown: dict[str, deque[_Shown]] = {}

    def add(self, uri: str, ctx: cursor_context.CursorContext, result: Result) -> None:
        entries = self._shown.setdefault(uri, deque(maxlen=CACHE_PER_DOCUMENT))
        entries.appendleft(_Shown(ctx.prefix_start, ctx.prefix, ctx.line_suffix, result))

    def lookup(self, uri: str, ctx: cursor_context.CursorContext) -> tuple[Result, str] | None:
        for entry in self._shown.get(uri, ()):
            text = entry.result.text or ""
            if entry.prefix_start != ctx.prefix_start or entry.line_suffix != ctx.line_suffix:
                continue
            if not ctx.prefix.startswith(entry.prefix):
                continue
            typed = ctx.prefix[len(entry.prefix) :]
            if text.startswith(typed) and len(typed) < len(text):
                return entry.result, text[len(typed) :]
        return None

    def forget(self, uri: str) -> None:
        self._shown.pop(uri, None)

    def retire(self, suggestion_id: str) -> None:
        """A rejected suggestion is not offered again from the cache (the model may, afresh)."""
        for uri, entries in self._shown.items():
            kept = [entry for entry in entries if entry.result.id != suggestion_id]
            if len(kept) != len(entries):
                self._shown[uri] = deque(kept, maxlen=CACHE_PER_DOCUMENT)


@dataclass
class Counters:
    """What the completer did, for `hintwise/status`, tests and benchmarks."""

    requests: int = 0
    model_calls: int = 0
    cache_hits: int = 0
    skipped: int = 0  # no completion wanted at that position (mode "none")
    cancelled: int = 0
    # Recent cancelled generations: tokens generated after the cancel, and ms until it stopped.
    cancellations: deque = field(default_factory=lambda: deque(maxlen=20))
    last: Result | None = None  # the most recent answer that reached the model or the cache


class Completer:
    """Per-server completion state: prompt anchors, the typing cache, and the model worker."""

    def __init__(self, worker: ModelWorker, model_name: str = ""):
        self.worker = worker
        self.model_name = model_name
        self.anchors: dict[str, int] = {}
        self.cache = TypingCache()
        self.counters = Counters()

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

    def forget(self, uri: str) -> None:
        self.anchors.pop(uri, None)
        self.cache.forget(uri)

    def _request(
        self, ctx: cursor_context.CursorContext, settings: CompletionSettings, warm: bool = False
    ) -> CompletionRequest:
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
            indent_first=ctx.needs_indent(),
        )

    def prewarm(self, document: Document, offset: int, settings: CompletionSettings) -> None:
        """Evaluate the prompt for `offset` in the background so the next request is warm."""
        if not settings.enabled or not settings.prewarm or self.worker.state == "failed":
            return
        ctx = cursor_context.build(
            document, offset, settings, self.anchors.get(document.uri), automatic=False
        )
        if document.looks_binary():
            return
        request = self._request(ctx, settings, warm=True)
        uri = document.uri

        def warm(engine, cancelled):
            completion = engine.complete(request, cancelled)
            self.anchors[uri] = ctx.prefix_start + completion.prefix_cut
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
        uri = document.uri
        self.counters.requests += 1
        if not settings.enabled:
            return Result(None, "completions are turned off (completion.enabled)", uri=uri)
        ctx = cursor_context.build(document, offset, settings, self.anchors.get(uri), automatic)
        context_done = time.perf_counter()
        latency = {"context": (context_done - started) * 1000}
        base = dict(uri=uri, offset=ctx.offset, mode=ctx.mode, model=self.model_name, context=ctx)
        if ctx.mode == "none":
            self.counters.skipped += 1
            latency["total"] = latency["context"]
            return Result(None, ctx.reason, latency_ms=latency, **base)
        hit = self.cache.lookup(uri, ctx)
        if hit is not None:
            shown, remaining = hit
            self.counters.cache_hits += 1
            latency["total"] = (time.perf_counter() - started) * 1000
            self.counters.last = Result(
                remaining,
                "typed along a shown suggestion",
                id=shown.id,
                from_cache=True,
                latency_ms=latency,
                engine=shown.engine,
                **base,
            )
            return self.counters.last
        self.worker.cancel_key(f"warm:{uri}")
        request = self._request(ctx, settings)
        latency.update(queue=0.0, tokenize=0.0, prompt=0.0, generate=0.0, postprocess=0.0)
        for _attempt in range(2):
            job = self.worker.submit(
                lambda engine, cancelled, r=request: engine.complete(r, cancelled), key=uri
            )
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
            generated = time.perf_counter()
            self.anchors[uri] = ctx.prefix_start + completion.prefix_cut
            latency["queue"] += ((job.started_at or generated) - job.submitted_at) * 1000
            latency["tokenize"] += completion.tokenize_ms
            latency["prompt"] += completion.prompt_ms
            latency["generate"] += completion.generate_ms
            if completion.stop_reason == "cancelled":
                latency["total"] = (generated - started) * 1000
                return Result(None, "cancelled", latency_ms=latency, engine=completion, **base)
            finished = postprocess.finish(
                ctx,
                document,
                completion.text,
                max_lines=settings.max_lines,
                min_chars=settings.min_chars,
                truncated=completion.stop_reason in ("max_tokens", "time", "context"),
            )
            latency["postprocess"] += (time.perf_counter() - generated) * 1000
            # The model's best answer copied code that is already there: ask once for its
            # runner-up (the same prompt is cached, so this costs only the generation).
            if finished.text or not finished.repeated or completion.first_content_token is None:
                break
            request = dataclasses.replace(
                request, banned_first=request.banned_first | {completion.first_content_token}
            )
        latency["total"] = (time.perf_counter() - started) * 1000
        result = Result(
            finished.text,
            f"{finished.reason} (second choice)" if request.banned_first else finished.reason,
            id=uuid.uuid4().hex if finished.text else None,
            latency_ms=latency,
            engine=completion,
            **base,
        )
        if finished.text:
            self.cache.add(uri, ctx, result)
        self.counters.last = result
        return result
