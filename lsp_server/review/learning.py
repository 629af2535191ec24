"""Learning from the user's answers to review comments: a kind of comment that the user
dismissed repeatedly on a kind of code stops being shown.

A comment's *kind* is what found it (a static rule such as `ruff:F841`, or `model` for the
model's own review); the *kind of code* is the tree-sitter type of the statement it is about
(`assignment`, `call`, `if_statement`, `except_clause`...), so dismissing "unused variable" on
`except ... as e:` twice does not hide it on plain assignments.

The rule: hidden once dismissed at least twice and more than three times as often as applied.
One dismissal can be "not now"; two with no applied fix say the user does not want it; a kind
whose fix was applied helps sometimes and is only hidden when dismissals clearly outweigh it.
The counts are global (the user's, every workspace): the store keeps files as paths, hashes or
nothing (telemetry.store_code), so a per-workspace count would work for some users only, and
a kind of comment unwanted in one project is rarely wanted in the next.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from tree_sitter import Node

from hintwise.lsp_server.code.syntax import CodeError, parse
from hintwise.lsp_server.review.comments import Comment

MIN_DISMISSALS = 2
DISMISSALS_PER_APPLY = 3

Key = tuple[str, str]  # (kind of comment, kind of code)


@dataclass
class Learned:
    """Dismiss/apply counts per (kind of comment, kind of code): read once from the store,
    then kept up to date by the server's own dismiss and apply commands."""

    counts: dict[Key, list[int]] = field(default_factory=dict)  # → [dismissed, applied]
    source: Path | None = None  # the store the counts came from; None = not read yet

    def load(self, counts: Mapping[Key, tuple[int, int]], source: Path) -> None:
        self.counts = {key: [dismissed, applied] for key, (dismissed, applied) in counts.items()}
        self.source = source

    def note(self, comment: Comment, outcome: str) -> None:
        """Count a `dismissed` or `applied` answer to a comment."""
        entry = self.counts.setdefault(key_of(comment), [0, 0])
        entry[0 if outcome == "dismissed" else 1] += 1

    def hidden(self, comment: Comment) -> bool:
        dismissed, applied = self.counts.get(key_of(comment), (0, 0))
        return dismissed >= MIN_DISMISSALS and dismissed > DISMISSALS_PER_APPLY * applied

    def keep(self, comments: list[Comment]) -> tuple[list[Comment], int]:
        """The comments not hidden, and how many were."""
        kept = [comment for comment in comments if not self.hidden(comment)]
        return kept, len(comments) - len(kept)


def key_of(comment: Comment) -> Key:
    return (comment.kind or "model", comment.code_kind)


def label(text: str, language: str, comments: list[Comment]) -> None:
    """Set each comment's kind of code (one parse for all of them)."""
    if not comments:
        return
    try:
        root = parse(text, language).root_node
    except CodeError:
        return
    lines = text.split("\n")
    for comment in comments:
        if comment.code_kind or comment.line >= len(lines):
            continue
        line = lines[comment.line]
        column = comment.start_character or len(line) - len(line.lstrip())
        byte = len(line[:column].encode("utf-8", "surrogatepass"))
        node = root.named_descendant_for_point_range((comment.line, byte), (comment.line, byte))
        comment.code_kind = statement_kind(node)


def statement_kind(node: Node | None) -> str:
    """The type of the statement around a node; for an expression statement, the type of its
    expression (`assignment`, `call`...), which says more."""
    while node is not None and not _is_statement(node.type):
        node = node.parent
    if node is None:
        return "module"
    if node.type == "expression_statement" and node.named_child_count:
        first = node.named_children[0]
        return first.type
    return node.type


def _is_statement(node_type: str) -> bool:
    return node_type.endswith(("_statement", "_clause", "_definition", "_declaration"))
