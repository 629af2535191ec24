"""Turn what the model wrote into what the editor should show, or into nothing.

The peers' users complain most about suggestions that repeat the code below the cursor, that
close a bracket the line already closes, and that are too small to be worth a glance; this module
removes those. For multi-line suggestions tree-sitter picks the longest run of whole lines that
does not add parse errors to the document, so a suggestion cut by the token cap never ends in the
middle of a statement. A suggestion is also cut where it starts repeating its own lines (a
model stuck in a loop), and a one-line suggestion that would turn the statement being typed into
a syntax error is dropped (see statement.py), while one that finishes the statement is shown
however short it is.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from hintwise.lsp_server.code.documents import Document
from hintwise.lsp_server.code.syntax import count_errors
from hintwise.lsp_server.completion import statement
from hintwise.lsp_server.completion.context import (
    CursorContext,
    bracket_delta,
    bracket_scan,
    indentation,
    next_code_line,
    opens_block,
    reaches,
    stop_rule,
)


@dataclass(frozen=True)
class Finished:
    text: str | None  # None: show nothing
    reason: str  # what was done, for --json and the logs
    repeated: bool = False  # dropped because it copied code already next to the cursor
    broken: bool = False  # dropped because it would turn the line into a syntax error

    @property
    def worth_a_second_try(self) -> bool:
        """Dropped for what the model's runner-up first token may well not do."""
        return self.repeated or self.broken


def _strip_line_suffix_overlap(first_line: str, line_suffix: str) -> str:
    """`foo("x"|)` with suggestion `"y")` → `"y"`: the line already has the closing part."""
    rest = line_suffix.strip()
    if rest and first_line.rstrip().endswith(rest):
        return first_line.rstrip()[: -len(rest)]
    return first_line


def _balance_brackets(line_prefix: str, first_line: str) -> str:
    """Cut a single line where it closes more brackets than the current line has open."""
    _, underflow = bracket_scan(first_line, max(0, bracket_delta(line_prefix)))
    return first_line if underflow is None else first_line[:underflow]


def _repeat_start(lines: list[str], line_prefix: str, next_lines: tuple[str, ...]) -> int | None:
    """Index of the suggestion line from which it re-writes the code that follows the cursor.

    A run counts when it holds real code (a lone `}` matches too much to mean anything) and
    either reaches the end of the suggestion or spans at least two lines.
    """
    following = [line.strip() for line in next_lines if line.strip()]
    if not following:
        return None
    whole = [(line_prefix + lines[0]).strip(), *(line.strip() for line in lines[1:])]
    for start in range(len(whole)):
        matched = 0
        while (
            start + matched < len(whole)
            and matched < len(following)
            and whole[start + matched] == following[matched]
        ):
            matched += 1
        if not matched:
            continue
        run = "".join(whole[start : start + matched])
        reaches_end = start + matched == len(whole)
        if any(ch.isalnum() for ch in run) and (reaches_end or matched >= 2):
            return start
    return None


_FLOW = re.compile(r"(pass|break|continue|return|raise)\b")


def _self_repeat(lines: list[str], line_prefix: str) -> int:
    """How many leading lines to keep: up to the first line where the suggestion starts
    writing itself again.

    A model stuck in a loop writes `print(x, y, z)` again and again, or the same two lines
    over and over. Only lines of real code count (a blank line or a lone `}` or `)` repeats
    legitimately); the same line at another depth is another statement. Real code does repeat
    single lines (`except ValueError:` after two `try` blocks, `print()`), so a line counts
    only when it repeats the line just before it, or when the line after it repeats too and
    is more than a flow statement (`except ValueError:` then `pass`, twice, is real code).
    """
    whole = [(line_prefix + lines[0]).rstrip(), *(line.rstrip() for line in lines[1:])]
    code = [index for index, line in enumerate(whole) if any(ch.isalnum() for ch in line)]
    first_seen: dict[str, int] = {}
    for position, index in enumerate(code):
        line = whole[index]
        earlier = first_seen.setdefault(line, position)
        again = position and whole[code[position - 1]] == line
        follows = whole[code[position + 1]] if earlier < position < len(code) - 1 else ""
        cycle = bool(follows) and follows == whole[code[earlier + 1]]
        if again or (cycle and not _FLOW.match(follows.strip())):
            return index
    return len(lines)


def _gap_fill(context: CursorContext, lines: list[str], ended: bool) -> list[str]:
    """In a gap inside a body: the lines before the one that reaches the code below the cursor,
    when the suggestion reaches it; all of them when it ended by itself (left its block, a blank
    line, end of text); else, cut by the token or line cap, only its first statement (as a
    single-line suggestion would have been, but whole: `call(` with its arguments, `if x:`
    with its body)."""
    next_code = next_code_line(context.next_lines)
    for index, line in enumerate(lines[1:], start=1):
        if reaches(line, next_code):
            return lines[:index]
    first = context.line_prefix + lines[0]
    following = next((line for line in context.next_lines if line.strip()), "")
    if opens_block(first, context.language_id) and indentation(following) > indentation(first):
        return lines[:1]  # a block header whose body is already below: the header alone
    if ended:
        return lines
    return first_statement(context.line_prefix, lines)


def first_statement(line_prefix: str, lines: list[str]) -> list[str]:
    """The leading lines that make the first statement: up to the next line that is back at the
    first line's indentation with every bracket closed."""
    start = indentation(line_prefix + lines[0])
    depth = bracket_delta(lines[0])
    for index, line in enumerate(lines[1:], start=1):
        if line.strip() and depth <= 0 and indentation(line) <= start:
            return lines[:index]
        depth += bracket_delta(line)
    return lines


def _syntactic_lines(document: Document, offset: int, lines: list[str]) -> list[str]:
    """The longest leading run of lines that adds no parse error to the document."""
    tree = document.syntax.tree
    if tree is None or len(lines) <= 1:
        return lines
    baseline = count_errors(tree.root_node)
    text = document.text
    for count in range(len(lines), 0, -1):
        candidate = "\n".join(lines[:count])
        variant = document.syntax.parse_variant(text[:offset] + candidate + text[offset:])
        if variant is None or count_errors(variant.root_node) <= baseline:
            return lines[:count]
    return lines[:1]


def _adds_errors(document: Document, offset: int, inserted: str) -> bool:
    """Whether inserting `inserted` at `offset` gives the file more parse errors (an
    incremental what-if parse: the file stays as it is)."""
    tree = document.syntax.tree
    variant = document.syntax.edited_variant(offset, offset, inserted)
    if tree is None or variant is None:
        return False
    return count_errors(variant.root_node) > count_errors(tree.root_node)


def _line_above(context: CursorContext, document: Document, line: str) -> str | Finished:
    """A line asked for at the start of a line of code, to go above it: with a line break and
    the indentation the code had, or the reason it is not worth showing."""
    if (context.line_prefix + line).strip() == context.line_suffix.strip():
        return Finished(None, "repeats the code on this line", repeated=True)
    if context.indent_blocks and opens_block(line, context.language_id):
        # The code right of the cursor would become its body, at the wrong depth.
        return Finished(None, "the new line opens a block with no body", broken=True)
    if not line.strip():
        return line
    text = line + "\n" + context.line_prefix  # the code right of the cursor keeps its place
    if _adds_errors(document, context.offset, text):
        return Finished(None, "the new line would not parse", broken=True)
    return text


def _multi(
    context: CursorContext,
    document: Document,
    text: str,
    truncated: bool,
    cut: int | None,
    max_lines: int,
) -> str | Finished:
    """A multi-line suggestion: whole lines, no repeats, no added parse error."""
    lines = text.rstrip().split("\n")
    # A cap hit mid-line leaves a fragment: keep only whole lines (but never nothing).
    if truncated and len(lines) > 1 and cut is None:
        lines = lines[:-1]
    ended = not truncated and len(lines) < max_lines
    lines = lines[: _self_repeat(lines, context.line_prefix)]
    if context.fills_gap():
        lines = _gap_fill(context, lines, ended=ended)
    repeat = _repeat_start(lines, context.line_prefix, context.next_lines)
    if repeat == 0:
        return Finished(None, "repeats the code below the cursor", repeated=True)
    if repeat is not None:
        lines = lines[:repeat]
    lines[0] = _strip_line_suffix_overlap(lines[0], context.line_suffix)
    lines = _syntactic_lines(document, context.offset, [line.rstrip() for line in lines])
    while lines and not lines[-1].strip():
        lines.pop()
    return "\n".join(lines)


def _single(context: CursorContext, text: str) -> str | Finished:
    text = _strip_line_suffix_overlap(text.rstrip(), context.line_suffix)
    text = _balance_brackets(context.line_prefix, text)
    if _repeat_start([text], context.line_prefix, context.next_lines) == 0:
        return Finished(None, "repeats the next line", repeated=True)
    return text


def finish(
    context: CursorContext,
    document: Document,
    raw: str,
    *,
    max_lines: int,
    min_chars: int,
    truncated: bool = False,
) -> Finished:
    """Clean the raw model text for display at the cursor described by `context`."""
    if not raw.strip():
        return Finished(None, "empty suggestion")
    cut = stop_rule(context, max_lines)(raw)
    text = raw[:cut] if cut is not None else raw
    if context.mode == "multi":
        shaped = _multi(context, document, text, truncated, cut, max_lines)
    elif context.inserts_line:
        shaped = _line_above(context, document, text.rstrip())
    else:
        shaped = _single(context, text)
    if isinstance(shaped, Finished):
        return shaped
    text = shaped
    first_line = (context.line_prefix + text.split("\n", 1)[0]).strip()
    if not context.line_prefix.strip() and first_line == context.previous_line.strip():
        return Finished(None, "repeats the previous line", repeated=True)
    judged = text.strip() and not context.inserts_line  # a line above was parsed whole
    line = statement.check(context, document, text) if judged else statement.LineCheck()
    if line.breaks:
        return Finished(None, "would make the line a syntax error", broken=True)
    if len(text.strip()) < min_chars and not line.completes:
        return Finished(None, f"fewer than {min_chars} characters")
    return Finished(text, "ok")
