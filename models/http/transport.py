"""Talking to the server: the httpx client, requests, error replies turned into failures a caller
can act on, retries with a growing pause, and driving a streamed request on the engine's own
asyncio loop so that a cancel or a deadline abandons it at once (which closes the stream).

The worker thread calls in synchronously (`run`, `drive`); inside, each request runs on the
loop, because a waiting read can be abandoned when `cancelled()` turns true and a blocking
socket read cannot. Failures are the classes below; the engine turns them into its health state
and `EngineUnavailable`.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import ssl
import time
from collections.abc import Callable, Coroutine
from typing import Any

import httpx
from httpx_sse import EventSource, SSEError, aconnect_sse

from hintwise.models.http.options import HttpOptions, base_url
from hintwise.models.http.streams import AnswerStream

# How often a running request checks `cancelled()` and its deadlines.
POLL_S = 0.005


class Retryable(Exception):
    """A failure worth another try after a pause (connection refused, 429, 5xx)."""

    def __init__(self, message: str, wait: float | None = None):
        super().__init__(message)
        self.wait = wait


class Fatal(Exception):
    """A failure another try will not fix (bad request, refused key); `state` for health."""

    def __init__(self, message: str, state: str = "down"):
        super().__init__(message)
        self.state = state


class Cancelled(Exception):
    """The caller's `cancelled()` turned true during a pause between tries."""


class TimedOut(Exception):
    """The server did not answer in time (no first token, or a read timeout)."""


class Failed(Exception):
    """A failure of a driven request (Retryable, Fatal or TimedOut, in `error`), not yet
    recorded in the health state: the engine decides (it may try another way first)."""

    def __init__(self, error: Exception):
        super().__init__(str(error))
        self.error = error


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


class Transport:
    """One server's client and event loop, used from one worker thread."""

    def __init__(self, options: HttpOptions):
        self.options = options
        self.base = base_url(options.url)
        self.loop = asyncio.new_event_loop()
        headers = {"User-Agent": "hintwise"}
        if options.api_key:
            headers["Authorization"] = f"Bearer {options.api_key}"
        self.client = httpx.AsyncClient(
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
        # Set once the server answered a streamed request's headers (it is reachable).
        self.responded = False

    def run(self, coroutine: Coroutine[Any, Any, Any]) -> Any:
        return self.loop.run_until_complete(coroutine)

    def close(self) -> None:
        if self.loop.is_closed():
            return
        try:
            self.loop.run_until_complete(self.client.aclose())
            self.loop.run_until_complete(self.loop.shutdown_asyncgens())
        finally:
            self.loop.close()

    # -- requests and refusals -------------------------------------------------------------

    async def request(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        try:
            return await self.client.request(method, path, **kwargs)
        except httpx.TimeoutException as error:
            raise Retryable(f"no answer from {self.base} ({type(error).__name__})") from None
        except httpx.HTTPError as error:
            raise Retryable(self.connection_message(error)) from None

    def connection_message(self, error: Exception) -> str:
        text = str(error) or type(error).__name__
        if "CERTIFICATE_VERIFY_FAILED" in text or isinstance(error, ssl.SSLError):
            return (
                f"TLS verification failed for {self.base}: {text}. Give the server's CA with "
                "engine.ca_file (engine.verify_tls = false turns checking off, not advised)"
            )
        return f"cannot reach the inference server at {self.base}: {text}"

    def refusal(self, response: httpx.Response, body: str) -> Exception:
        """An error reply as a retryable or fatal failure with a message a user can act on."""
        code = response.status_code
        detail = body.strip().replace("\n", " ")[:300]
        if code in (401, 403):
            return Fatal(
                f"the inference server at {self.base} refused the API key (HTTP {code}). "
                "Set it in the environment variable named by engine.api_key_env "
                "(HINTWISE_API_KEY by default) or in the file engine.api_key_file",
                "refused",
            )
        if code == 429 or code >= 500:
            return Retryable(
                f"the inference server at {self.base} answered HTTP {code}: {detail}",
                _retry_after(response),
            )
        if code == 404 and "model" in detail.lower():
            return Fatal(
                f"the inference server at {self.base} has no model {self.options.model!r} "
                f"(HTTP 404: {detail}); check engine.model",
                "refused",
            )
        return Fatal(f"the inference server at {self.base} answered HTTP {code}: {detail}")

    async def with_retries(
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
            except Retryable as error:
                if number == retries:
                    raise
                wait = error.wait if error.wait is not None else self.options.backoff_s * 2**number
                until = time.monotonic() + wait
                while time.monotonic() < until:
                    if cancelled():
                        raise Cancelled() from None
                    await asyncio.sleep(min(POLL_S * 4, until - time.monotonic()))
        raise AssertionError("unreachable")

    # -- streaming -------------------------------------------------------------------------

    async def stream(self, path: str, payload: dict, on_event: Callable[[dict], bool]) -> None:
        """POST with stream=True and hand each event's JSON to `on_event` until it returns
        True (done), the server says [DONE], or the stream ends. Leaving closes the stream."""
        try:
            async with aconnect_sse(self.client, "POST", path, json=payload) as source:
                await self._read_events(source, on_event)
        except SSEError as error:
            raise Fatal(f"{self.base}{path} did not stream its answer: {error}") from None
        except httpx.TimeoutException:
            raise TimedOut(
                f"the inference server at {self.base} is slow: no answer within "
                f"{self.options.read_timeout_s:.0f} s"
            ) from None
        except httpx.RemoteProtocolError as error:
            raise Retryable(
                f"the inference server at {self.base} closed the connection mid-answer ({error})"
            ) from None
        except httpx.HTTPError as error:
            raise Retryable(self.connection_message(error)) from None

    async def _read_events(self, source: EventSource, on_event: Callable[[dict], bool]) -> None:
        response = source.response
        self.responded = True
        if response.status_code != 200:
            body = (await response.aread()).decode("utf-8", errors="replace")
            raise self.refusal(response, body)
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
                raise Fatal(f"the inference server at {self.base} failed: {data['error']}")
            events += 1
            if on_event(data):
                return
        if not events:
            # llama-cpp-python ends the stream this way when the request failed inside
            # (e.g. log-probs asked of a server started with --logits_all false).
            raise Fatal(f"the inference server at {self.base} ended its answer without a token")

    async def whole_answer(self, path: str, payload: dict, state: AnswerStream) -> None:
        """One try at streaming an answer from its start. An answer that ends without the
        server's finish reason was cut short by the server (llama-cpp-python interrupts a
        running answer when another request arrives): worth another try."""
        state.reset()
        await self.stream(path, payload, state.on_event)
        if state.finish is None and not state.stopped:
            raise Retryable(
                f"the inference server at {self.base} broke off its answer "
                "(another request interrupted it?)"
            )

    def drive(
        self,
        make: Callable[[], Coroutine[Any, Any, Any]],
        cancelled: Callable[[], bool],
        first_token_s: float,
        started_generating: Callable[[], float | None],
        generation_limit_s: float,
    ) -> str:
        """Run a streaming request to its end, a cancel, or a deadline; returns how it ended:
        "done", "cancelled" or "time". A failure raises Failed (the engine records it)."""

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
                        raise TimedOut(
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
            return self.run(run())
        except Cancelled:
            return "cancelled"
        except (Retryable, Fatal, TimedOut) as error:
            raise Failed(error) from None
