"""The language server: state shared by the feature handlers, and how it is assembled.

Handlers live in `lsp_server/features/`, one module per concern, each a thin layer over plain
functions. This module holds what they share: settings, open documents, the model worker, the
completer, and messages to the user.
"""

from __future__ import annotations

import asyncio
import logging
import os
from pathlib import Path

from lsprotocol import types
from pygls.lsp.server import LanguageServer
from pygls.protocol import LanguageServerProtocol, lsp_method

from hintwise import __version__
from hintwise.lsp_server import config, engine_setup
from hintwise.lsp_server.clock import Clock, LoopClock, ManualClock, Timer
from hintwise.lsp_server.completion import Completer
from hintwise.lsp_server.documents import DocumentStore
from hintwise.lsp_server.feedback import FeedbackTracker
from hintwise.lsp_server.gate import Gatekeeper
from hintwise.lsp_server.gate_retrain import Retrainer
from hintwise.lsp_server.reviewer import Insights
from hintwise.models.worker import ModelWorker
from hintwise.telemetry import NullWriter, Privacy, Writer, default_path, purge

log = logging.getLogger("hintwise")


class HintwiseProtocol(LanguageServerProtocol):
    """pygls' protocol without pygls' own copy of each document.

    pygls splits lines with `str.splitlines`, which also breaks at form feeds and U+2028 (LSP
    does not), so its copy goes wrong on such files; it also re-walks the whole document in
    Python on every keystroke. hintwise keeps its own copy (lsp_server.documents); these
    overrides hand document notifications straight to hintwise's handlers.
    """

    def _handler(self, method: str):
        return self.fm.features.get(method)

    @lsp_method(types.TEXT_DOCUMENT_DID_OPEN)
    def lsp_text_document__did_open(self, params: types.DidOpenTextDocumentParams):
        if (handler := self._handler(types.TEXT_DOCUMENT_DID_OPEN)) is not None:
            yield handler, (params,), None

    @lsp_method(types.TEXT_DOCUMENT_DID_CHANGE)
    def lsp_text_document__did_change(self, params: types.DidChangeTextDocumentParams):
        if (handler := self._handler(types.TEXT_DOCUMENT_DID_CHANGE)) is not None:
            yield handler, (params,), None

    @lsp_method(types.TEXT_DOCUMENT_DID_CLOSE)
    def lsp_text_document__did_close(self, params: types.DidCloseTextDocumentParams):
        if (handler := self._handler(types.TEXT_DOCUMENT_DID_CLOSE)) is not None:
            yield handler, (params,), None


class HintwiseServer(LanguageServer):
    """Shared state of one server process."""

    def __init__(self, settings: config.Settings | None = None, overrides: dict | None = None):
        super().__init__("hintwise", __version__, protocol_cls=HintwiseProtocol)
        self.overrides = overrides or {}
        base = settings or config.from_environment()
        self.settings, problems = config.apply(base, self.overrides)
        self.startup_problems = problems
        self.documents = DocumentStore()
        self.writer: Writer | NullWriter = NullWriter()
        self.feedback: FeedbackTracker | None = None
        self.clock: Clock | None = None
        self._telemetry_spec: tuple | None = None
        self.worker: ModelWorker | None = None
        # Explanations and reviews on an engine of their own (see `worker_for`), by choice.
        self.feature_workers: dict[str, ModelWorker] = {}
        self._feature_specs: dict[str, tuple] = {}
        self.engine_health: dict[str, dict] = {}
        self.completer: Completer | None = None
        self.gate: Gatekeeper | None = None
        self.retrainer: Retrainer | None = None
        self.loop: asyncio.AbstractEventLoop | None = None
        self.model_state = "not started"
        self.model_error: str | None = None
        self.last_change: dict[str, float] = {}
        self.cursor_timers: dict[str, Timer] = {}
        self._model_spec: tuple | None = None
        self.insights = Insights()

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

    def _on_loop(self, callback) -> None:
        loop = self.loop
        if loop is None or loop.is_closed():
            return
        try:
            running = asyncio.get_running_loop()
        except RuntimeError:
            running = None
        if running is loop:
            callback()
        else:
            loop.call_soon_threadsafe(callback)

    # -- settings and model ----------------------------------------------------------------

    def update_settings(self, values: dict) -> None:
        """Apply client settings (CLI flags still win) and reload the model if it changed."""
        merged = {**config.flatten(values), **config.flatten(self.overrides)}
        settings, problems = config.apply(config.from_environment(), merged)
        for problem in problems:
            self.tell(f"hintwise: ignoring a setting: {problem}", types.MessageType.Warning)
        self.settings = settings
        self.start_model()
        self.start_telemetry()
        self.start_gate()

    def _spec(self, choice: engine_setup.EngineChoice | None = None) -> tuple:
        s = self.settings
        return (
            choice or engine_setup.choice_for(s, "completion"),
            s.engine,
            s.model.context_length,
            s.model.threads,
            s.model.gpu_layers,
            s.data_dir,
        )

    def start_model(self) -> None:
        """Start the model worker, or reload it when the model settings changed; then the
        workers of explanations and reviews, if they have engines of their own."""
        spec = self._spec()
        if spec != self._model_spec:
            self._model_spec = spec
            settings = self.settings
            choice = engine_setup.choice_for(settings, "completion")
            on_status = self._engine_status_callback("completion", choice)
            if self.worker is None:
                self.worker = engine_setup.start_worker(
                    settings, self.tell, self._model_state_changed, choice, on_status
                )
                self.completer = Completer(self.worker, settings.model_label())
            else:
                self.worker.reload(
                    lambda: engine_setup.load_choice(settings, choice, self.tell, on_status)
                )
                engine_setup.submit_prepare(self.worker)
                if self.completer is not None:
                    self.completer.model_name = settings.model_label()
        self._start_feature_workers()

    def _start_feature_workers(self) -> None:
        """One worker per distinct engine that explanations or reviews use apart from the
        completion worker: a different local model, or any server (so a long explanation
        never waits in front of a keystroke; the server runs both at once)."""
        completion_choice = engine_setup.choice_for(self.settings, "completion")
        wanted: dict[str, tuple] = {}
        for feature in ("explain", "review"):
            choice = engine_setup.choice_for(self.settings, feature)
            if choice.kind == "local" and choice == completion_choice:
                continue
            wanted[feature] = self._spec(choice)
        by_spec = {self._feature_specs[f]: w for f, w in self.feature_workers.items()}
        kept: dict[str, ModelWorker] = {}
        for feature, spec in wanted.items():
            worker = by_spec.get(spec) or next((kept[f] for f in kept if wanted[f] == spec), None)
            if worker is None:
                choice = spec[0]
                worker = engine_setup.start_worker(
                    self.settings,
                    self.tell,
                    lambda state, detail, f=feature: self._feature_state_changed(f, state, detail),
                    choice,
                    self._engine_status_callback(feature, choice),
                    name=f"hintwise-{feature}",
                )
            kept[feature] = worker
        for worker in set(self.feature_workers.values()):
            if worker not in kept.values():
                worker.stop(timeout=0.5)
        self.feature_workers = kept
        self._feature_specs = {feature: wanted[feature] for feature in kept}

    def worker_for(self, feature: str) -> ModelWorker:
        """The model worker serving a feature ("completion" | "explain" | "review"): its own
        when `explain_engine` / `review_engine` name another engine, else the completion
        worker. Raises ModelUnavailable when no model was started."""
        worker = self.feature_workers.get(feature, self.worker)
        if worker is None:
            from hintwise.models.errors import ModelUnavailable

            raise ModelUnavailable("the model has not been started")
        return worker

    def _engine_status_callback(self, feature: str, choice: engine_setup.EngineChoice):
        """Tell the user once when a server goes down, gets slow, refuses, or comes back."""

        def changed(state: str, message: str) -> None:
            previous = self.engine_health.get(feature, {}).get("state")
            self.engine_health[feature] = {
                "state": state,
                "message": message,
                "engine": choice.label(),
            }
            used_by = "completions" if feature == "completion" else f"{feature} requests"
            if state == "ok":
                if previous not in (None, "ok"):
                    self.tell(f"hintwise: the inference server is back ({message}).")
                else:
                    self.note(f"hintwise: {used_by} use {choice.label()} ({message})")
            elif state == "refused":
                self.tell(f"hintwise: {message}", types.MessageType.Error)
            else:
                self.tell(
                    f"hintwise: {message}. No {used_by} until it answers; "
                    "`hintwise doctor` checks the connection.",
                    types.MessageType.Warning,
                )

        return changed

    def _feature_state_changed(self, feature: str, state: str, detail: str | None) -> None:
        if state == "failed":
            self.tell(
                f"hintwise: no model for {feature}: {detail}. Run `hintwise doctor` for details.",
                types.MessageType.Error,
            )

    def _model_state_changed(self, state: str, detail: str | None) -> None:
        self.model_state, self.model_error = state, detail
        if state == "failed":
            self.tell(
                f"hintwise: no completions: {detail}. Run `hintwise doctor` for details.",
                types.MessageType.Error,
            )
        elif state == "ready" and self.worker is not None and self.worker.engine is not None:
            info = self.worker.engine.info
            self.note(
                f"hintwise: model {info.name} ready ({info.architecture}, "
                f"{'FIM ' + info.fim_family if info.fim_family else 'no FIM tokens'}, "
                f"loaded in {info.load_ms:.0f} ms)"
            )

    # -- telemetry -----------------------------------------------------------------------------

    def start_telemetry(self) -> None:
        """Open (or reopen, after a settings change) the local feedback store."""
        telemetry = self.settings.telemetry
        spec = (telemetry.enabled, telemetry.store_code, self.settings.data_dir)
        if spec == self._telemetry_spec and self.feedback is not None:
            self.feedback.reject_after_s = telemetry.reject_after_s
            return
        self._telemetry_spec = spec
        self.writer.close(timeout=2.0)
        if telemetry.enabled:
            path = default_path(self.settings.data_path)
            self.writer = Writer.start(
                path,
                privacy=Privacy(telemetry.store_code),
                on_problem=lambda message: self.tell(
                    f"hintwise: feedback is not being recorded: {message}",
                    types.MessageType.Warning,
                ),
                on_ready=self._retention,
            )
        else:
            self.writer = NullWriter()
        if self.clock is None:
            self.clock = (
                ManualClock()
                if os.environ.get("HINTWISE_TEST_CLOCK") == "1"
                else (LoopClock(self.loop or asyncio.get_event_loop()))
            )
        if self.feedback is None:
            self.feedback = FeedbackTracker(
                self.writer,
                self.clock,
                telemetry.reject_after_s,
                on_rejected=self._retire,
                on_answered=self._answered,
            )
        else:
            self.feedback.writer = self.writer
            self.feedback.reject_after_s = telemetry.reject_after_s

    # -- acceptance gate -------------------------------------------------------------------------

    def start_gate(self) -> None:
        """Load the acceptance gate (once the clock exists) and hand it to the completer."""
        if self.gate is None:
            self.gate = Gatekeeper(
                self.settings.gate,
                self.settings.data_path,
                now=lambda: self.clock.now() if self.clock is not None else 0.0,
                tell=lambda message: self.tell(message, types.MessageType.Warning),
            )
        else:
            self.gate.update(self.settings.gate, self.settings.data_path)
        if self.completer is not None:
            self.completer.gate = self.gate
        if self.retrainer is None:
            self.retrainer = Retrainer(self)

    def _answered(self, outcome: str) -> None:
        """An outcome for a shown suggestion: the gate's session history, and retraining."""
        if self.gate is not None and self.clock is not None:
            self.gate.session.answered(outcome, self.clock.now())
        if self.retrainer is not None:
            self.retrainer.answered()

    def _retire(self, suggestion_id: str) -> None:
        if self.completer is not None:
            self.completer.cache.retire(suggestion_id)

    def _retention(self, connection) -> None:
        """Delete what the retention settings no longer keep (runs on the writer's thread)."""
        telemetry = self.settings.telemetry
        if telemetry.retention_days or telemetry.retention_rows:
            purged = purge(
                connection,
                keep_days=telemetry.retention_days or None,
                keep_rows=telemetry.retention_rows or None,
            )
            log.info("telemetry retention: %s", purged)

    def engine_settings(self) -> dict:
        """What produced a suggestion, stored with it."""
        engine = self.worker.engine if self.worker is not None else None
        completion = self.settings.completion
        values = {
            "model": self.settings.model_spec(),
            "max_tokens": completion.max_tokens,
            "prefix_tokens": completion.prefix_tokens,
            "suffix_tokens": completion.suffix_tokens,
            "token_healing": completion.token_healing,
            "multiline": completion.multiline,
            "greedy": True,
        }
        if engine is not None:
            values.update(
                model_file=Path(engine.info.path).name,
                threads=engine.info.threads,
                n_ctx=engine.info.n_ctx,
                fim=engine.info.fim_family,
            )
        return values

    def stop(self) -> None:
        for worker in set(self.feature_workers.values()):
            worker.stop(timeout=1.0)
        if self.worker is not None:
            self.worker.stop(timeout=2.0)
        self.writer.close(timeout=3.0)


def create_server(
    settings: config.Settings | None = None, overrides: dict | None = None
) -> HintwiseServer:
    """A server with every feature registered."""
    from hintwise.lsp_server.features import (
        completion,
        documents,
        editor,
        explain,
        feedback,
        lifecycle,
        review,
    )

    server = HintwiseServer(settings, overrides)
    lifecycle.register(server)
    documents.register(server)
    completion.register(server)
    feedback.register(server)
    review.register(server)
    explain.register(server)
    editor.register(server)
    return server
