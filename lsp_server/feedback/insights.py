"""Review comments and explanations, and what the user did with them, as store rows.

Applied fixes and helpful ratings count as accepted, dismissals and unhelpful ratings as
rejected, so comments and explanations land in the DPO/KTO exports with their exact prompt, as
completions do.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

from hintwise.lsp_server.explain.answer import Explanation
from hintwise.lsp_server.explain.question import Question
from hintwise.lsp_server.feedback.tracker import Record
from hintwise.lsp_server.review.comments import Comment
from hintwise.lsp_server.review.learning import Key, key_of
from hintwise.lsp_server.review.reviewer import UnitReview
from hintwise.telemetry import Event, Suggestion, open_db


class InsightLog:
    """Writes review and explanation events through `record` (FeedbackStore.record)."""

    def __init__(self, record: Record):
        self.record = record

    def comments_shown(self, uri: str, language: str, model: str | None, review: UnitReview):
        """The comments a unit's review published."""
        for comment in review.comments:
            self._comment(uri, language, model, review.prompt, review.latency_ms, comment)

    def static_shown(self, uri: str, language: str, comments: list[Comment], ms: float):
        """New comments from the static analyser (no prompt: no model wrote them)."""
        for comment in comments:
            self._comment(uri, language, comment.kind.split(":")[0], "", ms, comment)

    def _comment(
        self, uri: str, language: str, model: str | None, prompt: str, ms: float, comment: Comment
    ) -> None:
        """A comment and its `shown` event; `category` is its kind (`ruff:F841`, `model`) and
        `detail.code_kind` the kind of code, which `review_outcomes` groups answers by."""
        self.record(
            Suggestion(
                id=comment.id,
                kind="review",
                language=language,
                file=uri,
                model=model,
                prompt=prompt,
                text=comment.message,
                line=comment.line,
                end_line=comment.end_line,
                severity=comment.severity,
                category=key_of(comment)[0],
                latency={"review": ms},
                detail={
                    "unit": comment.unit,
                    "replacement": comment.replacement,
                    "code_kind": comment.code_kind,
                },
            )
        )
        self.record(Event(suggestion_id=comment.id, kind="shown"))

    def explanation_shown(self, result: Explanation, question: Question, model: str | None):
        self.record(
            Suggestion(
                id=result.id,
                kind="explanation",
                language=question.language,
                file=question.uri,
                model=model,
                prompt=result.prompt,
                text=result.markdown,
                line=question.line,
                category=(question.message.split(":", 1)[0] or "error")[:60],
                latency={"explain": result.latency_ms},
                detail={"culprit": result.culprit, "facts": result.facts, "fix": result.fix},
            )
        )
        self.record(Event(suggestion_id=result.id, kind="shown"))

    def dismissed(self, comment_id: str) -> None:
        self.record(Event(suggestion_id=comment_id, kind="dismissed"))
        self.record(Event(suggestion_id=comment_id, kind="rejected", reason="explicit"))

    def applied(self, fix_id: str) -> None:
        """A comment's or an explanation's fix, applied by the editor."""
        self.record(Event(suggestion_id=fix_id, kind="applied"))
        self.record(Event(suggestion_id=fix_id, kind="accepted"))

    def rated(self, explanation_id: str, helpful: bool) -> None:
        self.record(Event(suggestion_id=explanation_id, kind="rated", value=float(helpful)))
        self.record(
            Event(suggestion_id=explanation_id, kind="accepted")
            if helpful
            else Event(suggestion_id=explanation_id, kind="rejected", reason="explicit")
        )

    def expanded(self, comment_id: str) -> None:
        """The user asked to "Explain in detail" a review comment."""
        self.record(Event(suggestion_id=comment_id, kind="expanded"))

    def hovered(self, explanation_id: str) -> None:
        """The explanation was read again by hovering its line."""
        self.record(Event(suggestion_id=explanation_id, kind="seen"))


_OUTCOMES = """
SELECT s.category, coalesce(json_extract(s.detail, '$.code_kind'), ''),
       sum(e.kind = 'dismissed'), sum(e.kind = 'applied')
FROM events e JOIN suggestions s ON s.id = e.suggestion_id
WHERE s.kind = 'review' AND e.kind IN ('dismissed', 'applied')
GROUP BY 1, 2
"""


def review_outcomes(path: Path) -> dict[Key, tuple[int, int]]:
    """(dismissed, applied) per (kind of comment, kind of code) over the whole store: one
    query over the `dismissed`/`applied` events (indexed by kind); empty without a store."""
    if not path.exists():
        return {}
    try:
        db = open_db(path, create=False)
    except (OSError, sqlite3.Error):
        return {}
    try:
        rows = db.execute(_OUTCOMES).fetchall()
    except sqlite3.Error:
        return {}
    finally:
        db.close()
    return {
        (kind if kind not in (None, "", "review") else "model", code): (int(d or 0), int(a or 0))
        for kind, code, d, a in rows
    }
