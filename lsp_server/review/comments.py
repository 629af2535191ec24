"""Review comments: what the model's JSON answer says, which of its comments are kept (not
empty, not repeated, not on a line another server flagged, not past the caps), the range each
one covers, and its fix (offered only when the file still parses with it)."""

from __future__ import annotations

import json
import re
import uuid
from dataclasses import asdict, dataclass, field

from hintwise.lsp_server.code.edits import replace_line
from hintwise.lsp_server.code.syntax import CodeError, parse
from hintwise.lsp_server.code.units import Unit

SEVERITIES = ("error", "warning", "info")
SEVERITY_RANK = {"info": 0, "warning": 1, "error": 2}


@dataclass
class Comment:
    """One review comment, about one line of one unit."""

    line: int  # 0-based
    severity: str
    message: str
    replacement: str | None = None
    unit: str = ""
    id: str = field(default_factory=lambda: uuid.uuid4().hex)
    start_character: int = 0  # the range, in characters of the line (mapped with tree-sitter)
    end_character: int = 0
    end_line: int | None = None
    kind: str = ""  # what found it: a static rule ("ruff:F841"); "" = the model's review
    code_kind: str = ""  # the kind of code it is about (tree-sitter statement type)

    def to_json(self) -> dict:
        return asdict(self)


def parse_comments(raw: str, unit: Unit) -> tuple[list[Comment], dict[str, int]]:
    """Comments from the model's JSON, and how many were dropped for which reason."""
    dropped: dict[str, int] = {}

    def drop(reason: str) -> None:
        dropped[reason] = dropped.get(reason, 0) + 1

    try:
        answer = json.loads(raw)
    except (json.JSONDecodeError, RecursionError):
        drop("not valid JSON")
        return [], dropped
    items = answer.get("comments") if isinstance(answer, dict) else None
    if not isinstance(items, list):
        drop("no comments list")
        return [], dropped
    comments: list[Comment] = []
    for item in items:
        if not isinstance(item, dict):
            drop("not an object")
            continue
        line, severity, message = item.get("line"), item.get("severity"), item.get("message")
        if not isinstance(line, int) or isinstance(line, bool):
            drop("no line")
            continue
        if not unit.start_line + 1 <= line <= unit.end_line + 1:
            drop("outside the unit")
            continue
        if not isinstance(message, str) or len(message.strip()) < 3:
            drop("no message")
            continue
        replacement = item.get("replacement")
        comments.append(
            Comment(
                line=line - 1,
                severity=severity if severity in SEVERITIES else "warning",
                message=" ".join(message.split()),
                replacement=replacement if isinstance(replacement, str) and replacement else None,
                unit=unit.key,
            )
        )
    return comments, dropped


def filter_comments(
    comments: list[Comment],
    lines: list[str],
    flagged_lines: set[int],
    max_per_unit: int,
) -> tuple[list[Comment], dict[str, int]]:
    """Drop comments on lines another server flagged, repeats, and all past the unit's cap."""
    kept: list[Comment] = []
    dropped: dict[str, int] = {}
    seen: set[tuple[int, str]] = set()

    def drop(reason: str) -> None:
        dropped[reason] = dropped.get(reason, 0) + 1

    for comment in comments:
        key = (comment.line, comment.message.lower())
        if comment.replacement is not None:
            comment.replacement = _NUMBERED.sub("", comment.replacement) or None
        if _NUMBERED.match(comment.message) or _same_code(
            comment.message, lines[comment.line] if comment.line < len(lines) else ""
        ):
            drop("echoes the code")
        elif _NO_PROBLEM.search(comment.message):
            drop("says there is no problem")
        elif comment.line in flagged_lines:
            drop("line already has a diagnostic")
        elif key in seen:
            drop("repeated")
        elif 0 <= comment.line < len(lines) and not lines[comment.line].strip():
            drop("blank line")
        elif comment.replacement is not None and _same_code(
            comment.replacement, lines[comment.line] if comment.line < len(lines) else ""
        ):
            comment.replacement = None  # a "fix" that changes nothing is no fix
            seen.add(key)
            kept.append(comment)
        else:
            seen.add(key)
            kept.append(comment)
    if len(kept) > max_per_unit:
        drop_count = len(kept) - max_per_unit
        dropped["over the per-function cap"] = drop_count
        kept = sorted(kept, key=lambda c: -SEVERITY_RANK[c.severity])[:max_per_unit]
        kept.sort(key=lambda c: c.line)
    return kept, dropped


# Small models copy the numbered listing or say all is well inside a comment.
_NUMBERED = re.compile(r"^\s*\d+\s*\|\s?", re.M)
_NO_PROBLEM = re.compile(r"\b(is correct|no (bugs?|issues?|problems?)|looks (good|fine))\b", re.I)


def _same_code(a: str, b: str) -> bool:
    return "".join(a.split()) == "".join(b.split())


def cap_file(comments: list[Comment], max_per_file: int) -> list[Comment]:
    """The most severe comments first when a file has more than the cap, in line order."""
    if len(comments) <= max_per_file:
        return comments
    kept = sorted(comments, key=lambda c: (-SEVERITY_RANK[c.severity], c.line))[:max_per_file]
    return sorted(kept, key=lambda c: c.line)


def map_range(text: str, language: str, comment: Comment) -> None:
    """Narrow a comment's range to the statement on its line (tree-sitter), else the line's
    non-blank text. Columns are character indexes into the line."""
    lines = text.split("\n")
    line_text = lines[comment.line] if comment.line < len(lines) else ""
    start = len(line_text) - len(line_text.lstrip())
    end = len(line_text.rstrip())
    comment.start_character, comment.end_character, comment.end_line = start, end, comment.line
    try:
        tree = parse(text, language)
    except CodeError:
        return
    line_bytes = line_text.encode("utf-8", errors="surrogatepass")
    start_byte = len(line_text[:start].encode("utf-8", errors="surrogatepass"))
    node = tree.root_node.named_descendant_for_point_range(
        (comment.line, start_byte), (comment.line, max(start_byte, len(line_bytes) - 1))
    )
    # The outermost node that starts where the line's code starts and ends on this line.
    best = None
    while node is not None and node.start_point == (comment.line, start_byte):
        if node.end_point[0] == comment.line:
            best = node
        node = node.parent
    if best is not None:
        comment.end_character = len(
            line_bytes[: best.end_point[1]].decode("utf-8", errors="surrogatepass")
        )


def apply_replacement(text: str, language: str, comment: Comment) -> str | None:
    """The file with the comment's replacement in place of its line, or None when there is no
    replacement or the result has more syntax errors than the file had (it does not parse)."""
    return replace_line(text, language, comment.line, comment.replacement)
