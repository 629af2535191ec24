"""The one thread that owns a model: a priority queue of jobs, supersession and cancellation.

llama.cpp contexts are not thread-safe and inference holds the CPU for hundreds of
milliseconds, so every call into an engine runs here and the asyncio loop only awaits futures.
Interactive completions go first; lower-priority work (prompt warming now, reviews and
explanations later) yields between prompt chunks as soon as a more urgent job is waiting. A job
submitted with the same key as an older one (one key per document) cancels the older one,
queued or running: a running one stops between two tokens and frees the CPU.
"""

from __future__ import annotations

import concurrent.futures
import heapq
import itertools
import logging
import threading
import time
from collections.abc import Callable
from enum import IntEnum
from typing import Any

from hintwise.models.engine import Engine
from hintwise.models.errors import ModelUnavailable

log = logging.getLogger(__name__)


class Priority(IntEnum):
    INTERACTIVE = 0
    WARM = 1
    BACKGROUND = 2


JobFunction = Callable[[Engine, Callable[[], bool]], Any]


class Job:
    """One unit of work for the model thread, with its result future and cancel flag."""

    def __init__(self, function: JobFunction, priority: Priority, key: str | None):
        self.function = function
        self.priority = priority
        self.key = key
        self.future: concurrent.futures.Future[Any] = concurrent.futures.Future()
        self.cancel_event = threading.Event()
        self.started = False
        self.submitted_at = time.perf_counter()
        self.started_at: float | None = None
        self.finished_at: float | None = None
        self.cancelled_at: float | None = None
        self.generated_at_cancel: int | None = None


class ModelWorker:
    """Loads an engine on its own thread, then runs submitted jobs by priority."""

    def __init__(
        self,
        loader: Callable[[], Engine],
        on_state: Callable[[str, str | None], None] | None = None,
        name: str = "hintwise-model",
    ):
        self._loader = loader
        self._on_state = on_state or (lambda state, detail: None)
        self._queue: list[tuple[int, int, Job]] = []
        self._counter = itertools.count()
        self._lock = threading.Lock()
        self._wakeup = threading.Condition(self._lock)
        self._running: Job | None = None
        self._stopping = False
        self._ready = threading.Event()
        self.engine: Engine | None = None
        self.state = "loading"
        self.error: str | None = None
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)

    def start(self) -> ModelWorker:
        self._thread.start()
        return self

    # -- submitting ------------------------------------------------------------------------

    def submit(
        self,
        function: JobFunction,
        priority: Priority = Priority.INTERACTIVE,
        key: str | None = None,
    ) -> Job:
        job = Job(function, priority, key)
        with self._lock:
            if self.state == "failed":
                job.future.set_exception(ModelUnavailable(self.error or "no model loaded"))
                return job
            if key is not None:
                self._cancel_key_locked(key)
            heapq.heappush(self._queue, (int(priority), next(self._counter), job))
            self._wakeup.notify()
        return job

    def cancel(self, job: Job) -> None:
        with self._lock:
            self._cancel_locked(job)

    def cancel_key(self, key: str) -> None:
        """Cancel every queued or running job submitted with `key`."""
        with self._lock:
            self._cancel_key_locked(key)

    def _cancel_locked(self, job: Job) -> None:
        if job.cancel_event.is_set():
            return
        job.cancel_event.set()
        job.cancelled_at = time.perf_counter()
        if job.started and self.engine is not None:
            job.generated_at_cancel = self.engine.live_generated
        elif not job.started:
            job.future.cancel()

    def _cancel_key_locked(self, key: str) -> None:
        if self._running is not None and self._running.key == key:
            self._cancel_locked(self._running)
        for _, _, queued in self._queue:
            if queued.key == key:
                self._cancel_locked(queued)

    def _urgent_waiting(self, priority: Priority) -> bool:
        """True when a more urgent job is queued (checked between chunks by lower priorities)."""
        queue = self._queue
        return bool(queue) and queue[0][0] < priority and not queue[0][2].cancel_event.is_set()

    # -- state -----------------------------------------------------------------------------

    def wait_ready(self, timeout: float | None = None) -> bool:
        """Wait for the load to finish (either way); True when a model is ready."""
        self._ready.wait(timeout)
        return self.state == "ready"

    def reload(self, loader: Callable[[], Engine]) -> None:
        """Replace the model (a settings change): queued jobs run on the new one."""
        with self._lock:
            self._loader = loader
            self.state, self.error = "loading", None
            self._ready.clear()
            if self._running is not None:
                self._cancel_locked(self._running)
            heapq.heappush(self._queue, (-1, next(self._counter), _RELOAD))
            self._wakeup.notify()

    def stop(self, timeout: float = 5.0) -> None:
        with self._lock:
            self._stopping = True
            if self._running is not None:
                self._cancel_locked(self._running)
            for _, _, job in self._queue:
                self._cancel_locked(job)
            self._queue.clear()
            self._wakeup.notify()
        if self._thread.is_alive() and threading.current_thread() is not self._thread:
            self._thread.join(timeout)

    # -- the thread ------------------------------------------------------------------------

    def _load(self) -> None:
        self._on_state("loading", None)
        if self.engine is not None:
            self.engine.close()
            self.engine = None
        try:
            engine = self._loader()
        except Exception as error:  # any loader failure must leave the server running
            log.warning("model load failed: %s", error)
            with self._lock:
                self.state, self.error = "failed", str(error)
                failed = [job for _, _, job in self._queue if job is not _RELOAD]
                self._queue = [entry for entry in self._queue if entry[2] is _RELOAD]
            for job in failed:
                if not job.future.done():
                    job.future.set_exception(ModelUnavailable(str(error)))
            self._ready.set()
            self._on_state("failed", str(error))
            return
        with self._lock:
            self.engine, self.state, self.error = engine, "ready", None
        self._ready.set()
        self._on_state("ready", None)

    def _run(self) -> None:
        self._load()
        while True:
            with self._lock:
                while not self._queue and not self._stopping:
                    self._wakeup.wait()
                if self._stopping:
                    break
                _, _, job = heapq.heappop(self._queue)
                if job is _RELOAD:
                    self._running = None
                else:
                    if job.cancel_event.is_set() or not job.future.set_running_or_notify_cancel():
                        continue
                    job.started = True
                    job.started_at = time.perf_counter()
                    self._running = job
            if job is _RELOAD:
                self._load()
                continue
            self._execute(job)
        if self.engine is not None:
            self.engine.close()

    def _execute(self, job: Job) -> None:
        engine = self.engine
        try:
            if engine is None:
                raise ModelUnavailable(self.error or "no model loaded")

            def cancelled() -> bool:
                return job.cancel_event.is_set() or (
                    job.priority > Priority.INTERACTIVE and self._urgent_waiting(job.priority)
                )

            result = job.function(engine, cancelled)
        except BaseException as error:  # reported through the future, never kills the thread
            job.finished_at = time.perf_counter()
            job.future.set_exception(error)
        else:
            job.finished_at = time.perf_counter()
            job.future.set_result(result)
        finally:
            with self._lock:
                self._running = None


_RELOAD = Job(lambda engine, cancelled: None, Priority.INTERACTIVE, None)
