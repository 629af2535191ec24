"""What the server keeps of its reviews, per document and by comment id.

Per document: the digest of every unit at its last review and the comments of each unit, with
lines relative to the unit, so comments of unchanged units follow them when code above moves;
the lines other servers flagged (reviews do not repeat them); and the reviews under way. By id:
every published comment, for the code actions and the dismiss / apply-fix commands.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from hintwise.lsp_server.code.documents import DocumentStore
from hintwise.lsp_server.code.units import Unit
from hintwise.lsp_server.review.comments import Comment, apply_replacement, cap_file
from hintwise.lsp_server.review.learning import Learned
from hintwise.lsp_server.review.reviewer import UnitReview
from hintwise.lsp_server.review.static import is_static


@dataclass
class FileReviews:
    """One document's review state."""

    digests: dict[str, str] = field(default_factory=dict)  # unit key → digest when reviewed
    # unit key → (line offset in the unit, comment)
    comments: dict[str, list[tuple[int, Comment]]] = field(default_factory=dict)
    # The static analyser's, for the whole file at its last review, kept like the model's
    # (key "" with the absolute line for code outside every unit).
    static: dict[str, list[tuple[int, Comment]]] = field(default_factory=dict)
    static_removed: set[tuple[str, str]] = field(default_factory=set)  # (kind, message)

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

    def store_static(self, units: list[Unit], comments: list[Comment]) -> list[Comment]:
        """Replace the static comments; one that was already there keeps its id (it was shown
        already). The new ones."""
        before: dict[tuple[str, str], list[Comment]] = {}
        for entries in self.static.values():
            for _, old in sorted(entries, key=lambda entry: entry[1].line):
                before.setdefault((old.kind, old.message), []).append(old)
        self.static = {}
        new = []
        for comment in comments:
            if (comment.kind, comment.message) in self.static_removed:
                continue  # dismissed (or fixed) here: not shown again in this file
            olds = before.get((comment.kind, comment.message))
            if olds:
                old = olds.pop(0)
                comment.id = old.id
            else:
                new.append(comment)
            unit = next((u for u in units if u.start_line <= comment.line <= u.end_line), None)
            key, offset = (unit.key, comment.line - unit.start_line) if unit else ("", comment.line)
            self.static.setdefault(key, []).append((offset, comment))
        return new

    def current(self, units: list[Unit], max_per_file: int) -> list[Comment]:
        """Comments re-based on where their units are now, capped for the file."""
        comments: list[Comment] = [c for _, c in self.static.get("", [])]
        for unit in units:
            for offset, comment in self.comments.get(unit.key, []) + self.static.get(unit.key, []):
                moved = unit.start_line + offset - comment.line
                if moved:
                    comment.line += moved
                    comment.end_line = (comment.end_line or comment.line - moved) + moved
                comments.append(comment)
        return cap_file(comments, max_per_file)

    def remove(self, comment_id: str) -> Comment | None:
        for entries in [*self.comments.values(), *self.static.values()]:
            for entry in entries:
                if entry[1].id == comment_id:
                    entries.remove(entry)
                    if is_static(entry[1]):
                        self.static_removed.add((entry[1].kind, entry[1].message))
                    return entry[1]
        return None


@dataclass
class ReviewState:
    """Reviews held by the server, by document and by comment id."""

    files: dict[str, FileReviews] = field(default_factory=dict)
    comments: dict[str, tuple[str, Comment]] = field(default_factory=dict)  # id → (uri, c)
    # Lines other servers flagged, per document: from code-action contexts and from
    # hintwise/didPublishDiagnostics (our plugins forward other servers' diagnostics).
    flagged: dict[str, set[int]] = field(default_factory=dict)
    running: dict[str, int] = field(default_factory=dict)  # uri → version under review
    learned: Learned = field(default_factory=Learned)  # dismiss/apply counts per kind
    static_problem: str | None = None  # why the static checks did not run, last time

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

    def fix(self, comment_id: str, documents: DocumentStore) -> tuple[str, str, str] | None:
        """(uri, new text, old text) of a comment's fix, when it has one that parses."""
        if comment_id not in self.comments:
            return None
        uri, comment = self.comments[comment_id]
        document = documents.get(uri)
        if document is None:
            return None
        new_text = apply_replacement(document.text, document.language_id, comment)
        return (uri, new_text, document.text) if new_text is not None else None

    def forget(self, uri: str) -> None:
        self.files.pop(uri, None)
        self.flagged.pop(uri, None)
        self.running.pop(uri, None)
