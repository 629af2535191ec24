"""An engine that asks an OpenAI-compatible inference server instead of running the model here.

Servers it knows (told apart by `probe`): llama.cpp's `llama-server` (its `/infill` endpoint
when the model has FIM tokens), `python -m llama_cpp.server` (llama-cpp-python), vLLM and
Ollama; anything else that speaks `/v1/completions` and `/v1/chat/completions` works as plain
"openai". Answers are streamed (server-sent events), and a cancelled request closes its
connection: the servers check for a closed connection between tokens and stop generating, so a
stale keystroke does not keep a shared GPU busy.

The worker thread calls in synchronously, as with the in-process engine. Inside, each request
runs on this engine's own asyncio loop so that a waiting read can be abandoned at once when
`cancelled()` turns true (a blocking socket read cannot be), which is what closes the stream.

Failures never raise anything but `EngineUnavailable` (a `ModelUnavailable`, so the completion
pipeline answers "no suggestion"), and the engine's health ("ok", "down", "slow", "refused")
is reported through `on_status` once per change, for the editor and `hintwise doctor`. After a
failure the server is left alone for a growing pause (1 s doubling to `max_pause_s`) so a dead
remote host does not cost a connect timeout on every keystroke.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import math
import ssl
import time
from collections.abc import Callable, Coroutine
from dataclasses import dataclass, field
from typing import Any

import httpx
from httpx_sse import SSEError, aconnect_sse

from hintwise.models import fim as fim_formats
from hintwise.models.engine import Completion, CompletionRequest, Generation, GenerationRequest, ModelInfo
from hintwise.models.worker import ModelUnavailable

log = logging.getLogger(__name__)

# Characters of code per model token, to turn the token budgets into text windows without a
# tokenizer round trip (code runs 3-4 characters a token; erring low keeps the prompt in budget).
CHARS_PER_TOKEN = 3
# How often a running request checks `cancelled()` and its deadlines.
POLL_S = 0.005

SERVER_KINDS = ("llama-server", "llama-cpp-python", "vllm", "ollama", "openai")


# What servers said about themselves, by (address, model, server kind, log-probs setting),
# shared by the engines of one process.
_KNOWN: dict[tuple, ServerFacts] = {}


class EngineUnavailable(ModelUnavailable):
    """The server cannot answer now (down, slow, refusing); the message is for the user."""


@dataclass(frozen=True)
class HttpOptions:
    """Where the server is and how to talk to it. The API key is never printed (repr=False)."""

    url: str
    model: str = ""  # the server's model name; "" = the first one it lists
    api_key: str | None = field(default=None, repr=False)
    connect_timeout_s: float = 3.0
    # Longest wait for the first token (the server evaluates the prompt meanwhile) and between
    # two tokens; a completion also stops at its own time limit.
    read_timeout_s: float = 10.0
    retries: int = 2
    backoff_s: float = 0.25
    max_pause_s: float = 8.0
    verify_tls: bool = True
    ca_file: str = ""
    kind: str = "auto"  # or one of SERVER_KINDS, to skip detection
    # Per-token log-probabilities: "on", "off", or "auto" = on except from llama-cpp-python,
    # whose server log-softmaxes and sorts the whole vocabulary in Python for every token
    # (measured here with Gemma's 262,144 tokens: 16 tokens in 7.1 s with, 0.39 s without).
    logprobs: str = "auto"


@dataclass
class ServerFacts:
    """What `probe` learned about the server."""

    kind: str = "openai"
    model: str = ""
    context_length: int | None = None
    fim: fim_formats.FimFormat | None = None  # a FIM prompt built as text (llama-cpp-python, vLLM)
    infill: bool = False  # llama-server's /infill does FIM itself
    logprobs: bool = True  # cleared when the server refuses them


def _base(url: str) -> str:
    url = url.strip().rstrip("/")
    if url.endswith("/v1"):
        url = url[: -len("/v1")]
    return url


def _ssl_verify(options: HttpOptions) -> bool | ssl.SSLContext:
    if not options.verify_tls:
        return False
    if options.ca_file:
        return ssl.create_default_context(cafile=options.ca_file)
    return True


def _retry_after(response: httpx.Response | None) -> float | None:
    value = response.headers.get("retry-after") if response is not None else None
    try:
        return min(5.0, float(value)) if value else None
    except ValueError:
        return None


class _Retryable(Exception):
    """A failure worth another try after a pause (connection refused, 429, 5xx)."""

    def __init__(self, message: str, wait: float | None = None):
        super().__init__(message)
        self.wait = wait


class _Fatal(Exception):
    """A failure another try will not fix (bad request, refused key); `state` for health."""

    def __init__(self, message: str, state: str = "down"):
        super().__init__(message)
        self.state = state


class _Cancelled(Exception):
    pass


class _TimedOut(Exception):
    pass


class _Failed(Exception):
    """A failure not yet recorded in the health state (see `_drive(report=False)`)."""

    def __init__(self, error: Exception):
        super().__init__(str(error))
        self.error = error


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
        self.base = _base(options.url)
        self._on_status = on_status
        self._loop = asyncio.new_event_loop()
        headers = {"User-Agent": "hintwise"}
        if options.api_key:
            headers["Authorization"] = f"Bearer {options.api_key}"
        self._client = httpx.AsyncClient(
            base_url=self.base,
            headers=headers,
            verify=_ssl_verify(options),
            timeout=httpx.Timeout(
                connect=options.connect_timeout_s,
                read=options.read_timeout_s,
                write=options.connect_timeout_s,
                pool=options.connect_timeout_s,
            ),
            trust_env=False,  # no proxy from the environment for a server the user named
        )
        self.facts: ServerFacts | None = None
        self.health = "unknown"
        self.health_message = ""
        self._failures = 0
        self._paused_until = 0.0
        self.live_generated = 0
        self._responded = False
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

    # -- plumbing --------------------------------------------------------------------------

    def _run(self, coroutine: Coroutine[Any, Any, Any]) -> Any:
        return self._loop.run_until_complete(coroutine)

    def _check_pause(self) -> None:
        if self.health not in ("ok", "unknown") and time.monotonic() < self._paused_until:
            raise EngineUnavailable(self.health_message)

    async def _request_json(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        try:
            return await self._client.request(method, path, **kwargs)
        except httpx.TimeoutException as error:
            raise _Retryable(f"no answer from {self.base} ({type(error).__name__})") from None
        except httpx.HTTPError as error:
            raise _Retryable(self._connection_message(error)) from None

    def _connection_message(self, error: Exception) -> str:
        text = str(error) or type(error).__name__
        if "CERTIFICATE_VERIFY_FAILED" in text or isinstance(error, ssl.SSLError):
            return (
                f"TLS verification failed for {self.base}: {text}. Give the server's CA with "
                "engine.ca_file (engine.verify_tls = false turns checking off, not advised)"
            )
        return f"cannot reach the inference server at {self.base}: {text}"

    def _refusal(self, response: httpx.Response, body: str) -> Exception:
        """An error reply as a retryable or fatal failure with a message a user can act on."""
        code = response.status_code
        detail = body.strip().replace("\n", " ")[:300]
        if code in (401, 403):
            return _Fatal(
                f"the inference server at {self.base} refused the API key (HTTP {code}). "
                "Set it in the environment variable named by engine.api_key_env "
                "(HINTWISE_API_KEY by default) or in the file engine.api_key_file",
                "refused",
            )
        if code == 429 or code >= 500:
            return _Retryable(
                f"the inference server at {self.base} answered HTTP {code}: {detail}",
                _retry_after(response),
            )
        if code == 404 and "model" in detail.lower():
            return _Fatal(
                f"the inference server at {self.base} has no model {self.options.model!r} "
                f"(HTTP 404: {detail}); check engine.model",
                "refused",
            )
        return _Fatal(f"the inference server at {self.base} answered HTTP {code}: {detail}")

    async def _with_retries(
        self,
        attempt: Callable[[], Coroutine[Any, Any, Any]],
        cancelled: Callable[[], bool],
        retries: int,
    ) -> Any:
        """Run `attempt`, again after a growing pause on a retryable failure (at most `retries`
        more times); a cancel during the pause ends it."""
        for number in range(retries + 1):
            try:
                return await attempt()
            except _Retryable as error:
                if number == retries:
                    raise
                wait = error.wait if error.wait is not None else self.options.backoff_s * 2**number
                until = time.monotonic() + wait
                while time.monotonic() < until:
                    if cancelled():
                        raise _Cancelled() from None
                    await asyncio.sleep(min(POLL_S * 4, until - time.monotonic()))
        raise AssertionError("unreachable")

    def _fail(self, error: Exception) -> EngineUnavailable:
        """Record a failure in the health state and turn it into what callers catch."""
        if isinstance(error, _Fatal):
            self._set_health(error.state, str(error))
        elif isinstance(error, _TimedOut):
            self._set_health("slow", str(error))
        else:
            self._set_health("down", str(error))
            # What comes back up may be another server or model at the same address: ask again.
            _KNOWN.pop(self._facts_key(), None)
            self.facts = None
        return EngineUnavailable(str(error))

    def _facts_key(self) -> tuple:
        return (self.base, self.options.model, self.options.kind, self.options.logprobs)

    # -- discovery -------------------------------------------------------------------------

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
        try:
            self.facts = self._run(self._with_retries(self._probe, lambda: False, 0))
        except (_Retryable, _Fatal) as error:
            raise self._fail(error) from None
        _KNOWN[key] = self.facts
        self.info = self._make_info(started)
        self._set_health("ok", f"{self.facts.kind} serving {self.facts.model or '?'}")
        return self.facts

    async def _probe(self) -> ServerFacts:
        """Which server this is, which model it serves, and how to ask it for FIM."""
        facts = ServerFacts(kind=self.options.kind if self.options.kind != "auto" else "openai")
        response = await self._request_json("GET", "/v1/models")
        if response.status_code != 200:
            raise self._refusal(response, response.text)
        try:
            listed = response.json().get("data") or []
        except (ValueError, AttributeError):
            raise _Fatal(
                f"{self.base}/v1/models did not answer JSON: is this an OpenAI-compatible server?"
            ) from None
        entry = next(
            (m for m in listed if not self.options.model or m.get("id") == self.options.model),
            None,
        )
        if entry is None and self.options.model:
            names = ", ".join(str(m.get("id")) for m in listed) or "none"
            raise _Fatal(
                f"the inference server at {self.base} does not serve {self.options.model!r} "
                f"(it serves: {names}); check engine.model",
                "refused",
            )
        entry = entry or {}
        facts.model = self.options.model or str(entry.get("id", ""))
        owner = str(entry.get("owned_by", ""))
        if self.options.kind == "auto":
            facts.kind = await self._detect_kind(owner)
        if facts.kind == "vllm":
            facts.context_length = entry.get("max_model_len")
        if facts.kind == "llama-server":
            meta = entry.get("meta") or {}
            facts.context_length = meta.get("n_ctx_train")
            props = await self._request_json("GET", "/props")
            if props.status_code == 200:
                settings = props.json().get("default_generation_settings") or {}
                facts.context_length = settings.get("n_ctx") or facts.context_length
            infill = await self._request_json(
                "POST", "/infill", json={"input_prefix": "", "input_suffix": "", "n_predict": 0}
            )
            facts.infill = infill.status_code == 200
        elif facts.kind in ("llama-cpp-python", "vllm"):
            facts.fim = await self._detect_fim(facts)
        facts.logprobs = self.options.logprobs == "on" or (
            self.options.logprobs == "auto" and facts.kind != "llama-cpp-python"
        )
        return facts

    async def _detect_kind(self, owner: str) -> str:
        if owner == "llamacpp":
            return "llama-server"
        if owner == "me":  # llama-cpp-python's /v1/models says so
            return "llama-cpp-python"
        if owner == "vllm":
            return "vllm"
        for path, kind in (("/props", "llama-server"), ("/api/version", "ollama")):
            try:
                response = await self._request_json("GET", path)
            except _Retryable:
                continue
            if response.status_code == 200:
                return kind
        return "openai"

    async def _count_tokens(self, facts: ServerFacts, text: str) -> int | None:
        if facts.kind == "llama-cpp-python":
            response = await self._request_json("POST", "/extras/tokenize", json={"input": text})
        else:
            response = await self._request_json(
                "POST",
                "/tokenize",
                json={"model": facts.model, "prompt": text, "add_special_tokens": False},
            )
        if response.status_code != 200:
            return None
        return len(response.json().get("tokens", []))

    async def _detect_fim(self, facts: ServerFacts) -> fim_formats.FimFormat | None:
        """The FIM format whose three markers the server's tokenizer reads as single tokens.

        The vocabulary is the truth, as for local models (see models.fim): a marker that is one
        token is a special token of the model."""
        baseline = await self._count_tokens(facts, "")
        if baseline is None:
            return None
        for fmt in fim_formats.FORMATS:
            counts = [
                await self._count_tokens(facts, text)
                for text in (fmt.prefix, fmt.suffix, fmt.middle)
            ]
            if all(count == baseline + 1 for count in counts):
                return fmt
        return None

    # -- streaming -------------------------------------------------------------------------

    async def _stream(
        self,
        path: str,
        payload: dict,
        on_event: Callable[[dict], bool],
    ) -> None:
        """POST with stream=True and hand each event's JSON to `on_event` until it returns
        True (done), the server says [DONE], or the stream ends. Leaving closes the stream."""
        try:
            async with aconnect_sse(self._client, "POST", path, json=payload) as source:
                response = source.response
                self._responded = True
                if response.status_code != 200:
                    body = (await response.aread()).decode("utf-8", errors="replace")
                    raise self._refusal(response, body)
                events = 0
                async for event in source.aiter_sse():
                    if event.data.strip() == "[DONE]":
                        return
                    if not event.data.strip():
                        continue
                    try:
                        data = json.loads(event.data)
                    except ValueError:
                        continue
                    if isinstance(data, dict) and "error" in data and not data.get("choices"):
                        raise _Fatal(f"the inference server at {self.base} failed: {data['error']}")
                    events += 1
                    if on_event(data):
                        return
                if not events:
                    # llama-cpp-python ends the stream this way when the request failed inside
                    # (e.g. log-probs asked of a server started with --logits_all false).
                    raise _Fatal(
                        f"the inference server at {self.base} ended its answer without a token"
                    )
        except SSEError as error:
            raise _Fatal(f"{self.base}{path} did not stream its answer: {error}") from None
        except httpx.TimeoutException:
            raise _TimedOut(
                f"the inference server at {self.base} is slow: no answer within "
                f"{self.options.read_timeout_s:.0f} s"
            ) from None
        except httpx.RemoteProtocolError as error:
            raise _Retryable(
                f"the inference server at {self.base} closed the connection mid-answer ({error})"
            ) from None
        except httpx.HTTPError as error:
            raise _Retryable(self._connection_message(error)) from None

    async def _whole_answer(self, path: str, payload: dict, state: _Stream | _ChatStream) -> None:
        """One try at streaming an answer from its start. An answer that ends without the
        server's finish reason was cut short by the server (llama-cpp-python interrupts a
        running answer when another request arrives): worth another try."""
        state.reset()
        await self._stream(path, payload, state.on_event)
        if state.finish is None and not state.stopped:
            raise _Retryable(
                f"the inference server at {self.base} broke off its answer "
                "(another request interrupted it?)"
            )

    def _drive(
        self,
        make: Callable[[], Coroutine[Any, Any, Any]],
        cancelled: Callable[[], bool],
        first_token_s: float,
        started_generating: Callable[[], float | None],
        generation_limit_s: float,
        report: bool = True,
    ) -> str:
        """Run a streaming request to its end, a cancel, or a deadline; returns how it ended:
        "done", "cancelled" or "time". Failures raise EngineUnavailable, recorded in the health
        state when `report` (else the caller decides: it may try another way first)."""

        async def run() -> str:
            task = asyncio.ensure_future(make())
            opened = time.monotonic()
            try:
                while True:
                    done, _ = await asyncio.wait({task}, timeout=POLL_S)
                    if done:
                        task.result()
                        return "done"
                    if cancelled():
                        return "cancelled"
                    first = started_generating()
                    now = time.monotonic()
                    if first is None and now - opened > first_token_s:
                        raise _TimedOut(
                            f"the inference server at {self.base} is slow: no first token "
                            f"within {first_token_s:.1f} s"
                        )
                    if first is not None and now - first > generation_limit_s:
                        return "time"
            finally:
                if not task.done():
                    task.cancel()  # leaving the `async with` closes the HTTP stream
                    with contextlib.suppress(asyncio.CancelledError, Exception):
                        await task

        try:
            return self._run(run())
        except _Cancelled:
            return "cancelled"
        except (_Retryable, _Fatal, _TimedOut) as error:
            if not report:
                raise _Failed(error) from None
            raise self._fail(error) from None

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
        return prefix[cut:], suffix, cut

    def complete(self, request: CompletionRequest, cancelled: Callable[[], bool]) -> Completion:
        started = time.perf_counter()
        self.live_generated = 0
        facts = self._ensure_facts()
        self._check_pause()
        prefix, suffix, cut = self._windows(request)
        result = Completion(text="", prefix_cut=cut)
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
        state = _Stream(request, result, self)
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
        state: _Stream,
        cancelled: Callable[[], bool],
        request: CompletionRequest,
        facts: ServerFacts,
    ) -> None:
        def run(report: bool = True) -> str:
            return self._drive(
                lambda: self._with_retries(
                    lambda: self._whole_answer(path, payload, state), cancelled, 1
                ),
                cancelled,
                self.options.read_timeout_s,
                lambda: state.first_at,
                request.time_limit_s,
                report,
            )

        self._responded = False
        try:
            how = run(report=False)
        except _Failed as failed:
            asked = "logprobs" in payload or "n_probs" in payload
            if not (asked and self._responded and state.tokens == 0):
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
        result = Generation(text="")
        state = _ChatStream(result)

        def attempt() -> Coroutine[Any, Any, Any]:
            return self._with_retries(
                lambda: self._whole_answer(path, payload, state),
                cancelled,
                self.options.retries,
            )

        how = self._drive(
            attempt,
            cancelled,
            max(self.options.read_timeout_s, request.time_limit_s),
            lambda: state.first_at,
            request.time_limit_s,
        )
        self._set_health("ok", f"{facts.kind} serving {facts.model or '?'}")
        finished = time.perf_counter()
        result.text = "".join(state.parts)
        result.generated_tokens = state.tokens
        result.stop_reason = {"cancelled": "cancelled", "time": "time"}.get(
            how, state.finish or "stop"
        )
        if state.first_wall is not None:
            result.prompt_ms = (state.first_wall - started) * 1000
            result.generate_ms = (finished - state.first_wall) * 1000
        return result

    # -- the rest of the Engine protocol ---------------------------------------------------

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
        if self._loop.is_closed():
            return
        try:
            self._loop.run_until_complete(self._client.aclose())
            self._loop.run_until_complete(self._loop.shutdown_asyncgens())
        finally:
            self._loop.close()


_FINISH = {"length": "max_tokens", "stop": "eos", "eos": "eos"}


class _Stream:
    """Accumulates a streamed completion: text, token count, log-probs, the caller's stop rule."""

    def __init__(self, request: CompletionRequest, result: Completion, engine: HttpEngine):
        self.request = request
        self.result = result
        self.engine = engine
        self.reset()

    def reset(self) -> None:
        self.result.token_logprobs = []
        self.result.generated_tokens = 0
        self.engine.live_generated = 0
        self.text = ""
        self.tokens = 0
        self.first_at: float | None = None
        self.first_wall = 0.0
        self.finish: str | None = None
        self.stopped = False

    def _piece(self, data: dict) -> tuple[str, list[float], str | None]:
        if "choices" in data:  # OpenAI /v1/completions
            choices = data.get("choices") or [{}]
            choice = choices[0]
            logprobs = choice.get("logprobs") or {}
            values = [v for v in (logprobs.get("token_logprobs") or []) if v is not None]
            # llama-server answers in the chat shape: {"content": [{"token", "logprob"}, ...]}
            values += [e["logprob"] for e in logprobs.get("content") or [] if "logprob" in e]
            return choice.get("text") or "", values, choice.get("finish_reason")
        # llama-server /infill: {"content", "stop", "completion_probabilities"}
        values = []
        for entry in data.get("completion_probabilities") or []:
            if "logprob" in entry:
                values.append(float(entry["logprob"]))
            else:  # older servers: probabilities of the top candidates
                chosen = next(
                    (p for p in entry.get("probs", []) if p.get("tok_str") == entry.get("content")),
                    None,
                )
                if chosen and chosen.get("prob"):
                    values.append(math.log(chosen["prob"]))
        finish = None
        if data.get("stop"):
            finish = "length" if data.get("stopped_limit") else "stop"
        return data.get("content") or "", values, finish

    def on_event(self, data: dict) -> bool:
        text, logprobs, finish = self._piece(data)
        if text or logprobs:
            if self.first_at is None:
                self.first_at, self.first_wall = time.monotonic(), time.perf_counter()
            self.tokens += max(1, len(logprobs)) if text else len(logprobs)
            self.result.token_logprobs.extend(logprobs)
            self.result.generated_tokens = self.tokens
            self.engine.live_generated = self.tokens
            self.text += text
        if finish:
            self.finish = _FINISH.get(finish, "eos")
        if self.result.generated_tokens >= self.request.max_tokens > 0:
            self.finish = "max_tokens"
        stop = self.request.stop
        if stop is not None and text:
            cut = stop(self.text)
            if cut is not None:
                self.text = self.text[:cut]
                self.stopped = True
                return True  # closes the stream: the server stops generating
        return False


class _ChatStream:
    """Accumulates a streamed chat (or completion) answer."""

    stopped = False  # generation has no stop rule of its own

    def __init__(self, result: Generation):
        self.result = result
        self.reset()

    def reset(self) -> None:
        self.parts: list[str] = []
        self.tokens = 0
        self.first_at: float | None = None
        self.first_wall: float | None = None
        self.finish: str | None = None

    def on_event(self, data: dict) -> bool:
        choice = (data.get("choices") or [{}])[0]
        delta = choice.get("delta") or {}
        text = delta.get("content") if "delta" in choice else choice.get("text")
        if text:
            if self.first_at is None:
                self.first_at, self.first_wall = time.monotonic(), time.perf_counter()
            self.parts.append(text)
            self.tokens += 1
        if choice.get("finish_reason"):
            self.finish = _FINISH.get(choice["finish_reason"], "eos")
        return False
