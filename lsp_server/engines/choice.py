"""From settings to an engine: which GGUF (or which server), with which options, for which
feature.

Shared by the server, `hintwise complete` and `hintwise doctor` so all three run the same model
the same way. Completions use `engine.*` (+ `model.*` for a local GGUF); explanations and reviews
use the same engine unless `explain_engine.*` / `review_engine.*` name another one.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from hintwise.lsp_server.config import Settings
from hintwise.lsp_server.engines import adapter
from hintwise.lsp_server.engines.adapter import AdapterState
from hintwise.models.engine import Engine
from hintwise.models.errors import EngineUnavailable, ModelLoadError, ModelNotFound
from hintwise.models.files import bundled
from hintwise.models.http.engine import HttpEngine
from hintwise.models.http.options import HttpOptions
from hintwise.models.llama.engine import LlamaEngine

FEATURES = ("completion", "explain", "review")
StatusCallback = Callable[[str, str], None]


@dataclass(frozen=True)
class EngineChoice:
    """Which engine a feature runs on; equal choices share one engine and worker."""

    kind: str  # "local" or "http"
    model: str  # local: a bundled name or GGUF path; http: the server's model name
    url: str = ""

    def label(self) -> str:
        if self.kind == "http":
            return f"{self.model or 'default model'} at {self.url}"
        return Path(self.model).name if self.model.endswith(".gguf") else self.model


def choice_for(settings: Settings, feature: str) -> EngineChoice:
    """The engine `feature` ("completion", "explain" or "review") runs on."""
    if settings.engine.kind == "http":
        default = EngineChoice("http", settings.engine.model, settings.engine.url)
    else:
        default = EngineChoice("local", settings.model.path or settings.model.name)
    if feature == "completion":
        return default
    override = settings.explain_engine if feature == "explain" else settings.review_engine
    if not override.kind:
        return default
    if override.kind == "http":
        return EngineChoice(
            "http",
            override.model or (settings.engine.model if not override.url else ""),
            override.url or settings.engine.url,
        )
    return EngineChoice("local", override.model or settings.model.path or settings.model.name)


def api_key(settings: Settings) -> str | None:
    """The API key from `engine.api_key_file`, else the variable `engine.api_key_env`."""
    engine = settings.engine
    if engine.api_key_file:
        path = Path(engine.api_key_file).expanduser()
        try:
            lines = path.read_text(encoding="utf-8").strip().splitlines()
        except OSError as error:
            raise EngineUnavailable(
                f"cannot read the API key file {path} (engine.api_key_file): "
                f"{error.strerror or error}"
            ) from None
        return lines[0].strip() if lines else None
    value = os.environ.get(engine.api_key_env, "").strip() if engine.api_key_env else ""
    return value or None


def http_options(settings: Settings, choice: EngineChoice) -> HttpOptions:
    engine = settings.engine
    return HttpOptions(
        url=choice.url,
        model=choice.model,
        api_key=api_key(settings),
        connect_timeout_s=engine.connect_timeout_ms / 1000,
        read_timeout_s=engine.timeout_ms / 1000,
        retries=engine.retries,
        verify_tls=engine.verify_tls,
        ca_file=str(Path(engine.ca_file).expanduser()) if engine.ca_file else "",
        kind=engine.server,
        logprobs=engine.logprobs,
    )


def model_path(settings: Settings, notify: Callable[[str], None] = lambda _: None) -> Path:
    """The GGUF file the settings select, assembling the bundled model on first use."""
    if settings.model.path:
        path = Path(settings.model.path).expanduser()
        pulled = settings.models_path / path.name
        if not path.exists() and path.name == settings.model.path and pulled.exists():
            path = pulled  # a bare file name: one `hintwise models pull` saved
        if not path.exists():
            raise ModelNotFound(
                f"model.path points at {path}, which does not exist. Set model.path (or "
                "HINTWISE_MODEL) to a .gguf file, or clear it to use the bundled model."
            )
        return path
    return bundled.resolve(settings.model.name, settings.models_path, notify)


def local_settings(settings: Settings, model: str) -> Settings:
    """`settings` with `model` (a bundled name or a GGUF path) as the local model."""
    if bundled.is_bundled_name(model):
        return dataclasses.replace(
            settings, model=dataclasses.replace(settings.model, name=model, path="")
        )
    return dataclasses.replace(settings, model=dataclasses.replace(settings.model, path=model))


def load_choice(
    settings: Settings,
    choice: EngineChoice,
    notify: Callable[[str], None] = lambda _: None,
    on_status: StatusCallback = lambda state, message: None,
    on_adapter: Callable[[AdapterState], None] | None = None,
) -> Engine:
    """Load the engine `choice` names. A server that is down does not fail the load (the
    engine keeps trying, and reports through `on_status`); a bad setting does."""
    if choice.kind == "http":
        return HttpEngine(http_options(settings, choice), on_status=on_status)
    return load_engine(local_settings(settings, choice.model), notify, on_adapter)


def adapter_path(settings: Settings, base: Path, notify: Callable[[str], None]) -> Path | None:
    """The GGUF LoRA `model.adapter` selects for `base`: the installed one by default, none
    for `none`, else the path given. One that cannot be used is reported and skipped: the
    base model still serves."""
    state = adapter.pick(settings.model.adapter, settings.data_path, base)
    if state.problem:
        notify(state.message(base.name))
        return None
    return state.path


def _open(settings: Settings, path: Path, lora: Path | None) -> LlamaEngine:
    return LlamaEngine(
        path,
        name=settings.model.name if not settings.model.path else path.name,
        n_ctx=settings.model.context_length,
        threads=settings.model.threads,
        prompt_threads=settings.model.prompt_threads,
        gpu_layers=settings.model.gpu_layers,
        adapter=lora,
    )


def load_engine(
    settings: Settings,
    notify: Callable[[str], None] = lambda _: None,
    on_adapter: Callable[[AdapterState], None] | None = None,
) -> LlamaEngine:
    """Load the configured local model; raises ModelNotFound or ModelLoadError with a user
    message. An adapter llama.cpp refuses leaves the base model loaded: `on_adapter` gets
    what became of the adapter (without it, a problem goes to `notify`)."""
    path = model_path(settings, notify)
    state = adapter.pick(settings.model.adapter, settings.data_path, path)
    try:
        try:
            engine = _open(settings, path, None if state.problem else state.path)
            state = adapter.loaded(state)
        except ModelLoadError as error:
            if state.path is None or state.problem:
                raise
            state = adapter.refused(state, str(error).split(f"to {path.name}: ", 1)[-1])
            engine = _open(settings, path, None)
    except ModelLoadError as error:
        raise ModelLoadError(f"cannot load the model {path}: {error}") from None
    if on_adapter is not None:
        on_adapter(state)
    elif state.problem:
        notify(state.message(path.name))
    return engine
