"""Held-out questions for the base and the tuned model, asked through the server's own
completion pipeline.

A `Case` is a document as the editor had it, a cursor, and the text the user kept there: a
suggestion they accepted (or what they wrote instead of one they rejected), rebuilt from the
feedback store's prefix and suffix, or a line of a replayed repository. Asking goes through
`Completer.complete` exactly as `hintwise complete` does (the same context, prompt, token healing,
stop rules and post-processing), so "exact" means the user would have been shown what they kept.
Every request is asked as the editor asks while the user types (`automatic=True`: the candidate
search of automatic requests, which is what a user is shown), with the gate's thresholds at 0 so
that it scores every answer but hides none: each answer carries the gate's features, on which
the gate can be retrained for the model it guards (replay_gate.py). The time limit is generous:
a busy machine must not cut an answer short, since the question is what the model says, not how
fast this machine is today.
"""

from __future__ import annotations

import asyncio
import dataclasses
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from hintwise.lsp_server.code.documents import Document
from hintwise.lsp_server.completion.completer import Completer
from hintwise.lsp_server.config import CompletionSettings, Settings
from hintwise.lsp_server.gate.keeper import Gatekeeper
from hintwise.models.gate.features import FEATURE_VERSION
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


def chars_saved(suggestion: str, kept: str) -> int:
    """The longest common start of a suggestion and the text the user kept (trailing
    whitespace aside): what accepting it and deleting from its first wrong character saves."""
    suggestion, kept = suggestion.rstrip(), kept.rstrip()
    same = 0
    for mine, theirs in zip(suggestion, kept, strict=False):
        if mine != theirs:
            break
        same += 1
    return same


@dataclass(frozen=True)
class Answer:
    case: Case
    suggestion: str
    prompt: tuple[int, ...]  # the token ids the engine built (empty: no model call)
    healed: str  # text the prompt gave back for token healing; the model re-creates it first
    gate: dict = field(default_factory=dict)  # the gate's features by stage, as the store keeps

    @property
    def group(self) -> str:
        """Rows alike in kind: the replayed file, or the store."""
        return (
            self.case.origin.rsplit(":", 1)[0] if self.case.origin.startswith("repo:") else "store"
        )

    @property
    def exact(self) -> bool:
        """The suggestion is what the user kept (trailing whitespace aside)."""
        return bool(self.suggestion.strip()) and (
            self.suggestion.rstrip() == self.case.expected.rstrip()
        )

    @property
    def chars_saved(self) -> int:
        """Characters the user would not have typed: the longest common start of the
        suggestion and what they kept (they accept it and delete from its first wrong one)."""
        return chars_saved(self.suggestion, self.case.expected)

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


def asking_settings(settings: CompletionSettings, single: bool) -> CompletionSettings:
    """The completion settings a replayed or held-out case is asked with: the user's, with a
    generous time limit and no pre-warming; `single`: one line at a time (a replayed hole is
    one line)."""
    return dataclasses.replace(
        settings,
        multiline="never" if single else settings.multiline,
        prewarm=False,
        time_limit_ms=max(settings.time_limit_ms, 10_000),
    )


def prepare(worker: ModelWorker) -> None:
    """Finish the engine's background preparation before the first case: a request that comes
    first goes without token healing (Vocabulary.prepare), so the first cases of a run would
    get other prompts than the rest, and than the server's once it has run a second."""

    def finish(engine: Any, cancelled: Callable[[], bool]) -> None:
        while not engine.prepare(cancelled):
            if cancelled():
                return

    worker.submit(finish).future.result()


def ask(
    worker: ModelWorker,
    cases: Sequence[Case],
    settings: Settings,
    progress: Callable[[int], None] = lambda done: None,
) -> list[Answer]:
    """Every case through the completion pipeline, one after the other, in order."""
    prepare(worker)
    scoring = dataclasses.replace(
        settings.gate, enabled=True, pre_threshold=0.0, post_threshold=0.0
    )
    gate = Gatekeeper(scoring, settings.data_path, now=time.monotonic)
    completer = Completer(worker, settings.model_spec(), gate=gate)

    async def run() -> list[Answer]:
        answers = []
        for number, case in enumerate(cases):
            uri = f"file:///hintwise-tune/{number}"
            document = Document(uri, case.language, 0, case.text, "utf-32")
            asked = asking_settings(settings.completion, not case.origin.startswith("store:"))
            result = await completer.complete(document, case.offset, asked, automatic=True)
            completer.forget(uri)
            engine = result.engine
            gate: dict = {"version": FEATURE_VERSION}
            gate.update({stage: verdict.features for stage, verdict in result.verdicts.items()})
            answers.append(
                Answer(
                    case,
                    result.text or "",
                    tuple(engine.prompt) if engine is not None and engine.prompt else (),
                    engine.healed if engine is not None else "",
                    gate,
                )
            )
            progress(number + 1)
        return answers

    return asyncio.run(run())


def prompts(
    worker: ModelWorker,
    cases: Sequence[Case],
    settings: Settings,
    progress: Callable[[int], None] = lambda done: None,
) -> list[Answer]:
    """Every case's prompt as the server would build it, without asking for an answer.

    A training example needs only the prompt and what the user kept, not the base model's
    answer: building a prompt takes milliseconds where an answer takes seconds, so training can
    use many more of the replayed repository's lines in the same time. The Answers carry no
    suggestion and no gate features."""
    completer = Completer(worker, settings.model_spec())
    requests = []
    for number, case in enumerate(cases):
        document = Document(
            f"file:///hintwise-tune/{number}", case.language, 0, case.text, "utf-32"
        )
        asked = asking_settings(settings.completion, not case.origin.startswith("store:"))
        requests.append(completer.request_for(document, case.offset, asked))

    prepare(worker)

    def build(engine: Any, cancelled: Callable[[], bool]) -> list[tuple[tuple[int, ...], str]]:
        if not hasattr(engine, "build_prompt"):
            raise TypeError("training needs the local llama.cpp engine (model.engine: local)")
        built: list[tuple[tuple[int, ...], str]] = []
        for number, request in enumerate(requests):
            if request is None:
                built.append(((), ""))
            else:
                tokens, healed, _, _ = engine.build_prompt(request)
                built.append((tuple(tokens), healed.decode("utf-8", errors="replace")))
            if number % 50 == 49:
                progress(number + 1)
        progress(len(requests))
        return built

    built = worker.submit(build).future.result()
    return [
        Answer(case, "", prompt, healed)
        for case, (prompt, healed) in zip(cases, built, strict=True)
    ]
