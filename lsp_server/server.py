"""The language server: the services one process runs, and how the server talks to the user.

Handlers live in `features/`, one module per concern, and call the services held here. Every
service exists from construction (what is turned off is idle or a null object), so no handler
checks for None: `start` (at initialize) applies the client's settings, starts the model workers
and opens the feedback store; a settings change applies them again.
"""

from __future__ import annotations

import asyncio
import logging
import os
import sys
import threading
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

from lsprotocol import types
from pygls.exceptions import FeatureNotificationError, FeatureRequestError, JsonRpcInternalError
from pygls.io_ import StdoutWriter
from pygls.lsp.server import LanguageServer

from hintwise import __version__
from hintwise.lsp_server import config
from hintwise.lsp_server.clock import Clock, LoopClock, ManualClock, Timer
from hintwise.lsp_server.code.documents import Document, DocumentStore, uri_path
from hintwise.lsp_server.completion.completer import Completer
from hintwise.lsp_server.engines.workers import EnginePool
from hintwise.lsp_server.explain.state import ExplanationState
from hintwise.lsp_server.feedback.store import FeedbackStore
from hintwise.lsp_server.framing import serve, stdin_reader
from hintwise.lsp_server.gate.keeper import Gatekeeper
from hintwise.lsp_server.gate.retrain import Retrainer
from hintwise.lsp_server.protocol import HintwiseProtocol
from hintwise.lsp_server.review.state import ReviewState

log = logging.getLogger("hintwise")


class HintwiseServer(LanguageServer):
    """One server process: its settings, its services, and messages to the user."""

    def __init__(self, settings: config.Settings | None = None, overrides: dict | None = None):
        super().__init__("hintwise", __version__, protocol_cls=HintwiseProtocol)
        self.overrides = overrides or {}
        base = settings or config.from_environment()
        self.settings, self.startup_problems = config.apply(base, self.overrides)
        self.loop: asyncio.AbstractEventLoop | None = None
        # Messages from before `start` (the gate is loaded as the server is built): sent then.
        self._unsent: list[Callable[[], None]] = []
        test_clock = os.environ.get("HINTWISE_TEST_CLOCK") == "1"
        self.clock: Clock = ManualClock() if test_clock else LoopClock()
        self.documents = DocumentStore()
        self.engines = EnginePool(
            self.settings,
            tell=self.tell,
            warn=self.warn,
            error=lambda message: self.tell(message, types.MessageType.Error),
            note=self.note,
        )
        self.gate = Gatekeeper(
            self.settings.gate, self.settings.data_path, now=self.clock.now, tell=self.warn
        )
        self.completer = Completer(self.engines.completion, self.settings.model_label(), self.gate)
        self.feedback = FeedbackStore(
            self.clock,
            self.settings.data_path,
            warn=self.warn,
            on_rejected=self.completer.cache.retire,
            on_answered=self.answered,
        )
        self.retrainer = Retrainer(lambda: self.settings, self.feedback.flush, self.gate, self.note)
        self.reviews = ReviewState()
        self.explanations = ExplanationState()
        self.cursor_timers: dict[str, Timer] = {}
        self.shown_errors: set[str] = set()
        self.completer.project.open_text = self.open_text
        self.completer.project.schedule = self._in_background

    def set_workspace(self, params: types.InitializeParams) -> None:
        """The workspace folders (or root) whose Python files give definitions to prompts."""
        uris = [folder.uri for folder in params.workspace_folders or []]
        if not uris and params.root_uri:
            uris = [params.root_uri]
        roots = [uri_path(uri) for uri in uris]
        self.completer.project.roots = [root for root in roots if root is not None]

    async def persisted(self, timeout: float = 1.0) -> None:
        """Wait until the store has committed what was recorded so far (at most `timeout`): an
        outcome the client got an answer for must survive a kill -9 of the server."""
        await asyncio.to_thread(self.feedback.flush, timeout)

    def in_workspace(self, path: Path) -> bool:
        """Whether `path` (symbolic links resolved) lies in one of the workspace folders: the
        only files a client may make the server read (explain) or write (export) without the
        user choosing them."""
        try:
            real = path.resolve()
            return any(real.is_relative_to(root.resolve()) for root in self.completer.project.roots)
        except (OSError, RuntimeError, ValueError):
            return False

    def open_text(self, path: Path) -> str | None:
        """The text of the open document at a file path, if one is open there."""
        return self.documents.text_at(path)

    def _in_background(self, job: Callable[[], None]) -> None:
        """Run file reading off the event loop (inline before the loop exists)."""
        if self.loop is None or self.loop.is_closed():
            job()
        else:
            self.loop.run_in_executor(None, job)

    # -- settings --------------------------------------------------------------------------

    def start(self, options: dict) -> None:
        """At initialize: the client's initializationOptions, then the workers and the store."""
        self.loop = asyncio.get_running_loop()
        unsent, self._unsent = self._unsent, []
        for send in unsent:
            send()
        if options:
            self.update_settings(options)
        else:
            self.apply(self.settings)

    def update_settings(self, values: dict) -> None:
        """Apply client settings (CLI flags still win); a bad value is reported and ignored."""
        merged = {**config.flatten(values), **config.flatten(self.overrides)}
        settings, problems = config.apply(config.from_environment(), merged)
        for problem in problems:
            self.warn(f"hintwise: ignoring a setting: {problem}")
        self.apply(settings)

    def apply(self, settings: config.Settings) -> None:
        """Start, or reload, what the settings changed: models, the store, the gate."""
        self.settings = settings
        self.engines.apply(settings)
        self.completer.model_name = settings.model_label()
        self.feedback.open(settings.telemetry, settings.data_path)
        self.gate.update(settings.gate, settings.data_path)

    # -- events the services share ---------------------------------------------------------

    def answered(self, outcome: str) -> None:
        """An outcome for a shown suggestion: the gate's session history, and retraining."""
        self.gate.session.answered(outcome, self.clock.now())
        self.retrainer.answered()

    def edited(self, document: Document, start: int, removed: int, inserted: str) -> None:
        """One content change of an open document."""
        self.feedback.completions.document_changed(document, start, removed, inserted)
        self.gate.session.edited(self.clock.now(), len(inserted))

    def prewarm_when_resting(self, document: Document, line: int, character: int) -> None:
        """Warm the prompt at a cursor once it has rested `completion.prewarm_pause_ms`, so
        scrolling through a file does not keep the CPU busy."""
        uri = document.uri
        pending = self.cursor_timers.pop(uri, None)
        if pending is not None:
            pending.cancel()
        settings = self.settings.completion

        def rested() -> None:
            self.cursor_timers.pop(uri, None)
            if self.documents.get(uri) is document:
                offset = document.offset_at(line, character)
                self.completer.prewarm(document, offset, settings)

        self.cursor_timers[uri] = self.clock.call_later(settings.prewarm_pause_ms / 1000, rested)

    def closed(self, uri: str) -> None:
        """A document was closed: forget it everywhere."""
        self.documents.close(uri)
        pending = self.cursor_timers.pop(uri, None)
        if pending is not None:
            pending.cancel()
        self.feedback.completions.closed(uri)
        self.completer.forget(uri)

    # -- the connection --------------------------------------------------------------------

    def start_io(self, stdin: Any = None, stdout: Any = None) -> None:
        """pygls' stdio server, reading with hintwise's framing (framing.py), which survives a
        bad Content-Length, and its message checks (protocol.py)."""
        self._stop_event = stop = threading.Event()
        self.protocol.set_writer(StdoutWriter(stdout or sys.stdout.buffer))
        protocol: HintwiseProtocol = self.protocol  # type: ignore[assignment]

        async def run() -> None:
            read = stdin_reader(stdin or sys.stdin.buffer, asyncio.get_running_loop(), None)
            await serve(stop, read, protocol.receive_body)

        try:
            asyncio.run(run())
        except BrokenPipeError:
            log.error("the connection to the client is lost: shutting down")
        except (KeyboardInterrupt, SystemExit):
            pass
        finally:
            self.shutdown()

    def start_tcp(self, host: str, port: int) -> None:
        """pygls' TCP server, reading with hintwise's framing and checks (as `start_io`)."""
        self._stop_event = stop = threading.Event()
        protocol: HintwiseProtocol = self.protocol  # type: ignore[assignment]

        async def connection(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            protocol.set_writer(writer)  # type: ignore[arg-type]
            await serve(stop, reader.read, protocol.receive_body)
            self.shutdown()

        async def listen() -> None:
            self._server = await asyncio.start_server(connection, host, port)
            async with self._server:
                await self._server.serve_forever()

        try:
            asyncio.run(listen())
        except asyncio.CancelledError:
            log.debug("the TCP server was cancelled")

    def report_server_error(self, error: Exception, source: Any) -> None:
        """An error pygls met while handling a message. Always logged; shown to the user once
        per distinct text, and only for a failed notification or a failed send: a request's
        error is in its answer, and a client's protocol mistake is nothing the user can fix."""
        if source is FeatureRequestError:  # answered, and logged by pygls
            return
        detail = getattr(error, "data", None) or {}
        trace = detail.get("traceback", "") if isinstance(detail, dict) else ""
        log.error("%s: %r %s", getattr(source, "__name__", source), error, "".join(trace))
        if source not in (FeatureNotificationError, JsonRpcInternalError):
            return
        text = f"hintwise: internal error: {error}"
        if text not in self.shown_errors:
            self.shown_errors.add(text)
            self.tell(text, types.MessageType.Error)

    # -- messages --------------------------------------------------------------------------

    def tell(self, message: str, kind: types.MessageType = types.MessageType.Info) -> None:
        """Show a message in the editor (and log it); safe to call from any thread."""
        log.log(logging.ERROR if kind == types.MessageType.Error else logging.INFO, "%s", message)

        def send() -> None:
            try:
                self.window_show_message(types.ShowMessageParams(type=kind, message=message))
            except Exception:  # no client connected any more
                log.debug("could not show message", exc_info=True)

        self._on_loop(send)

    def warn(self, message: str) -> None:
        self.tell(message, types.MessageType.Warning)

    def warn_once(self, message: str) -> None:
        """`warn` the first time this text comes in the session, log it afterwards: a problem
        that recurs on every save must not pop up on every save."""
        if message in self.shown_errors:
            log.warning("%s", message)
            return
        self.shown_errors.add(message)
        self.warn(message)

    def note(self, message: str) -> None:
        """A log line in the editor's output panel (window/logMessage), from any thread."""
        log.info("%s", message)

        def send() -> None:
            try:
                self.window_log_message(
                    types.LogMessageParams(type=types.MessageType.Log, message=message)
                )
            except Exception:
                log.debug("could not log message", exc_info=True)

        self._on_loop(send)

    def _on_loop(self, callback: Callable[[], None]) -> None:
        loop = self.loop
        if loop is None:
            self._unsent.append(callback)
            return
        if loop.is_closed():
            return
        try:
            running = asyncio.get_running_loop()
        except RuntimeError:
            running = None
        if running is loop:
            callback()
        else:
            loop.call_soon_threadsafe(callback)

    async def begin_progress(self, title: str) -> str | None:
        """A workDoneProgress token when the client declared support, else None."""
        window = self.client_capabilities.window
        if window is None or not window.work_done_progress:
            return None
        token = f"hintwise-{uuid.uuid4().hex[:8]}"
        try:
            await self.work_done_progress.create_async(token)
            self.work_done_progress.begin(
                token, types.WorkDoneProgressBegin(title=title, percentage=0)
            )
        except Exception:  # a client that refuses progress still gets its answer
            return None
        return token

    def report_progress(self, token: str | None, message: str, percentage: int) -> None:
        if token is not None:
            self.work_done_progress.report(
                token, types.WorkDoneProgressReport(message=message, percentage=percentage)
            )

    def end_progress(self, token: str | None, message: str) -> None:
        if token is not None:
            self.work_done_progress.end(token, types.WorkDoneProgressEnd(message=message))

    # -- what it is doing ------------------------------------------------------------------

    def status(self, with_prompt: bool = False) -> dict:
        """What the server is doing, for editor status bars, tests and benchmarks.

        `with_prompt` adds the token ids and text of the last prompt (bench/latency.py replays
        them on a bare llama.cpp, or sends the text straight to the server, to compare like with
        like)."""
        engine = self.engines.completion.engine
        return {
            "version": self.version,
            "model": self.settings.model_spec(),
            "state": self.engines.state,
            "error": self.engines.error,
            "fim": engine.info.fim_family if engine is not None else None,
            "prepared": engine is not None and engine.prepared,
            "engines": self.engines.describe(),
            "documents": len(self.documents),
            "suggestions": self.feedback.completions.counts(),
            "telemetry": self.feedback.describe(),
            "gate": self.gate.describe(),
            "completions": self.completer.counters.describe(with_prompt),
        }

    def stop(self) -> None:
        self.engines.stop()
        self.feedback.close(timeout=3.0)
