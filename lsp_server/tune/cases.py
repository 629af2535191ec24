"""Held-out questions for the base and the tuned model, asked through the server's own
completion pipeline.

A `Case` is a document as the editor had it, a cursor, and the text the user kept there: a
suggestion they accepted (or what they wrote instead of one they rejected), rebuilt from the
feedback store's prefix and suffix, or a line of a replayed repository. Asking goes through
`Completer.complete` exactly as `hintwise complete` does (the same context, prompt, token healing,
stop rules and post-processing), so "exact" means the user would have been shown what they kept.
The acceptance gate is left out: the question is what the model says, not whether it is shown.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from hintwise.lsp_server.code.documents import Document
from hintwise.lsp_server.completion.completer import Completer
from hintwise.lsp_server.config import CompletionSettings
from hintwise.models.tune.examples import Example
from hintwise.models.worker import ModelWorker
from hintwise.telemetry.kept import Kept


@dataclass(frozen=True)
class Case:
    text: str  # the document without what the user then kept
    offset: int  # the cursor, in characters
    language: str
    expected: str  # what the user kept at the cursor
    origin: str  # "store:<suggestion id>" or "repo:<file>:<line>"
    time_ms: int = 0


def from_kept(row: Kept) -> Case:
    return Case(
        text=row.prefix + row.suffix,
        offset=len(row.prefix),
        language=row.language or "python",
        expected=row.kept,
        origin=f"store:{row.id}",
        time_ms=row.created_ms,
    )


@dataclass(frozen=True)
class Answer:
    case: Case
    suggestion: str
    prompt: tuple[int, ...]  # the token ids the engine built (empty: no model call)
    healed: str  # text the prompt gave back for token healing; the model re-creates it first

    @property
    def exact(self) -> bool:
        """The suggestion is what the user kept (trailing whitespace aside)."""
        return bool(self.suggestion.strip()) and (
            self.suggestion.rstrip() == self.case.expected.rstrip()
        )

    @property
    def chars_saved(self) -> int:
        """Characters the user would not have typed: all of an exact suggestion, or of one
        that is the start of what they kept; a suggestion that goes wrong saves nothing."""
        text = self.suggestion.rstrip()
        return len(text) if text and self.case.expected.startswith(text) else 0

    def example(self) -> Example | None:
        """The training example: this prompt, and the kept text after the healed part."""
        if not self.prompt or not self.case.expected.strip():
            return None
        return Example(
            prompt=self.prompt,
            target=self.healed + self.case.expected,
            source=self.case.origin.split(":", 1)[0],
            time_ms=self.case.time_ms,
        )


def ask(
    worker: ModelWorker,
    cases: Sequence[Case],
    settings: CompletionSettings,
    progress: Callable[[int], None] = lambda done: None,
) -> list[Answer]:
    """Every case through the completion pipeline, one after the other, in order."""
    completer = Completer(worker)

    async def run() -> list[Answer]:
        answers = []
        for number, case in enumerate(cases):
            uri = f"file:///hintwise-tune/{number}"
            document = Document(uri, case.language, 0, case.text, "utf-32")
            result = await completer.complete(document, case.offset, settings, automatic=False)
            completer.forget(uri)
            engine = result.engine
            answers.append(
                Answer(
                    case,
                    result.text or "",
                    tuple(engine.prompt) if engine is not None and engine.prompt else (),
                    engine.healed if engine is not None else "",
                )
            )
            progress(number + 1)
        return answers

    return asyncio.run(run())
