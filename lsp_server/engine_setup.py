"""From settings to a loaded engine: which GGUF, prepared where, with which llama.cpp options.

Shared by the server, `hintwise complete` and `hintwise doctor` so all three run the same model
the same way.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from lsp_server.config import Settings
from models import bundled
from models.llama_engine import LlamaEngine, ModelLoadError
from models.worker import ModelWorker, Priority


def model_path(settings: Settings, notify: Callable[[str], None] = lambda _: None) -> Path:
    """The GGUF file the settings select, assembling the bundled model on first use."""
    if settings.model.path:
        path = Path(settings.model.path).expanduser()
        pulled = settings.models_path / path.name
        if not path.exists() and path.name == settings.model.path and pulled.exists():
            path = pulled  # a bare file name: one `hintwise models pull` saved
        if not path.exists():
            raise bundled.ModelNotFound(
                f"model.path points at {path}, which does not exist. Set model.path (or "
                "HINTWISE_MODEL) to a .gguf file, or clear it to use the bundled model."
            )
        return path
    return bundled.resolve(settings.model.name, settings.models_path, notify)


def load_engine(settings: Settings, notify: Callable[[str], None] = lambda _: None) -> LlamaEngine:
    """Load the configured model; raises ModelNotFound or ModelLoadError with a user message."""
    path = model_path(settings, notify)
    name = settings.model.name if not settings.model.path else path.name
    try:
        return LlamaEngine(
            path,
            name=name,
            n_ctx=settings.model.context_length,
            threads=settings.model.threads,
            gpu_layers=settings.model.gpu_layers,
        )
    except ModelLoadError as error:
        raise ModelLoadError(f"cannot load the model {path}: {error}") from None


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
    notify: Callable[[str], None] = lambda _: None,
    on_state: Callable[[str, str | None], None] | None = None,
) -> ModelWorker:
    """A model worker thread that loads the configured model, then prepares it in the background
    (before any other background work, after any completion request that arrives first)."""
    worker = ModelWorker(lambda: load_engine(settings, notify), on_state=on_state).start()
    submit_prepare(worker)
    return worker
