"""What became of each suggestion, decided from what the editor tells us and what the user types.

The peers' definitions (NOTES.md): a suggestion is **shown** when returned and **seen** after
750 ms on screen (our plugins send `hintwise/didShow`); **accepted** through the `hintwise.accept`
command, or when the user types or inserts all of it; **partially accepted** through
`hintwise/didPartiallyAccept` or an edit that inserts a leading part of it in one go (an editor's
accept-word); **rejected** explicitly (`hintwise/didReject`), when superseded (a request
elsewhere, an edit away from it), when the typing diverges from it, or after a timeout. Accepted
text is checked for **survival** 30 s, 2 min and 5 min later; for a rejected suggestion the line
the user wrote instead is captured once they move on (**replacement**).

Everything goes to the store as plain rows through `record` (FeedbackStore.record, or a list's
append in a test); this module never waits on it.
"""

from __future__ import annotations

import functools
import logging
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field, replace

from rapidfuzz import fuzz

from hintwise.lsp_server.clock import Clock, Timer
from hintwise.lsp_server.code.documents import Document, display_path
from hintwise.lsp_server.completion.result import Result
from hintwise.models.gate.features import FEATURE_VERSION
from hintwise.telemetry import Event, Request, Suggestion

Record = Callable[[Suggestion | Event | Request], None]

log = logging.getLogger("hintwise")

SEEN_AFTER_S = 0.75
SURVIVAL_CHECKS_S = (30, 120, 300)
REPLACEMENT_WAIT_S = 60.0
KEEP = 5000


@dataclass
class Tracked:
    result: Result
    document: Document
    offset: int  # where the suggestion was (is) inserted; kept in step with edits above it
    line_prefix: str  # the line's text before the cursor, to find the spot again
    line_suffix: str = ""  # the line's text after the cursor: there already, not written
    typed: str = ""  # what the user has typed along it so far
    outcome: str | None = None
    reason: str | None = None  # of a rejection
    accepted_text: str = ""
    timers: list[Timer] = field(default_factory=list)
    timeout: Timer | None = None  # re-armed while the user types along
    seen_armed: bool = False  # one "seen" per suggestion, however often the plugin says so
    replacement_done: bool = False  # one "replacement" per rejected suggestion
    # A runner-up offered beside the suggestion is written to the store only once taken
    # (with these settings): until then nobody knows it was on screen.
    unrecorded: dict | None = None

    @property
    def id(self) -> str:
        return self.result.id or ""

    @property
    def text(self) -> str:
        return self.result.text or ""

    def cancel_timers(self) -> None:
        for timer in self.timers:
            timer.cancel()
        self.timers.clear()


class FeedbackTracker:
    """Turns suggestions and editor activity into telemetry rows, handed to `record`."""

    def __init__(
        self,
        record: Record,
        clock: Clock,
        reject_after_s: float = 10.0,
        on_rejected: Callable[[str], None] = lambda suggestion_id: None,
        on_answered: Callable[[str], None] = lambda outcome: None,
    ):
        self.record = record
        self.clock = clock
        self.reject_after_s = reject_after_s
        self.on_rejected = on_rejected
        self.on_answered = on_answered
        self._tracked: OrderedDict[str, Tracked] = OrderedDict()
        self._done: dict[str, int] = {}  # outcomes of suggestions no longer tracked
        self._active: dict[str, Tracked] = {}  # per document: the suggestion on screen
        self._awaiting_replacement: dict[str, Tracked] = {}

    # -- writing ---------------------------------------------------------------------------

    def _now_ms(self) -> int:
        return int(self.clock.now() * 1000)

    def _event(self, tracked: Tracked, kind: str, **values) -> None:
        self.record(Event(suggestion_id=tracked.id, kind=kind, time_ms=self._now_ms(), **values))

    # -- what the server reports -----------------------------------------------------------

    def requested(self, result: Result) -> None:
        """A completion request the gate looked at: skipped, hidden or generated."""
        if result.from_cache or (result.engine is None and result.decision != "skipped"):
            return
        pre = result.verdicts.get("pre")
        self.record(
            Request(
                decision=result.decision,
                time_ms=self._now_ms(),
                language=result.context.language_id if result.context else None,
                pre_score=pre.score if pre is not None else None,
                suggestion_id=result.id,
            )
        )

    def moved_to(self, uri: str, offset: int) -> None:
        """A new request at `offset`: a suggestion shown elsewhere in the document is superseded."""
        active = self._active.get(uri)
        moved = active is not None and offset != active.offset + len(active.typed)
        if active is not None and active.outcome is None and moved:
            self.rejected(active.id, "superseded")
        awaiting = self._awaiting_replacement.get(uri)
        if awaiting is not None and not _same_line(awaiting.document, awaiting.offset, offset):
            self._capture_replacement(awaiting)

    def shown(self, result: Result, document: Document, settings: dict) -> None:
        """A suggestion was returned to the client."""
        if not result.id or not result.text:
            return
        if result.id in self._tracked:  # typing along a suggestion already on screen
            return
        previous = self._active.get(document.uri)
        if previous is not None and previous.outcome is None:
            self.rejected(previous.id, "superseded")
        tracked = _tracked(result, document)
        self._remember(tracked)
        self._active[document.uri] = tracked
        self.record(self._suggestion_row(tracked, settings))
        tracked.result = _slim(result)
        self._event(tracked, "shown")
        self._arm_timeout(tracked)

    def shown_alternative(self, result: Result, document: Document, settings: dict) -> None:
        """A runner-up returned beside the suggestion (an invoked request, for next/previous).

        Remembered so that accepting it (`hintwise.accept <its id>`) records it, as shown and
        accepted, with its survival; never taken it leaves no row (the editor shows one item
        at a time and says which only on acceptance), so it does not count as a rejection nor
        supersede the suggestion on screen."""
        if not result.id or not result.text or result.id in self._tracked:
            return
        tracked = _tracked(result, document)
        tracked.unrecorded = settings
        self._remember(tracked)

    def _record_taken(self, tracked: Tracked) -> None:
        """A runner-up was taken: it was shown after all (see shown_alternative)."""
        if tracked.unrecorded is not None:
            self.record(self._suggestion_row(tracked, tracked.unrecorded))
            tracked.result = _slim(tracked.result)
            self._event(tracked, "shown")
            tracked.unrecorded = None

    def did_show(self, suggestion_id: str) -> None:
        """Our plugin drew it; after 750 ms still on screen it counts as seen."""
        tracked = self._tracked.get(suggestion_id)
        if tracked is None or tracked.outcome is not None or tracked.seen_armed:
            return
        tracked.seen_armed = True

        def seen() -> None:
            if tracked.outcome is None:
                self._event(tracked, "seen")

        tracked.timers.append(self.clock.call_later(SEEN_AFTER_S, seen))

    def accepted(self, suggestion_id: str) -> bool:
        """The user took it all. After an explicit rejection that is a client's contradiction and
        is refused (one final outcome); after a rejection we only inferred (a timeout, say) it
        is the truth and is recorded."""
        tracked = self._tracked.get(suggestion_id)
        if tracked is None or tracked.reason == "explicit":
            return False
        if tracked.outcome == "accepted":
            return True
        self._record_taken(tracked)
        self._settle(tracked, "accepted")
        tracked.accepted_text = tracked.text
        self._event(tracked, "accepted", accepted_chars=len(tracked.text))
        self._arm_survival(tracked)
        return True

    def partially_accepted(self, suggestion_id: str, accepted_chars: int) -> bool:
        tracked = self._tracked.get(suggestion_id)
        if tracked is None or tracked.reason == "explicit":
            return False
        if tracked.outcome == "accepted":
            return True
        self._record_taken(tracked)
        accepted_chars = max(0, min(accepted_chars, len(tracked.text)))
        if accepted_chars >= len(tracked.text):
            return self.accepted(suggestion_id)
        first = tracked.outcome != "partially_accepted"
        if not first and accepted_chars <= len(tracked.accepted_text):
            return True  # already known: the edit was seen before the plugin's notification
        if first:  # a later, larger part keeps the survival checks the first one armed
            self._settle(tracked, "partially_accepted")
        tracked.accepted_text = tracked.text[:accepted_chars]
        self._event(tracked, "partially_accepted", accepted_chars=accepted_chars)
        if first:
            self._arm_survival(tracked)
        return True

    def rejected(self, suggestion_id: str, reason: str) -> bool:
        tracked = self._tracked.get(suggestion_id)
        if tracked is None or tracked.outcome is not None or tracked.unrecorded is not None:
            return False
        self._settle(tracked, "rejected")
        tracked.reason = reason
        self._event(tracked, "rejected", reason=reason)
        self.on_rejected(tracked.id)
        uri = tracked.document.uri
        earlier = self._awaiting_replacement.get(uri)
        if earlier is not None and earlier is not tracked:
            self._capture_replacement(earlier)
        self._awaiting_replacement[uri] = tracked
        tracked.timers.append(
            self.clock.call_later(REPLACEMENT_WAIT_S, lambda: self._capture_replacement(tracked))
        )
        return True

    def document_changed(self, document: Document, start: int, removed: int, inserted: str):
        """One content change: follow offsets, and read typing along, accepting or diverging."""
        delta = len(inserted) - removed
        for tracked in list(self._tracked.values()):
            if tracked.document is document and start < tracked.offset:
                tracked.offset = max(start, tracked.offset + delta)
        active = self._active.get(document.uri)
        if active is not None and active.outcome is None:
            self._follow_typing(active, start, removed, inserted)
        awaiting = self._awaiting_replacement.get(document.uri)
        if awaiting is not None and not _same_line(document, awaiting.offset, start):
            self._capture_replacement(awaiting)

    def _finished(self, tracked: Tracked) -> None:
        """Nothing more can happen to it (its last check ran, or its replacement was taken):
        let go of it and of the prompt and document it holds, keep only its outcome's count."""
        if self._tracked.get(tracked.id) is tracked:
            del self._tracked[tracked.id]
            key = tracked.outcome or "shown"
            self._done[key] = self._done.get(key, 0) + 1

    def outcome(self, suggestion_id: str) -> str | None:
        """The suggestion's outcome so far ("shown" when unanswered), None when unknown."""
        tracked = self._tracked.get(suggestion_id)
        return None if tracked is None else tracked.outcome or "shown"

    def counts(self) -> dict[str, int]:
        """Outcomes of the suggestions of this session (for `hintwise/status`)."""
        totals: dict[str, int] = dict(self._done)
        for tracked in self._tracked.values():
            key = tracked.outcome or "shown"
            totals[key] = totals.get(key, 0) + 1
        return totals

    def closed(self, uri: str) -> None:
        """The document was closed: settle what is open, then let go of it (a closed 5 MB file
        stayed referenced here, one copy per suggestion it got); checks still pending on it
        cannot see the user's text any more and are dropped."""
        active = self._active.get(uri)
        if active is not None and active.outcome is None:
            self.rejected(active.id, "superseded")
        self._active.pop(uri, None)
        awaiting = self._awaiting_replacement.get(uri)
        if awaiting is not None:
            self._capture_replacement(awaiting)
        for tracked in list(self._tracked.values()):
            if tracked.document.uri == uri:
                tracked.cancel_timers()
                self._finished(tracked)

    # -- inner workings --------------------------------------------------------------------

    def _remember(self, tracked: Tracked) -> None:
        self._tracked[tracked.id] = tracked
        while len(self._tracked) > KEEP:
            _, old = self._tracked.popitem(last=False)
            old.cancel_timers()

    def _settle(self, tracked: Tracked, outcome: str) -> None:
        if tracked.outcome is None:
            self.on_answered(outcome)
        tracked.outcome = outcome
        tracked.cancel_timers()
        if self._active.get(tracked.document.uri) is tracked:
            del self._active[tracked.document.uri]

    def _arm_timeout(self, tracked: Tracked) -> None:
        def timeout() -> None:
            self.rejected(tracked.id, "timeout")

        if tracked.timeout is not None:
            tracked.timeout.cancel()
        tracked.timeout = self.clock.call_later(self.reject_after_s, timeout)
        tracked.timers.append(tracked.timeout)

    def _arm_survival(self, tracked: Tracked) -> None:
        for after in SURVIVAL_CHECKS_S:
            check = functools.partial(self._check_survival, tracked, after)
            tracked.timers.append(self.clock.call_later(after, check))

    def _follow_typing(self, tracked: Tracked, start: int, removed: int, inserted: str) -> None:
        expected = tracked.offset + len(tracked.typed)
        along = tracked.typed + inserted
        if removed == 0 and start == expected and tracked.text.startswith(along) and inserted:
            if along == tracked.text:
                self.accepted(tracked.id)
                return
            if len(inserted) >= 2 and not inserted.isspace():
                # A chunk in one edit is the editor accepting a word or a line of it.
                self.partially_accepted(tracked.id, len(along))
                tracked.typed = along
                return
            tracked.typed = along
            self._arm_timeout(tracked)  # the pending "seen" stays armed
            return
        if _same_line(tracked.document, tracked.offset, start):
            self.rejected(tracked.id, "diverged")
        else:
            self.rejected(tracked.id, "superseded")

    def _check_survival(self, tracked: Tracked, after_s: int) -> None:
        accepted = tracked.accepted_text
        if not accepted.strip():
            return
        text = tracked.document.text
        # Look where it was put (the offset follows edits above it), give or take a little:
        # the same code elsewhere in the file must not count as this text surviving.
        margin = 8 + len(accepted) // 4
        window = text[max(0, tracked.offset - margin) : tracked.offset + len(accepted) + margin]
        similarity = fuzz.partial_ratio(accepted, window) / 100 if window else 0.0
        self._event(tracked, "survival", check_after_s=after_s, similarity=round(similarity, 4))
        if after_s == SURVIVAL_CHECKS_S[-1]:
            self._finished(tracked)

    def _capture_replacement(self, tracked: Tracked) -> None:
        """Record what the user wrote where the rejected suggestion would have gone."""
        if self._awaiting_replacement.get(tracked.document.uri) is tracked:
            del self._awaiting_replacement[tracked.document.uri]
        if tracked.outcome != "rejected" or tracked.replacement_done:
            return
        tracked.replacement_done = True
        tracked.cancel_timers()  # the one-minute timer, when the user moved on before it
        self._finished(tracked)
        document = tracked.document
        line_start = document.text.rfind("\n", 0, tracked.offset) + 1
        lines_wanted = tracked.text.count("\n") + 1
        end = line_start
        for _ in range(lines_wanted):
            next_end = document.text.find("\n", end)
            end = len(document.text) if next_end < 0 else next_end + 1
        written_lines = document.text[line_start:end].rstrip("\n")
        if not written_lines.startswith(tracked.line_prefix):
            return  # the line was rewritten from its start: no longer the same spot
        written = written_lines[len(tracked.line_prefix) :]
        if tracked.line_suffix.strip() and written.endswith(tracked.line_suffix):
            written = written[: len(written) - len(tracked.line_suffix)]  # there before
        if written.strip() and written.strip() != tracked.text.strip():
            self._event(tracked, "replacement", text=written)

    def _suggestion_row(self, tracked: Tracked, settings: dict) -> Suggestion:
        result, engine, context = tracked.result, tracked.result.engine, tracked.result.context
        return Suggestion(
            id=tracked.id,
            kind="completion",
            created_ms=self._now_ms(),
            language=tracked.document.language_id,
            file=display_path(tracked.document.uri),
            model=result.model,
            settings=settings,
            mode=result.mode,
            prompt=(engine.prompt_text + engine.healed) if engine else None,
            prefix=context.prefix if context else None,
            suffix=context.suffix if context else None,
            text=result.text,
            features=_features(result),
            scores=result.gate_scores() or None,
            latency=result.latency_ms,
            token_logprobs=list(engine.token_logprobs) if engine else None,
        )


def _tracked(result: Result, document: Document) -> Tracked:
    text, offset = document.text, result.offset
    line_start = text.rfind("\n", 0, offset) + 1
    line_end = text.find("\n", offset)
    line_end = len(text) if line_end < 0 else line_end
    return Tracked(
        result, document, offset, text[line_start:offset], text[offset:line_end].rstrip("\r")
    )


def _slim(result: Result) -> Result:
    """What is left to know of a suggestion once its row is written: its id, text and place. The
    prompt, the model's answer and the cursor context (kilobytes) are let go of, instead of being
    held for the five minutes of survival checks."""
    return replace(result, engine=None, context=None, verdicts={}, alternatives=[])


def _same_line(document: Document, a: int, b: int) -> bool:
    low, high = min(a, b), max(a, b)
    return "\n" not in document.text[low:high]


def _features(result: Result) -> dict:
    """What was known when the suggestion was made (the acceptance gate will add its own)."""
    engine, context = result.engine, result.context
    features: dict = {"reason": result.reason}
    if context is not None:
        features.update(
            mode=context.mode,
            line_prefix_chars=len(context.line_prefix),
            line_suffix_chars=len(context.line_suffix.strip()),
            in_comment=context.syntax.in_comment,
            in_string=context.syntax.in_string,
            node_kinds=list(context.syntax.node_kinds),
        )
    if result.verdicts:
        features["gate"] = {
            "version": FEATURE_VERSION,
            **{stage: verdict.features for stage, verdict in result.verdicts.items()},
        }
    if engine is not None:
        features.update(
            fim=engine.fim,
            healed=engine.healed,
            prompt_tokens=engine.prompt_tokens,
            generated_tokens=engine.generated_tokens,
            stop_reason=engine.stop_reason,
        )
    return features
