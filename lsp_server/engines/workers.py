"""The model worker threads of a server (or of one CLI command) and the engines they own.

A worker loads its engine on its own thread and then prepares it in the background (before any
other background work, after any completion request that arrives first). A server has one
worker for completions and, when explanations or reviews name another engine (a different local
model, or any server), one more per distinct engine, so a long explanation never waits in front
of a keystroke. Health changes of remote engines are told to the user once per change.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from hintwise.lsp_server.config import Settings
from hintwise.lsp_server.engines import adapter
from hintwise.lsp_server.engines.adapter import AdapterState
from hintwise.lsp_server.engines.choice import (
    FEATURES,
    EngineChoice,
    StatusCallback,
    choice_for,
    load_choice,
    local_settings,
    model_path,
)
from hintwise.models.engine import Engine, HealthReporter
from hintwise.models.files import adapters
from hintwise.models.worker import ModelWorker, Priority

Say = Callable[[str], None]


def submit_prepare(worker: ModelWorker) -> None:
    """Queue the engine's background preparation; it yields to requests and resumes after."""

    def prepare(engine, cancelled) -> bool:
        done = engine.prepare(cancelled)
        if not done:
            submit_prepare(worker)  # interrupted by a request: carry on once it is served
        return done

    worker.submit(prepare, Priority.WARM, key="prepare")


def start_worker(
    settings: Settings,
    notify: Say = lambda _: None,
    on_state: Callable[[str, str | None], None] | None = None,
    choice: EngineChoice | None = None,
    on_status: StatusCallback = lambda state, message: None,
    name: str = "hintwise-model",
) -> ModelWorker:
    """A started model worker that loads the engine for `choice` (default: the completion
    engine), then prepares it in the background."""
    choice = choice or choice_for(settings, "completion")
    worker = ModelWorker(
        lambda: load_choice(settings, choice, notify, on_status), on_state=on_state, name=name
    ).start()
    submit_prepare(worker)
    return worker


def _spec(settings: Settings, choice: EngineChoice) -> tuple:
    """What makes two engines the same: equal specs share one worker."""
    model = settings.model
    return (
        choice,
        settings.engine,
        model.context_length,
        model.threads,
        model.prompt_threads,
        model.gpu_layers,
        model.adapter,
        settings.data_dir,
    )


def _in_use(state: AdapterState) -> Path | None:
    return state.path if state.loaded else None


class EnginePool:
    """A server's workers: `completion` exists from the start (its thread starts with
    `apply`), the others come and go with the settings; `worker_for` hands out the right one."""

    def __init__(self, settings: Settings, tell: Say, warn: Say, error: Say, note: Say):
        self.settings = settings
        self._tell, self._warn, self._error, self._note = tell, warn, error, note
        self.state = "not started"
        self.error: str | None = None
        self.health: dict[str, dict] = {}
        self.features: dict[str, ModelWorker] = {}
        self._feature_specs: dict[str, tuple] = {}
        self._spec: tuple | None = None
        # The completion model's adapter: what became of it, and the stamp it was loaded at.
        self.adapter: AdapterState | None = None
        self._registry: Path | None = None
        self._adapter_stamp: tuple | None = None
        self._adapter_checked = -1e9
        self._adapter_told: set[str] = set()
        self.completion = ModelWorker(
            self._load_completion, on_state=self._completion_state, name="hintwise-model"
        )

    # -- starting and reloading ------------------------------------------------------------

    def apply(self, settings: Settings) -> None:
        """Start the workers, or reload the ones whose engine the settings changed."""
        self.settings = settings
        spec = _spec(settings, choice_for(settings, "completion"))
        if spec != self._spec:
            if self._spec is None:
                self.completion.start()
            else:
                self.completion.reload(self._load_completion)
            self._spec = spec
            submit_prepare(self.completion)
        self._apply_features()

    def _load_completion(self) -> Engine:
        """On the worker thread: the stamp is taken before the load, so an adapter installed
        while the model loads is picked up by the next check."""
        settings = self.settings
        choice = choice_for(settings, "completion")
        self._registry, self._adapter_stamp = None, None
        if choice.kind == "local":
            base = model_path(local_settings(settings, choice.model), self._tell)
            self._registry = adapters.model_dir(settings.data_path, base)
            self._adapter_stamp = adapter.stamp(settings.model.adapter, self._registry)
        else:
            self.adapter = None  # a server's model: no local adapter
        return load_choice(
            settings,
            choice,
            self._tell,
            self._status_callback("completion", choice),
            self._adapter_loaded,
        )

    def _adapter_loaded(self, state: AdapterState) -> None:
        """Say once what became of the adapter: a refused one (warning, with the fix), a new
        one or a revert picked up while running (a log line, no popup)."""
        previous, self.adapter = self.adapter, state
        model = Path(self.settings.model.path or self.settings.model.name).name
        if state.problem:
            message = state.message(model)
            if message not in self._adapter_told:
                self._adapter_told.add(message)
                self._warn(message)
        elif previous is not None and _in_use(previous) != _in_use(state):
            used = f"the adapter {state.path}" if state.path else "the base model, no adapter"
            run = f" (run {state.run_id}, installed by `hintwise tune`)" if state.run_id else ""
            self._note(f"hintwise: completions now use {used}{run}")

    def check_adapter(self) -> bool:
        """Reload the completion model when another adapter is wanted (`hintwise tune`
        installed or reverted one, or model.adapter's file changed). Called on the event loop
        for each completion and status request: at most one stat every CHECK_EVERY_S; the
        reload itself runs on the worker thread, and requests queued meanwhile are answered by
        the reloaded model."""
        now = time.monotonic()
        if now - self._adapter_checked < adapter.CHECK_EVERY_S or self._adapter_stamp is None:
            return False
        self._adapter_checked = now
        if self.completion.state != "ready":
            return False
        if adapter.stamp(self.settings.model.adapter, self._registry) == self._adapter_stamp:
            return False
        self._adapter_stamp = None  # one reload per change
        self.completion.reload(self._load_completion)
        submit_prepare(self.completion)
        return True

    def adapter_status(self) -> dict[str, Any] | None:
        """The completion model's adapter, for `hintwise/status` (None: a remote engine)."""
        return self.adapter.describe() if self.adapter is not None else None

    def _apply_features(self) -> None:
        completion_choice = choice_for(self.settings, "completion")
        wanted: dict[str, tuple] = {}
        for feature in ("explain", "review"):
            choice = choice_for(self.settings, feature)
            if choice.kind == "local" and choice == completion_choice:
                continue
            wanted[feature] = _spec(self.settings, choice)
        by_spec = {self._feature_specs[f]: w for f, w in self.features.items()}
        kept: dict[str, ModelWorker] = {}
        for feature, spec in wanted.items():
            worker = by_spec.get(spec) or next((kept[f] for f in kept if wanted[f] == spec), None)
            kept[feature] = worker or self._start_feature(feature, spec[0])
        for worker in set(self.features.values()):
            if worker not in kept.values():
                worker.stop(timeout=0.5)
        self.features = kept
        self._feature_specs = {feature: wanted[feature] for feature in kept}

    def _start_feature(self, feature: str, choice: EngineChoice) -> ModelWorker:
        def state_changed(state: str, detail: str | None) -> None:
            if state == "failed":
                self._error(
                    f"hintwise: no model for {feature}: {detail}. "
                    "Run `hintwise doctor` for details."
                )

        return start_worker(
            self.settings,
            self._tell,
            state_changed,
            choice,
            self._status_callback(feature, choice),
            name=f"hintwise-{feature}",
        )

    # -- using -----------------------------------------------------------------------------

    def worker_for(self, feature: str) -> ModelWorker:
        """The model worker serving a feature ("completion" | "explain" | "review"): its own
        when `explain_engine` / `review_engine` name another engine, else the completion one."""
        return self.features.get(feature, self.completion)

    def model_name(self, feature: str) -> str | None:
        """The name of the model a feature's answers come from (stored with them)."""
        engine = self.worker_for(feature).engine
        return engine.info.name if engine is not None else None

    def provenance(self) -> dict:
        """What produced a completion, stored with each suggestion."""
        settings, engine = self.settings, self.completion.engine
        completion = settings.completion
        values = {
            "model": settings.model_spec(),
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
        if self.adapter is not None and self.adapter.loaded:  # which tuning made this one
            values["adapter"] = self.adapter.run_id or str(self.adapter.path)
        return values

    def describe(self) -> dict:
        """Per feature: which engine, and for a server its health (up, down, slow, refused)."""
        result = {}
        for feature in FEATURES:
            engine = self.worker_for(feature).engine
            entry = {"engine": choice_for(self.settings, feature).label()}
            if isinstance(engine, HealthReporter):
                entry.update(engine.status())
            result[feature] = entry
        return result

    def stop(self) -> None:
        for worker in set(self.features.values()):
            worker.stop(timeout=1.0)
        self.completion.stop(timeout=2.0)

    # -- telling the user ------------------------------------------------------------------

    def _completion_state(self, state: str, detail: str | None) -> None:
        self.state, self.error = state, detail
        if state == "failed":
            self._error(f"hintwise: no completions: {detail}. Run `hintwise doctor` for details.")
        elif state == "ready" and self.completion.engine is not None:
            info = self.completion.engine.info
            lora = self.adapter
            with_adapter = f", adapter {lora.run_id or lora.path}" if lora and lora.loaded else ""
            self._note(
                f"hintwise: model {info.name} ready ({info.architecture}, "
                f"{'FIM ' + info.fim_family if info.fim_family else 'no FIM tokens'}"
                f"{with_adapter}, loaded in {info.load_ms:.0f} ms)"
            )

    def _status_callback(self, feature: str, choice: EngineChoice) -> StatusCallback:
        """Tell the user once when a server goes down, gets slow, refuses, or comes back."""

        def changed(state: str, message: str) -> None:
            previous = self.health.get(feature, {}).get("state")
            self.health[feature] = {"state": state, "message": message, "engine": choice.label()}
            used_by = "completions" if feature == "completion" else f"{feature} requests"
            if state == "ok":
                if previous not in (None, "ok"):
                    self._tell(f"hintwise: the inference server is back ({message}).")
                else:
                    self._note(f"hintwise: {used_by} use {choice.label()} ({message})")
            elif state == "refused":
                self._error(f"hintwise: {message}")
            else:
                self._warn(
                    f"hintwise: {message}. No {used_by} until it answers; "
                    "`hintwise doctor` checks the connection."
                )

        return changed
