"""Reviews and explanations on the model thread, after completions.

Work runs as BACKGROUND jobs on a model worker, so a completion always goes first: when one
arrives, the job's `cancelled()` turns true, the work stops between two tokens, and
`run_background` queues the rest again behind the completion (the generation context keeps the
evaluated prompt, so little is lost). The caller's `stop()` ends it for good (the document
changed, say).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

from hintwise.models.worker import ModelWorker, Priority


class Cancelled(Exception):
    """The work was cancelled (document changed, superseded, server stopping)."""


async def run_background(
    worker: ModelWorker,
    step: Callable[[Any, Callable[[], bool]], tuple[Any, bool]],
    key: str,
    stop: Callable[[], bool] = lambda: False,
) -> Any:
    """Run `step(engine, cancelled) -> (result, finished)` as BACKGROUND work until it
    finishes, giving way to completions in between (an unfinished step is queued again behind
    them); the finished step's result.

    Raises Cancelled when the job was cancelled by key or `stop()` turned true.
    """
    while True:
        if stop():
            raise Cancelled()

        def job(engine, cancelled, step=step):
            return step(engine, lambda: cancelled() or stop())

        submitted = worker.submit(job, Priority.BACKGROUND, key=key)
        try:
            partial, finished = await asyncio.wrap_future(submitted.future)
        except asyncio.CancelledError:
            if submitted.cancel_event.is_set():
                raise Cancelled() from None
            raise
        if finished:
            return partial
        if submitted.cancel_event.is_set() or stop():
            raise Cancelled()
        await asyncio.sleep(0)  # let the completion that pre-empted us be answered
