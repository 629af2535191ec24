"""Queueing logic of the model worker, with a stand-in engine (no inference here: the real
engine's cancellation is tested in test_engine.py and end to end in test_server.py)."""

from __future__ import annotations

import threading
import time

import pytest

from hintwise.models.errors import ModelUnavailable
from hintwise.models.worker import ModelWorker, Priority


class CountingEngine:
    """Counts to a limit, one step per millisecond, checking cancellation between steps."""

    def __init__(self):
        self.live_generated = 0
        self.closed = False

    def run(self, steps: int, cancelled) -> int:
        self.live_generated = 0
        for _ in range(steps):
            if cancelled():
                break
            time.sleep(0.001)
            self.live_generated += 1
        return self.live_generated

    def close(self):
        self.closed = True


def test_a_newer_job_with_the_same_key_cancels_the_running_one():
    worker = ModelWorker(CountingEngine).start()
    assert worker.wait_ready(5)
    first = worker.submit(lambda e, c: e.run(5000, c), key="doc")
    time.sleep(0.05)
    second = worker.submit(lambda e, c: e.run(10, c), key="doc")
    assert first.future.result(5) < 5000
    assert second.future.result(5) == 10
    assert first.generated_at_cancel is not None
    assert first.future.result() - first.generated_at_cancel <= 1
    worker.stop()


def test_queued_jobs_with_the_same_key_are_dropped():
    worker = ModelWorker(CountingEngine).start()
    worker.wait_ready(5)
    blocker = worker.submit(lambda e, c: e.run(200, c), key="other")
    stale = worker.submit(lambda e, c: e.run(10, c), key="doc")
    fresh = worker.submit(lambda e, c: e.run(10, c), key="doc")
    assert fresh.future.result(5) == 10
    assert stale.future.cancelled()
    assert blocker.future.result(5) == 200
    worker.stop()


def test_warm_work_yields_to_an_interactive_request():
    worker = ModelWorker(CountingEngine).start()
    worker.wait_ready(5)
    warm = worker.submit(lambda e, c: e.run(5000, c), Priority.WARM, key="warm:doc")
    time.sleep(0.05)
    started = time.perf_counter()
    urgent = worker.submit(lambda e, c: e.run(5, c), Priority.INTERACTIVE, key="doc")
    assert urgent.future.result(5) == 5
    assert time.perf_counter() - started < 0.5
    assert warm.future.result(5) < 5000
    worker.stop()


def test_a_failed_load_fails_jobs_fast_and_a_reload_recovers():
    def broken():
        raise FileNotFoundError("no model at /nowhere.gguf")

    states: list[str] = []
    worker = ModelWorker(broken, on_state=lambda s, d: states.append(s)).start()
    assert not worker.wait_ready(5)
    assert worker.state == "failed" and "nowhere" in worker.error
    with pytest.raises(ModelUnavailable, match="nowhere"):
        worker.submit(lambda e, c: 1).future.result(1)
    worker.reload(CountingEngine)
    assert worker.wait_ready(5)
    assert worker.submit(lambda e, c: e.run(3, c)).future.result(5) == 3
    assert states == ["loading", "failed", "loading", "ready"]
    worker.stop()


def test_an_exception_in_a_job_does_not_kill_the_thread():
    worker = ModelWorker(CountingEngine).start()
    worker.wait_ready(5)
    with pytest.raises(ZeroDivisionError):
        worker.submit(lambda e, c: 1 / 0).future.result(5)
    assert worker.submit(lambda e, c: "alive").future.result(5) == "alive"
    worker.stop()


def test_stop_cancels_the_running_job_and_closes_the_engine():
    worker = ModelWorker(CountingEngine).start()
    worker.wait_ready(5)
    job = worker.submit(lambda e, c: e.run(100_000, c))
    time.sleep(0.02)
    engine = worker.engine
    worker.stop(timeout=5)
    assert job.future.result(5) < 100_000
    assert engine.closed
    assert not any(t.name == "hintwise-model" and t.is_alive() for t in threading.enumerate())
