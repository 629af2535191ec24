"""An engine that asks an OpenAI-compatible inference server instead of running the model here.

Servers it knows (told apart by `probe`): llama.cpp's `llama-server` (its `/infill` endpoint
when the model has FIM tokens), `python -m llama_cpp.server` (llama-cpp-python), vLLM and
Ollama; anything else that speaks `/v1/completions` and `/v1/chat/completions` works as plain
"openai". Answers are streamed (server-sent events), and a cancelled request closes its
connection: the servers check for a closed connection between tokens and stop generating, so a
stale keystroke does not keep a shared GPU busy (see transport.py).

Failures never raise anything but `EngineUnavailable` (a `ModelUnavailable`, so the completion
pipeline answers "no suggestion"), and the engine's health ("ok", "down", "slow", "refused")
is reported through `on_status` once per change, for the editor and `hintwise doctor`. After a
failure the server is left alone for a growing pause (1 s doubling to `max_pause_s`) so a dead
remote host does not cost a connect timeout on every keystroke.
"""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import Callable, Coroutine
from typing import Any

from hintwise.models import fim as fim_formats
from hintwise.models.engine import (
    Completion,
    CompletionRequest,
    Generation,
    GenerationRequest,
    ModelInfo,
)
from hintwise.models.errors import EngineUnavailable
from hintwise.models.http.options import HttpOptions, ServerFacts
from hintwise.models.http.probe import probe
from hintwise.models.http.streams import AnswerStream, ChatStream, CompletionStream
from hintwise.models.http.transport import Failed, Fatal, Retryable, TimedOut, Transport

log = logging.getLogger(__name__)

# Characters of code per model token, to turn the token budgets into text windows without a
# tokenizer round trip (code runs 3-4 characters a token; erring low keeps the prompt in budget).
CHARS_PER_TOKEN = 3

# What servers said about themselves, by (address, model, server kind, log-probs setting),
# shared by the engines of one process.
_KNOWN: dict[tuple, ServerFacts] = {}


class HttpEngine:
    """One inference server (one model on it), used from one worker thread."""

    def __init__(
        self,
        options: HttpOptions,
        on_status: Callable[[str, str], None] = lambda state, message: None,
        name: str | None = None,
    ):
        if not options.url.strip():
            raise EngineUnavailable("engine.url is empty: set it to the server's address")
        if not options.url.strip().startswith(("http://", "https://")):
            raise EngineUnavailable(
                f"engine.url must start with http:// or https://, not {options.url!r}"
            )
        started = time.perf_counter()
        self.options = options
        self._transport = Transport(options)
        self.base = self._transport.base
        self._on_status = on_status
        self.facts: ServerFacts | None = None
        self.health = "unknown"
        self.health_message = ""
        self._failures = 0
        self._paused_until = 0.0
        self.live_generated = 0
        self.prepared = True
        self._name = name
        self.info = self._make_info(started)
        # A server that is down is reported through on_status; the next request tries again.
        with contextlib.suppress(EngineUnavailable):
            self._ensure_facts()

    # -- state -----------------------------------------------------------------------------

    def _make_info(self, started: float) -> ModelInfo:
        facts = self.facts
        fim = (
            "infill"
            if facts and facts.infill
            else (facts.fim.family if facts and facts.fim else None)
        )
        return ModelInfo(
            name=self._name
            or (facts.model if facts and facts.model else self.options.model)
            or self.base,
            path=self.base,
            architecture=f"remote {facts.kind}" if facts else "remote (not reached yet)",
            size_bytes=0,
            vocab_size=0,
            context_length=facts.context_length if facts else None,
            n_ctx=(facts.context_length or 0) if facts else 0,
            fim_family=fim,
            load_ms=(time.perf_counter() - started) * 1000,
            threads=0,
        )

    def _set_health(self, state: str, message: str) -> None:
        changed = state != self.health
        self.health, self.health_message = state, message
        if state == "ok":
            self._failures, self._paused_until = 0, 0.0
        else:
            self._failures += 1
            pause = min(self.options.max_pause_s, 2 ** (self._failures - 1))
            self._paused_until = time.monotonic() + pause
        if changed:
            log.info("inference server %s: %s %s", self.base, state, message)
            self._on_status(state, message)

    def status(self) -> dict:
        """Health and facts, for `hintwise/status` and `hintwise doctor`."""
        facts = self.facts
        return {
            "url": self.base,
            "health": self.health,
            "message": self.health_message,
            "kind": facts.kind if facts else None,
            "model": facts.model if facts else self.options.model or None,
            "fim": self.info.fim_family,
            "logprobs": facts.logprobs if facts else None,
        }

    def _check_pause(self) -> None:
        if self.health not in ("ok", "unknown") and time.monotonic() < self._paused_until:
            raise EngineUnavailable(self.health_message)

    def _fail(self, error: Exception) -> EngineUnavailable:
        """Record a failure in the health state and turn it into what callers catch."""
        if isinstance(error, Fatal):
            self._set_health(error.state, str(error))
        elif isinstance(error, TimedOut):
            self._set_health("slow", str(error))
        else:
            self._set_health("down", str(error))
            # What comes back up may be another server or model at the same address: ask again.
            _KNOWN.pop(self._facts_key(), None)
            self.facts = None
        return EngineUnavailable(str(error))

    def _facts_key(self) -> tuple:
        return (self.base, self.options.model, self.options.kind, self.options.logprobs)

    def _ensure_facts(self, fresh: bool = False) -> ServerFacts:
        if self.facts is not None and not fresh:
            return self.facts
        key = self._facts_key()
        started = time.perf_counter()
        known = None if fresh else _KNOWN.get(key)
        if known is not None:
            # Another engine (explanations beside completions) already asked this server: a
            # second probe would only interrupt its running answer on a one-at-a-time server.
            self.facts = known
            self.info = self._make_info(started)
            return known
        self._check_pause()
        transport = self._transport
        try:
            facts = transport.run(
                transport.with_retries(lambda: probe(transport), lambda: False, 0)
            )
        except (Retryable, Fatal) as error:
            raise self._fail(error) from None
        self.facts = _KNOWN[key] = facts
        self.info = self._make_info(started)
        self._set_health("ok", f"{facts.kind} serving {facts.model or '?'}")
        return facts

    def _drive(
        self,
        make: Callable[[], Coroutine[Any, Any, Any]],
        cancelled: Callable[[], bool],
        first_token_s: float,
        started_generating: Callable[[], float | None],
        generation_limit_s: float,
        report: bool = True,
    ) -> str:
        """Transport.drive; a failure raises EngineUnavailable, recorded in the health state
        when `report` (else Failed: the caller may try another way first)."""
        try:
            return self._transport.drive(
                make, cancelled, first_token_s, started_generating, generation_limit_s
            )
        except Failed as failed:
            if not report:
                raise
            raise self._fail(failed.error) from None

    def _answer(
        self,
        path: str,
        payload: dict,
        state: AnswerStream,
        cancelled: Callable[[], bool],
        retries: int,
    ) -> Coroutine[Any, Any, Any]:
        """The whole answer to one request, tried again after a retryable failure."""
        transport = self._transport
        return transport.with_retries(
            lambda: transport.whole_answer(path, payload, state), cancelled, retries
        )

    # -- completions -----------------------------------------------------------------------

    def _windows(self, request: CompletionRequest) -> tuple[str, str, int]:
        """The prefix and suffix texts sent, and how many characters of the prefix were cut.

        The prefix is cut at a line start, and only when it outgrows its budget, so it keeps
        the same start between keystrokes and the server's prompt cache stays valid."""
        prefix = request.prefix
        budget = request.prefix_budget * CHARS_PER_TOKEN
        cut = 0
        if len(prefix) > budget:
            start = prefix.find("\n", len(prefix) - budget)
            cut = start + 1 if start >= 0 else len(prefix) - budget
        suffix = request.suffix[: request.suffix_budget * CHARS_PER_TOKEN]
        if len(request.suffix) > len(suffix) and "\n" in suffix:
            suffix = suffix[: suffix.rfind("\n") + 1]
        return _preamble_window(request) + prefix[cut:], suffix, cut

    def complete(self, request: CompletionRequest, cancelled: Callable[[], bool]) -> Completion:
        started = time.perf_counter()
        self.live_generated = 0
        facts = self._ensure_facts()
        self._check_pause()
        prefix, suffix, cut = self._windows(request)
        result = Completion(text="", prefix_cut=cut)
        path, payload = _completion_payload(facts, request, prefix, suffix, result)
        state = CompletionStream(request, result, self)
        tokenized = time.perf_counter()
        result.tokenize_ms = (tokenized - started) * 1000
        self._complete_with_fallback(path, payload, state, cancelled, request, facts)
        finished = time.perf_counter()
        if state.first_at is not None:
            result.prompt_ms = (state.first_wall - tokenized) * 1000
            result.generate_ms = (finished - state.first_wall) * 1000
        else:
            result.prompt_ms = (finished - tokenized) * 1000
        if request.warm_only and result.stop_reason != "cancelled":
            result.stop_reason = "warm"
        result.text = state.text
        return result

    def _complete_with_fallback(
        self,
        path: str,
        payload: dict,
        state: CompletionStream,
        cancelled: Callable[[], bool],
        request: CompletionRequest,
        facts: ServerFacts,
    ) -> None:
        def run(report: bool = True) -> str:
            return self._drive(
                lambda: self._answer(path, payload, state, cancelled, 1),
                cancelled,
                self.options.read_timeout_s,
                lambda: state.first_at,
                request.time_limit_s,
                report,
            )

        self._transport.responded = False
        try:
            how = run(report=False)
        except Failed as failed:
            asked = "logprobs" in payload or "n_probs" in payload
            if not (asked and self._transport.responded and state.tokens == 0):
                raise self._fail(failed.error) from None
            # Some servers refuse log-probs (llama-cpp-python started with logits_all off):
            # once more without, and remember. The acceptance gate then goes without them.
            payload = {k: v for k, v in payload.items() if k not in ("logprobs", "n_probs")}
            how = run()
            facts.logprobs = False
            log.warning("%s gives no log-probabilities; the gate goes without them", self.base)
        self._set_health("ok", f"{facts.kind} serving {facts.model or '?'}")
        if how == "cancelled":
            state.result.stop_reason = "cancelled"
        elif how == "time":
            state.result.stop_reason = "time"
        elif state.result.stop_reason == "stop" and not state.stopped:
            # The stream ended by itself: the server's reason is in finish_reason.
            state.result.stop_reason = state.finish or "eos"

    # -- explanations and reviews ----------------------------------------------------------

    def generate(self, request: GenerationRequest, cancelled: Callable[[], bool]) -> Generation:
        """A chat (or raw prompt) answer, JSON-schema-constrained where the server can."""
        started = time.perf_counter()
        self.live_generated = 0
        facts = self._ensure_facts()
        self._check_pause()
        path, payload = _generation_payload(facts, request)
        result = Generation(text="")
        state = ChatStream(result)
        how = self._drive(
            lambda: self._answer(path, payload, state, cancelled, self.options.retries),
            cancelled,
            max(self.options.read_timeout_s, request.time_limit_s),
            lambda: state.first_at,
            request.time_limit_s,
        )
        self._set_health("ok", f"{facts.kind} serving {facts.model or '?'}")
        finished = time.perf_counter()
        result.text = "".join(state.parts)
        result.generated_tokens = state.tokens
        if how in ("cancelled", "time"):
            result.stop_reason = "cancelled" if how == "cancelled" else "time"
        else:
            result.stop_reason = state.finish or "stop"
        if state.first_wall is not None:
            result.prompt_ms = (state.first_wall - started) * 1000
            result.generate_ms = (finished - state.first_wall) * 1000
        return result

    # -- the rest of the Engine protocol, and health (models.engine.HealthReporter) --------

    def prepare(self, cancelled: Callable[[], bool] = lambda: False) -> bool:
        return True

    def check(self) -> dict:
        """Reach the server now (no pause), for `hintwise doctor`: facts or the problem."""
        self._paused_until = 0.0
        try:
            self._ensure_facts(fresh=True)
        except EngineUnavailable as error:
            return {**self.status(), "problem": str(error)}
        return self.status()

    def close(self) -> None:
        self._transport.close()


def _preamble_window(request: CompletionRequest) -> str:
    """The end of the request's preamble within its budget, cut at a line start (the same text
    for the same preamble, so the server's prompt cache stays valid)."""
    preamble = request.preamble
    budget = request.preamble_budget * CHARS_PER_TOKEN
    if budget <= 0:
        return ""
    if len(preamble) > budget:
        start = preamble.find("\n", len(preamble) - budget)
        preamble = preamble[start + 1 :] if start >= 0 else preamble[-budget:]
    return preamble


def _completion_payload(
    facts: ServerFacts, request: CompletionRequest, prefix: str, suffix: str, result: Completion
) -> tuple[str, dict[str, Any]]:
    """The path and streamed request body of a completion (/infill or /v1/completions); notes
    in `result` whether it is a FIM prompt and what the prompt text is."""
    max_tokens = request.max_tokens
    if request.warm_only:
        max_tokens = 0 if facts.kind == "llama-server" else 1
    logprobs = facts.logprobs and not request.warm_only
    if facts.infill:
        path = "/infill"
        payload: dict[str, Any] = {
            "input_prefix": prefix,
            "input_suffix": suffix,
            "n_predict": max_tokens,
            "temperature": 0,
            "top_k": 1,
            "cache_prompt": True,
            "t_max_predict_ms": int(request.time_limit_s * 1000),
        }
        if logprobs:
            payload["n_probs"] = 1
        result.fim = True
        result.prompt_text = prefix
    else:
        path = "/v1/completions"
        prompt = fim_formats.build_text(facts.fim, prefix, suffix) if facts.fim else prefix
        payload = {"prompt": prompt, "max_tokens": max_tokens, "temperature": 0}
        if facts.model:
            payload["model"] = facts.model
        if facts.kind == "llama-server":
            payload.update(cache_prompt=True, top_k=1)
        if facts.kind == "llama-cpp-python":
            payload["top_k"] = 1
        if logprobs:
            payload["logprobs"] = 1
        result.fim = facts.fim is not None
        result.prompt_text = prompt
    payload["stream"] = True
    return path, payload


def _generation_payload(facts: ServerFacts, request: GenerationRequest) -> tuple[str, dict]:
    """The path and streamed request body of a chat (or raw prompt) answer, with the JSON
    schema (or grammar) spelled the way this kind of server reads it."""
    payload: dict[str, Any] = {
        "max_tokens": request.max_tokens,
        "temperature": request.temperature,
        "stream": True,
    }
    if facts.model:
        payload["model"] = facts.model
    if request.stop:
        payload["stop"] = list(request.stop)
    if request.messages:
        path = "/v1/chat/completions"
        payload["messages"] = request.messages
    else:
        path = "/v1/completions"
        payload["prompt"] = request.prompt
    if request.json_schema is not None:
        if facts.kind == "llama-cpp-python":
            # llama-cpp-python's own spelling: a JSON object constrained by a schema.
            payload["response_format"] = {"type": "json_object", "schema": request.json_schema}
        elif facts.kind == "ollama" and not request.messages:
            payload["format"] = request.json_schema
        else:
            payload["response_format"] = {
                "type": "json_schema",
                "json_schema": {"name": "answer", "schema": request.json_schema},
            }
    elif request.grammar and facts.kind in ("llama-server", "llama-cpp-python"):
        payload["grammar"] = request.grammar
    return path, payload
