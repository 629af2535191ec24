"""Background work on the model thread: it gives way to completions, resumes, and stops when
cancelled. Queueing logic only, so a stand-in engine is enough here; the real model's behaviour
is tested end to end in test_review_e2e.py."""

from __future__ import annotations

import asyncio
import threading
import time

import pytest

from hintwise.lsp_server.engines.background import Cancelled, run_background
from hintwise.models.worker import ModelWorker, Priority


class Engine:
    info = None
    live_generated = 0  # the worker reads it when it cancels a running job (models.engine.Engine)
    prepared = True

    def prepare(self, cancelled=lambda: False) -> bool:
        return True

    def close(self) -> None:
        pass


def slow_step(log: list, done_after: int):
    """A step that 'generates' in 10 ms slices and stops when cancelled; finished once it has
    run `done_after` slices in total."""

    def step(engine, cancelled):
        while len(log) < done_after:
            if cancelled():
                return None, False
            time.sleep(0.01)
            log.append("slice")
        return "result", True

    return step


async def test_a_completion_goes_first_and_the_review_resumes():
    worker = ModelWorker(Engine).start()
    worker.wait_ready(5)
    log: list = []
    task = asyncio.ensure_future(run_background(worker, slow_step(log, 40), "review:a"))
    await asyncio.sleep(0.1)
    started = time.perf_counter()
    completion = worker.submit(lambda engine, cancelled: "completion", Priority.INTERACTIVE)
    assert await asyncio.wrap_future(completion.future) == "completion"
    waited = time.perf_counter() - started
    assert waited < 0.1, waited  # at most one slice, not the whole review
    assert len(log) < 40
    assert await asyncio.wait_for(task, 10) == "result"
    worker.stop()


async def test_cancel_by_key_and_stop_condition_raise_cancelled():
    worker = ModelWorker(Engine).start()
    worker.wait_ready(5)
    task = asyncio.ensure_future(run_background(worker, slow_step([], 1000), "review:b"))
    await asyncio.sleep(0.05)
    worker.cancel_key("review:b")  # what a newer review of the same file does
    with pytest.raises(Cancelled):
        await asyncio.wait_for(task, 5)
    changed = threading.Event()
    task = asyncio.ensure_future(
        run_background(worker, slow_step([], 1000), "review:c", stop=changed.is_set)
    )
    await asyncio.sleep(0.05)
    changed.set()  # the document changed
    with pytest.raises(Cancelled):
        await asyncio.wait_for(task, 5)
    worker.stop()
