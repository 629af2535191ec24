"""On-save review: which functions changed, what to ask the model, which answers to keep.

Plain functions shared by the server (didSave, `hintwise.review`), `hintwise review` and the
benchmark. The model reviews one syntactic unit at a time (a function, or a class without
methods), found with tree-sitter, so a small model sees a short, whole piece of code, and every
comment can be checked against the unit it was about. Its answer is constrained by a JSON schema
whose `line` field may only take the unit's own line numbers: a 270M model then always returns
parseable output that points inside the code it was shown. What it says is still filtered: empty
or repeated messages, lines another server already flagged, and more than a few per function.
"""

from __future__ import annotations

import hashlib
import json
import math
import re
import uuid
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass, field

from tree_sitter import Node, Parser

from hintwise.lsp_server.syntax import MAX_PARSE_BYTES, count_errors, grammar
from hintwise.models.engine import Engine, GenerationRequest, TokenScorer

SEVERITIES = ("error", "warning", "info")
SEVERITY_RANK = {"info": 0, "warning": 1, "error": 2}

# Node types that make a review unit, per language: functions (methods included) and classes.
FUNCTION_TYPES = {
    "function_definition",  # python, c, cpp
    "function_declaration",  # javascript, typescript, go
    "method_definition",  # javascript, typescript
    "method_declaration",  # go, java
    "constructor_declaration",  # java
    "function_item",  # rust
    "arrow_function",
    "generator_function_declaration",
}
CLASS_TYPES = {
    "class_definition",
    "class_declaration",
    "class_specifier",
    "struct_item",
    "impl_item",
    "interface_declaration",
}

# A function longer than this is reviewed in its first lines only (prompt size, and a small
# model loses track in long code anyway).
MAX_UNIT_LINES = 120


class ReviewError(ValueError):
    """A file that cannot be reviewed; the message says why."""


@dataclass(frozen=True)
class Unit:
    """A function or class: 0-based inclusive lines, character offsets into the file text."""

    kind: str
    name: str
    start_line: int
    end_line: int
    start: int
    end: int
    text: str

    @property
    def key(self) -> str:
        return f"{self.kind} {self.name}"

    @property
    def digest(self) -> str:
        return hashlib.sha256(self.text.encode("utf-8", errors="surrogatepass")).hexdigest()


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

    def to_json(self) -> dict:
        return asdict(self)


@dataclass
class UnitReview:
    """What the model answered for one unit and what survived the filters."""

    unit: Unit
    prompt: str
    raw: str
    comments: list[Comment]
    dropped: dict[str, int]
    stop_reason: str
    latency_ms: float


def _parse(text: str, language: str):
    lang = grammar(language)
    if lang is None:
        raise ReviewError(f"no tree-sitter grammar for language {language!r}")
    if len(text) > MAX_PARSE_BYTES:
        raise ReviewError(
            f"the file is too large to review ({len(text):,} characters; "
            f"the limit is {MAX_PARSE_BYTES:,})"
        )
    return Parser(lang).parse(text.encode("utf-8", errors="surrogatepass"))


def _name(node: Node) -> str:
    named = node.child_by_field_name("name")
    if named is None and node.parent is not None and node.type == "arrow_function":
        named = node.parent.child_by_field_name("name")
    if named is None:
        declarator = node.child_by_field_name("declarator")
        while declarator is not None and declarator.child_by_field_name("declarator") is not None:
            declarator = declarator.child_by_field_name("declarator")
        named = declarator
    if named is None:
        return f"<anonymous@{node.start_point[0] + 1}>"
    return named.text.decode("utf-8", errors="replace")


def find_units(text: str, language: str) -> list[Unit]:
    """The functions (and classes without methods) of a file, outermost functions only.

    Raises ReviewError for a language without a grammar or a file too large to parse. A file
    with syntax errors still has units: tree-sitter recovers around the broken part.
    """
    tree = _parse(text, language)
    data = text.encode("utf-8", errors="surrogatepass")
    units: list[Unit] = []
    seen: dict[str, int] = {}
    line_starts = [0, *(i + 1 for i, ch in enumerate(text) if ch == "\n")]

    def char_offset(byte: int) -> int:
        return len(data[:byte].decode("utf-8", errors="surrogatepass"))

    def add(node: Node, kind: str) -> None:
        name = _name(node)
        count = seen.get(f"{kind} {name}", 0)
        seen[f"{kind} {name}"] = count + 1
        if count:
            name = f"{name}#{count + 1}"
        start_line = node.start_point[0]
        start = line_starts[start_line]  # the whole first line, indentation included
        end = char_offset(node.end_byte)
        units.append(Unit(kind, name, start_line, node.end_point[0], start, end, text[start:end]))

    def visit(node: Node) -> bool:
        """Add units under `node`; True when a function unit was found there."""
        found = False
        for child in node.children:
            target = child
            if child.type == "decorated_definition":
                target = child.child_by_field_name("definition") or child
            if target.type in FUNCTION_TYPES:
                add(child, "function")
                found = True
            elif target.type in CLASS_TYPES:
                if visit(target):
                    found = True
                else:
                    add(child, "class")
            elif child.child_count:
                found = visit(child) or found
        return found

    visit(tree.root_node)
    units.sort(key=lambda u: u.start)
    return units


def changed_units(units: Iterable[Unit], reviewed: dict[str, str]) -> list[Unit]:
    """Units whose text differs from the last review (`reviewed`: key → digest)."""
    return [unit for unit in units if reviewed.get(unit.key) != unit.digest]


# -- asking the model ----------------------------------------------------------------------------


def comment_schema(unit: Unit, max_comments: int) -> dict:
    """JSON schema of an answer: `line` can only be one of the unit's (1-based) line numbers."""
    lines = list(range(unit.start_line + 1, unit.end_line + 2))[:MAX_UNIT_LINES]
    return {
        "type": "object",
        "properties": {
            "comments": {
                "type": "array",
                "maxItems": max_comments,
                "items": {
                    "type": "object",
                    "properties": {
                        "line": {"enum": lines},
                        "severity": {"enum": list(SEVERITIES)},
                        "message": {"type": "string", "minLength": 3, "maxLength": 160},
                        "replacement": {"type": "string", "maxLength": 200},
                    },
                    "required": ["line", "severity", "message"],
                },
            }
        },
        "required": ["comments"],
    }


def numbered(text: str, first_line: int, limit: int = MAX_UNIT_LINES) -> str:
    """Code with 1-based file line numbers in front, as the model sees it."""
    lines = text.split("\n")[:limit]
    width = len(str(first_line + len(lines)))
    return "\n".join(f"{first_line + i + 1:>{width}} | {line}" for i, line in enumerate(lines))


REVIEW_INSTRUCTIONS = (
    "You review {language} code for bugs: a wrong operator or comparison, an off-by-one index "
    "or constant, a wrong variable, an inverted condition, a missing return, an exception that "
    "can be raised. Report only real bugs, at most {max_comments}, each on the line where it is, "
    "with a short message and, when you can, the corrected line as `replacement`. "
    'If the code is correct, answer {{"comments": []}}.'
)


def review_request(
    unit: Unit, language: str, max_comments: int, max_tokens: int = 256
) -> GenerationRequest:
    instructions = REVIEW_INSTRUCTIONS.format(language=language, max_comments=max_comments)
    content = (
        f"{instructions}\n\n```{language}\n{numbered(unit.text, unit.start_line)}\n```\n\n"
        "Answer in JSON."
    )
    return GenerationRequest(
        messages=[{"role": "user", "content": content}],
        max_tokens=max_tokens,
        json_schema=comment_schema(unit, max_comments),
        time_limit_s=60.0,
    )


# -- what to keep --------------------------------------------------------------------------------


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
        tree = _parse(text, language)
    except ReviewError:
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
    if not comment.replacement:
        return None
    lines = text.split("\n")
    if not 0 <= comment.line < len(lines):
        return None
    old = lines[comment.line]
    indent = old[: len(old) - len(old.lstrip())]
    new_lines = comment.replacement.strip("\n").split("\n")
    if new_lines and new_lines[0] == new_lines[0].lstrip():
        new_lines = [indent + line if line.strip() else line for line in new_lines]
    candidate = "\n".join([*lines[: comment.line], *new_lines, *lines[comment.line + 1 :]])
    try:
        before = count_errors(_parse(text, language).root_node)
        after = count_errors(_parse(candidate, language).root_node)
    except ReviewError:
        return None
    if after > before or candidate == text:
        return None
    return candidate


# Tokens where a swapped operator, constant or keyword is a likely bug: the seeded defects of the
# benchmark and the bug classes the review prompt names (wrong comparison, off-by-one, inverted
# condition). A token counts when it, or what the model expected instead, is one of these.
_SWAPPABLE = re.compile(
    r"^(==|!=|<=|>=|<|>|\+|-|\*|/|//|%|\+=|-=|\*=|&&|\|\||!|&|\||and|or|not|is|in|\d+"
    r"|True|False|None|true|false|null|nil|if|elif|else)$"
)
# How much likelier the model's own choice must be than the token written (natural log: e^4 ≈ 55×).
SURPRISE_GAP = 4.0
_NEGATIONS = ("not", "!")
_WORD = re.compile(r"\w")
_LETTER = re.compile(r"[^\W\d]")


def _worth_swapping(text: str, score, written: str, expected: str) -> bool:
    """An operator, constant or keyword the model would have written differently; or a missing
    negation. Not a piece of a longer name (`is` of `is_prime`), and not a name the model would
    have replaced by a constant or a new statement (`n` → `False`, `limit` → `if`): a 270M model
    guessing another statement is no sign of a bug."""
    start = score.offset + len(score.text) - len(score.text.lstrip())
    end = start + len(written)
    before = text[start - 1] if 0 < start <= len(text) else ""
    after = text[end] if 0 <= end < len(text) else ""
    glued = (_WORD.match(before) and _WORD.match(written[0])) or (
        _WORD.match(after) and _WORD.match(written[-1])
    )
    if glued:
        return False
    if _SWAPPABLE.match(written) or expected in _NEGATIONS:
        return True
    # a token of operators, digits and punctuation together (`!='`, `1)`) swapped for one
    return not _LETTER.search(written) and bool(_SWAPPABLE.match(expected))


@dataclass
class Candidate:
    """A line where the model expected another operator, constant or keyword."""

    line: int  # 0-based file line
    written: str
    expected: str
    gap: float  # log-prob of the model's choice minus that of the written token
    replacement: str | None  # the line with the expected token in place

    def message(self) -> str:
        return (
            f"`{self.written.strip()}` is unexpected here; the model expected "
            f"`{self.expected.strip()}` ({math.exp(min(self.gap, 50)):.0f}× likelier). "
            "Check the operator or constant."
        )


def prose_spans(text: str, language: str) -> list[tuple[int, int]]:
    """Character spans of the comments and strings of `text` (tree-sitter): prose, where an
    unexpected word is no bug."""
    try:
        tree = _parse(text, language)
    except ReviewError:
        return []
    data = text.encode("utf-8", errors="surrogatepass")
    spans: list[tuple[int, int]] = []

    def char(byte: int) -> int:
        return len(data[:byte].decode("utf-8", errors="surrogatepass"))

    def visit(node: Node) -> None:
        if "comment" in node.type or node.type in (
            "string",
            "template_string",
            "raw_string_literal",
        ):
            spans.append((char(node.start_byte), char(node.end_byte)))
            return
        for child in node.children:
            visit(child)

    visit(tree.root_node)
    return spans


def candidates(
    unit: Unit, scores: list, limit: int, any_token: bool = False, language: str = "python"
) -> list[Candidate]:
    """The `limit` lines of the unit whose most surprising operator/constant token (any token
    with `any_token`) is furthest below the model's own choice (by at least SURPRISE_GAP);
    tokens in comments and strings do not count."""
    best: dict[int, Candidate] = {}
    prose = prose_spans(unit.text, language)
    for score in scores:
        if score.offset >= len(unit.text):
            continue  # past the reviewed code (what the model saw after it)
        if any(start <= score.offset < end for start, end in prose):
            continue
        written, expected = score.text.strip(), score.expected.strip()
        if not written or written == expected:
            continue
        if not any_token and not _worth_swapping(unit.text, score, written, expected):
            continue
        gap = score.expected_logprob - score.logprob
        if gap < SURPRISE_GAP:
            continue
        start = score.offset + len(score.text) - len(score.text.lstrip())
        line = unit.text.count("\n", 0, start)
        if line in best and best[line].gap >= gap:
            continue
        swapped = unit.text[:start] + expected + unit.text[start + len(written) :]
        lines = swapped.split("\n")
        replacement = lines[line] if expected and line < len(lines) else None
        best[line] = Candidate(unit.start_line + line, written, expected, gap, replacement)
    return sorted(best.values(), key=lambda c: -c.gap)[:limit]


def review_unit(
    engine: Engine,
    unit: Unit,
    text: str,
    language: str,
    flagged_lines: set[int],
    max_per_unit: int,
    cancelled: Callable[[], bool],
) -> UnitReview | None:
    """Ask the model about one unit and filter its answer; None when cancelled meanwhile.

    With an engine that scores tokens (the local llama.cpp one), the comments are grounded in
    the model's own predictions: the lines where it expected another operator or constant are
    the only lines the JSON answer may name, and each such line gets a comment (the model's
    message when it survives the filters, else what the model expected there). Engines without
    scoring get the plain schema-constrained review.
    """
    found: list[Candidate] | None = None
    if isinstance(engine, TokenScorer):
        scores = engine.score(f"# {language}\n", unit.text, cancelled)
        if cancelled():
            return None
        if scores is not None:
            found = candidates(unit, scores, max_per_unit, language=language)
    request = review_request(unit, language, max_per_unit)
    if found is not None:
        if not found:
            return UnitReview(unit, "", "", [], {}, "stop", 0.0)
        request = grounded_request(unit, language, found)
    generation = engine.generate(request, cancelled)
    if generation.stop_reason == "cancelled":
        return None
    comments, dropped = parse_comments(generation.text, unit)
    if generation.stop_reason in ("max_tokens", "time", "context") and not comments:
        dropped[f"answer cut ({generation.stop_reason})"] = 1
    kept, filtered = filter_comments(comments, text.split("\n"), flagged_lines, max_per_unit)
    for reason, count in filtered.items():
        dropped[reason] = dropped.get(reason, 0) + count
    if found is not None:
        kept = _merge(kept, found, text, language, flagged_lines)
    for comment in kept:
        comment.unit = unit.key
        map_range(text, language, comment)
    prompt = request.messages[0]["content"] if request.messages else request.prompt
    return UnitReview(
        unit,
        prompt,
        generation.text,
        kept,
        dropped,
        generation.stop_reason,
        generation.prompt_ms + generation.generate_ms,
    )


def grounded_request(unit: Unit, language: str, found: list[Candidate]) -> GenerationRequest:
    """The review question with the model's surprises as facts; `line` limited to them."""
    request = review_request(unit, language, len(found))
    facts = "\n".join(
        f"- line {c.line + 1}: `{c.written.strip()}` written, `{c.expected.strip()}` expected"
        for c in found
    )
    request.messages[0]["content"] += f"\n\nSuspicious tokens:\n{facts}"
    items = request.json_schema["properties"]["comments"]["items"]["properties"]
    items["line"] = {"enum": sorted(c.line + 1 for c in found)}
    return request


def _merge(
    kept: list[Comment], found: list[Candidate], text: str, language: str, flagged: set[int]
) -> list[Comment]:
    """One comment per candidate line: the model's if it wrote one there, else the surprise."""
    by_line = {comment.line: comment for comment in kept}
    merged = []
    for candidate in found:
        if candidate.line in flagged:
            continue
        comment = by_line.get(candidate.line) or Comment(
            candidate.line, "warning", candidate.message()
        )
        if comment.replacement is None or apply_replacement(text, language, comment) is None:
            comment.replacement = candidate.replacement
            if apply_replacement(text, language, comment) is None:
                comment.replacement = None
        merged.append(comment)
    return sorted(merged, key=lambda c: c.line)


def review_units(
    engine: Engine,
    units: list[Unit],
    text: str,
    language: str,
    flagged_lines: set[int],
    max_per_unit: int,
    cancelled: Callable[[], bool],
) -> tuple[list[UnitReview], list[Unit]]:
    """Review units in order until done or cancelled: (reviews, units still to do).

    Runs on the model thread. When a completion is waiting, `cancelled()` turns true: the unit
    under way is dropped (its prompt stays in the generation context's cache) and the caller
    queues the rest again behind the completion.
    """
    done: list[UnitReview] = []
    for index, unit in enumerate(units):
        if cancelled():
            return done, units[index:]
        result = review_unit(engine, unit, text, language, flagged_lines, max_per_unit, cancelled)
        if result is None:
            return done, units[index:]
        done.append(result)
    return done, []
