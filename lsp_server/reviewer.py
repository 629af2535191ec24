"""The server's reviews and explanations: running them on the model thread, and what they left.

Work runs as BACKGROUND jobs on the model worker, so a completion always goes first: when one
arrives, the job's `cancelled()` turns true, the review stops between two tokens, and
`run_background` queues the rest again behind the completion (the generation context keeps the
evaluated prompt, so little is lost). A review also stops when its document changes again.

State kept per document: the digest of every unit at its last review and the comments of each
unit (lines relative to the unit, so comments of unchanged units follow them when code above
moves); and, by id, every published comment and computed explanation, for the code actions,
hover and feedback commands.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from hintwise.lsp_server.explain import Explanation
from hintwise.lsp_server.review import Comment, Unit, UnitReview, cap_file
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


@dataclass
class FileReviews:
    """One document's review state."""

    digests: dict[str, str] = field(default_factory=dict)  # unit key → digest when reviewed
    comments: dict[str, list[tuple[int, Comment]]] = field(
        default_factory=dict
    )  # unit → (offset, c)

    def forget_missing(self, units: list[Unit]) -> None:
        keys = {unit.key for unit in units}
        for key in list(self.comments):
            if key not in keys:
                del self.comments[key]
                self.digests.pop(key, None)

    def store(self, review: UnitReview) -> None:
        unit = review.unit
        self.digests[unit.key] = unit.digest
        self.comments[unit.key] = [(c.line - unit.start_line, c) for c in review.comments]

    def current(self, units: list[Unit], max_per_file: int) -> list[Comment]:
        """Comments re-based on where their units are now, capped for the file."""
        comments: list[Comment] = []
        for unit in units:
            for offset, comment in self.comments.get(unit.key, []):
                moved = unit.start_line + offset - comment.line
                if moved:
                    comment.line += moved
                    comment.end_line = (comment.end_line or comment.line - moved) + moved
                comments.append(comment)
        return cap_file(comments, max_per_file)

    def remove(self, comment_id: str) -> Comment | None:
        for entries in self.comments.values():
            for entry in entries:
                if entry[1].id == comment_id:
                    entries.remove(entry)
                    return entry[1]
        return None


@dataclass
class Insights:
    """Reviews and explanations held by the server, by document and by id."""

    files: dict[str, FileReviews] = field(default_factory=dict)
    comments: dict[str, tuple[str, Comment]] = field(default_factory=dict)  # id → (uri, c)
    explanations: dict[str, tuple[Explanation, dict]] = field(default_factory=dict)  # id → (e, ctx)
    by_place: dict[tuple[str, int], str] = field(default_factory=dict)  # (uri, line) → expl. id
    # Lines other servers flagged, per document: from code-action contexts and from
    # hintwise/didPublishDiagnostics (our plugins forward other servers' diagnostics).
    flagged: dict[str, set[int]] = field(default_factory=dict)
    running: dict[str, float] = field(default_factory=dict)

    def file(self, uri: str) -> FileReviews:
        return self.files.setdefault(uri, FileReviews())

    def publishable(self, uri: str, units: list[Unit], max_per_file: int) -> list[Comment]:
        reviews = self.file(uri)
        reviews.forget_missing(units)
        current = reviews.current(units, max_per_file)
        for comment in current:
            self.comments[comment.id] = (uri, comment)
        return current

    def dismiss(self, comment_id: str) -> tuple[str, Comment] | None:
        found = self.comments.pop(comment_id, None)
        if found is not None:
            self.file(found[0]).remove(comment_id)
        return found

    def remember(self, explanation: Explanation, context: dict) -> None:
        self.explanations[explanation.id] = (explanation, context)
        uri, line = context.get("uri"), context.get("line")
        if isinstance(uri, str) and isinstance(line, int):
            self.by_place[(uri, line)] = explanation.id

    def forget(self, uri: str) -> None:
        self.files.pop(uri, None)
        self.flagged.pop(uri, None)
        self.running.pop(uri, None)


def now_ms() -> int:
    return int(time.time() * 1000)
