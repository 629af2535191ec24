"""What the model sees and what kind of answer to ask for, at one cursor position.

`build` cuts the prefix and suffix windows (in characters, at line boundaries; the engine then
sizes them in tokens), reads the syntax state from tree-sitter, and decides between no
completion, a single line, and several lines. `stop_rule` turns that decision into the check the
engine runs after every token, so a single-line suggestion stops at its newline instead of
spending the rest of its token budget.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

from hintwise.lsp_server.code.documents import Document
from hintwise.lsp_server.code.syntax import INDENT_BLOCK_LANGUAGES, SyntaxState, state_at
from hintwise.lsp_server.config import CompletionSettings

Mode = Literal["none", "single", "multi"]
GAP = "gap: "  # reason prefix: several lines only when they lead back to the code below

# Generous characters per token when cutting the character window the engine then measures.
CHARS_PER_TOKEN = 8
SUFFIX_MIN_CHARS = 2000
NEXT_LINES = 8

_BRACE_OPENERS = ("{", "(", "[", "=>")
LINE_COMMENTS = {"python": ("#",)}
C_COMMENTS = ("//", "/*")  # the engine precomputes the tokens starting with these
BRACE_LANGUAGES = {
    "javascript",
    "javascriptreact",
    "typescript",
    "typescriptreact",
    "go",
    "rust",
    "java",
    "c",
    "cpp",
}
_TRAILING_COMMENT = re.compile(r"\s*(#|//).*$")


@dataclass(frozen=True)
class CursorContext:
    language_id: str
    offset: int
    prefix_start: int  # offset of the first character of `prefix` (always a line start)
    prefix: str
    suffix: str
    line_prefix: str
    line_suffix: str
    previous_line: str  # nearest non-blank line above the cursor line
    next_lines: tuple[str, ...]  # lines below the cursor line
    syntax: SyntaxState
    mode: Mode
    reason: str  # why this mode (shown by `hintwise complete --json`)

    @property
    def indent_blocks(self) -> bool:
        return self.language_id in INDENT_BLOCK_LANGUAGES

    @property
    def inserts_line(self) -> bool:
        """Asked for at the start of a line that has code: the answer is a new line above it."""
        return (
            self.mode != "none" and not self.line_prefix.strip() and bool(self.line_suffix.strip())
        )

    def comment_markers(self) -> tuple[str, ...]:
        if self.language_id in LINE_COMMENTS:
            return LINE_COMMENTS[self.language_id]
        return C_COMMENTS if self.language_id in BRACE_LANGUAGES else ()

    def needs_indent(self) -> bool:
        """Column 0 of an empty line inside an indented Python block: what an editor's
        auto-indent would have indented. The suggestion must start indented (the model picks
        how deep), not with a top-level statement that would end the function."""
        if not self.indent_blocks or self.line_prefix:
            return False
        if self.line_suffix.strip():  # a new line above this one: indented like it
            return self.line_suffix[:1] in (" ", "\t")
        following = next((line for line in self.next_lines if line.strip()), "")
        if self.previous_line and opens_block(self.previous_line, self.language_id):
            return True
        return indentation(self.previous_line) > 0 and indentation(following) > 0

    def fills_gap(self) -> bool:
        """Several lines only if the suggestion comes back to the code below the cursor."""
        return self.mode == "multi" and self.reason.startswith(GAP)

    def indent_char(self) -> str:
        """The file's indentation character here (a tab or a space), from the lines around."""
        for line in (self.previous_line, *self.next_lines):
            if line[:1] in (" ", "\t"):
                return line[0]
        return " "

    def code_expected(self) -> bool:
        """An empty line among code: a comment there is filler, not a suggestion.

        Not inside a comment or string, and not continuing a comment block the user is writing.
        """
        if self.line_prefix.strip() or self.syntax.in_comment or self.syntax.in_string:
            return False
        markers = self.comment_markers()
        return bool(markers) and not self.previous_line.lstrip().startswith(markers)


def indentation(line: str) -> int:
    """Indentation width, tabs counted as 4 columns."""
    width = 0
    for char in line:
        if char == " ":
            width += 1
        elif char == "\t":
            width += 4
        else:
            break
    return width


def _code_part(line: str) -> str:
    return _TRAILING_COMMENT.sub("", line).rstrip()


def opens_block(line: str, language_id: str) -> bool:
    code = _code_part(line)
    if language_id in INDENT_BLOCK_LANGUAGES:
        return code.endswith(":")
    return code.endswith(_BRACE_OPENERS) or code.endswith(":")


def _line_start(text: str, offset: int) -> int:
    return max(text.rfind("\n", 0, offset), text.rfind("\r", 0, offset)) + 1


def _prefix_start(text: str, offset: int, anchor: int | None, max_chars: int) -> int:
    """Keep the caller's anchor while it is usable, else start at a line about max_chars back."""
    if (
        anchor is not None
        and 0 <= anchor <= offset
        and offset - anchor <= max_chars
        and (anchor == 0 or text[anchor - 1] in "\r\n")
    ):
        return anchor
    if offset <= max_chars:
        return 0
    start = text.find("\n", offset - max_chars) + 1
    return start if 0 < start <= offset else _line_start(text, offset)


def _refusal(
    document: Document,
    line_prefix: str,
    line_suffix: str,
    settings: CompletionSettings,
    automatic: bool,
) -> str | None:
    """Why no completion is wanted here, or None."""
    if document.looks_binary():
        return "binary content"
    right = line_suffix.strip()
    if automatic:
        if right and not line_prefix.strip():
            return "cursor before the code on this line"
        if len(right) > settings.max_chars_right:
            return f"more than {settings.max_chars_right} characters right of the cursor"
        if line_suffix[:1].isalnum() or line_suffix[:1] == "_":
            return "cursor inside a word"
    return None


def _block_shape(
    language_id: str, line_prefix: str, previous_line: str, next_lines: tuple[str, ...]
) -> tuple[Mode, str]:
    """One line or several, from where the cursor is in its block (nothing right of it).

    Mode "multi" with a reason starting "gap" asks for several lines only when the model's
    continuation comes back to the code below the cursor (see `fills_gap`): inside a body that
    goes on, a prefix-only model cannot know how many lines are missing, but when it writes the
    next line of the document after a few of its own, those few are its answer.
    """
    following = next((line for line in next_lines if line.strip()), None)
    if line_prefix.strip():
        if not opens_block(line_prefix, language_id):
            return "single", "inside a line"
        if following is not None and indentation(following) > indentation(line_prefix):
            return "single", "the block already has a body"
        return "multi", "end of a line that opens a block"
    if previous_line and opens_block(previous_line, language_id):
        if following is not None and indentation(following) > indentation(previous_line):
            return "multi", GAP + "empty line at the start of a block that has a body"
        return "multi", "empty line in an empty block"
    if following is None:
        return "multi", "empty line at the end of the file"
    # At column 0 (no auto-indent) the cursor is in the previous line's block.
    depth = indentation(line_prefix) if line_prefix else indentation(previous_line)
    if indentation(following) < depth or following.strip()[:1] in ")]}":
        return "multi", "empty line at the end of a block"
    return "multi", GAP + "empty line inside a block"


def _decide(
    document: Document,
    line_prefix: str,
    line_suffix: str,
    previous_line: str,
    next_lines: tuple[str, ...],
    settings: CompletionSettings,
    automatic: bool,
) -> tuple[Mode, str]:
    refusal = _refusal(document, line_prefix, line_suffix, settings, automatic)
    if refusal is not None:
        return "none", refusal
    if line_suffix.strip() and not line_prefix.strip():
        return "single", "a new line above the code on this line (asked for at its start)"
    if settings.multiline == "never":
        return "single", "multi-line suggestions are off"
    if settings.multiline == "always":
        return "multi", "multi-line suggestions always on"
    if line_suffix.strip():
        return "single", "text right of the cursor"
    return _block_shape(document.language_id, line_prefix, previous_line, next_lines)


def build(
    document: Document,
    offset: int,
    settings: CompletionSettings,
    anchor: int | None = None,
    automatic: bool = True,
) -> CursorContext:
    """The context for a completion at character `offset` of `document`."""
    text = document.text
    offset = max(0, min(offset, len(text)))
    start = _prefix_start(text, offset, anchor, settings.prefix_tokens * CHARS_PER_TOKEN)
    suffix_chars = max(SUFFIX_MIN_CHARS, settings.suffix_tokens * CHARS_PER_TOKEN)
    suffix = text[offset : offset + suffix_chars]
    line_start = _line_start(text, offset)
    line_prefix = text[line_start:offset]
    line_suffix = re.split(r"\r\n|\r|\n", suffix, maxsplit=1)[0]
    below = re.split(r"\r\n|\r|\n", suffix)[1 : NEXT_LINES + 1]
    above = text[max(0, line_start - 4000) : line_start].splitlines()
    previous_line = next((line for line in reversed(above) if line.strip()), "")
    tree = document.syntax.update(text)
    syntax = state_at(tree, len(text[:offset].encode("utf-8", errors="surrogatepass")))
    mode, reason = _decide(
        document, line_prefix, line_suffix, previous_line, tuple(below), settings, automatic
    )
    return CursorContext(
        language_id=document.language_id,
        offset=offset,
        prefix_start=start,
        prefix=text[start:offset],
        suffix=suffix,
        line_prefix=line_prefix,
        line_suffix=line_suffix,
        previous_line=previous_line,
        next_lines=tuple(below),
        syntax=syntax,
        mode=mode,
        reason=reason,
    )


def _block_floor(context: CursorContext, first_line: str) -> int:
    """Lines of a multi-line suggestion must stay indented at least this deep (indent languages):
    deeper than a block opener the cursor ends, else as deep as the suggestion's first line
    (a suggestion stays inside the block it starts in)."""
    if context.line_prefix.strip():
        return indentation(context.line_prefix) + 1
    return indentation(context.line_prefix + first_line)


def bracket_scan(text: str, depth: int = 0) -> tuple[int, int | None]:
    """Bracket depth after `text` (quotes skipped, roughly), and the index where it first went
    below zero, if it did: the point where the text closes something opened before it."""
    quote = ""
    underflow = None
    for index, char in enumerate(text):
        if quote:
            if char == quote:
                quote = ""
        elif char in "\"'`":
            quote = char
        elif char in "([{":
            depth += 1
        elif char in ")]}":
            depth -= 1
            if depth < 0 and underflow is None:
                underflow = index
    return depth, underflow


def bracket_delta(line: str) -> int:
    return bracket_scan(line)[0]


def next_code_line(next_lines: tuple[str, ...]) -> str:
    """The first non-blank line below the cursor, stripped ("" when none)."""
    return next((line.strip() for line in next_lines if line.strip()), "")


def reaches(line: str, next_code: str) -> bool:
    """A generated line that is the code already below the cursor: the suggestion has filled
    the gap and is now re-writing what follows, so it ends before this line. Only lines with a
    word in them count (a lone `)` or `}` says little about where the gap ends)."""
    return bool(next_code) and line.strip() == next_code and any(c.isalnum() for c in next_code)


def _single_stop(text: str) -> int | None:
    newline = text.find("\n")
    return newline if newline >= 0 else None


@dataclass(frozen=True)
class _BlockStop:
    """Where a multi-line suggestion ends: where it leaves its block (dedent, or a closing
    bracket it did not open), after a blank run, at max_lines, or where it reaches the code
    already below the cursor (kept in a gap, for `finish` to see that it was reached)."""

    context: CursorContext
    max_lines: int
    next_code: str
    blank_limit: int
    keep_reached: bool

    def __call__(self, text: str) -> int | None:
        lines = text.split("\n")
        if len(lines) > 1 and reaches(self.context.line_prefix + lines[0], self.next_code):
            return len(lines[0])  # the whole suggestion copies the next line: no need to go on
        floor = _block_floor(self.context, lines[0])
        position = len(lines[0])
        depth = bracket_delta(lines[0])
        blank_run = 0
        kept = 1 if lines[0].strip() else 0
        for index, line in enumerate(lines[1:], start=1):
            finished = index < len(lines) - 1
            if not line.strip():
                blank_run += 1 if finished else 0
                if blank_run >= self.blank_limit:
                    return position
                position += 1 + len(line)
                continue
            blank_run = 0
            if finished and reaches(line, self.next_code):
                return position + 1 + len(line) if self.keep_reached else position
            depth += bracket_delta(line)
            if self._leaves_block(line, floor, depth):
                return position
            kept += 1 if finished else 0
            if kept >= self.max_lines:
                return position + 1 + len(line)
            position += 1 + len(line)
        return None

    def _leaves_block(self, line: str, floor: int, depth: int) -> bool:
        if self.context.indent_blocks:
            return indentation(line) < floor
        return depth < 0


def stop_rule(context: CursorContext, max_lines: int) -> Callable[[str], int | None]:
    """The check run after each generated token: where to cut the text, or None to go on."""
    if context.mode != "multi":
        return _single_stop
    # A gap whose next line is blank is a paragraph: a blank line ends it. Elsewhere (an empty
    # body, the end of a file) a body may hold paragraphs: two blank lines end it.
    paragraph = bool(context.next_lines[:1]) and not context.next_lines[0].strip()
    return _BlockStop(
        context,
        max_lines,
        next_code_line(context.next_lines),
        blank_limit=1 if paragraph else 2,
        keep_reached=context.fills_gap(),
    )
