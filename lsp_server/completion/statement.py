"""Does a one-line suggestion break the statement being typed, or complete it?

Tree-sitter answers both by counting parse errors in what-if versions of the document. A line
being typed is usually incomplete (`return total(` waits for its argument and `)`), and an
incomplete line is no reason to hide a suggestion; so both the line as it is and the line with
the suggestion are first closed the way the user would go on to close them: open quotes and
brackets closed in order, an operand after a trailing operator (`if (a and` continued on the
next line), a `:` on a Python block header (`for x in values`). A suggestion
*breaks* the statement when, closed that way, the line with it has more errors than the line
without it (`return t` + ` = total / len(values)`); no closing fixes that.

A suggestion *completes* the line when nothing is right of the cursor, it leaves no quote or
bracket open, and the document has fewer errors with it than without it: `)` after `foo(a`,
`:` after `else`, `e:` after `except ValueError as `. Those are worth showing however short.
"""

from __future__ import annotations

from dataclasses import dataclass

from tree_sitter import Node

from hintwise.lsp_server.code.documents import Document
from hintwise.lsp_server.code.syntax import count_errors
from hintwise.lsp_server.completion.context import CursorContext

_PAIRS = {"(": ")", "[": "]", "{": "}"}
_LINE_COMMENT = {"python": "#"}
_PYTHON_BLOCKS = frozenset(
    [
        "if",
        "elif",
        "else",
        "for",
        "while",
        "with",
        "def",
        "class",
        "try",
        "except",
        "finally",
        "async",
        "match",
        "case",
    ]
)


@dataclass(frozen=True)
class LineCheck:
    breaks: bool = False  # the statement becomes a syntax error that no closing repairs
    completes: bool = False  # the statement was unfinished and the suggestion finishes it


def closers(line: str, language_id: str = "python") -> str:
    """What closes the quote and brackets `line` leaves open, innermost first."""
    comment = _LINE_COMMENT.get(language_id, "//")
    stack: list[str] = []
    quote = ""
    index = 0
    while index < len(line):
        char = line[index]
        if quote:
            if char == "\\":
                index += 1
            elif char == quote:
                quote = ""
        elif char in "\"'`":
            quote = char
        elif line.startswith(comment, index):
            break
        elif char in _PAIRS:
            stack.append(_PAIRS[char])
        elif char in ")]}" and stack and stack[-1] == char:
            stack.pop()
        index += 1
    return quote + "".join(reversed(stack))


def _endings(line: str, language_id: str) -> list[str]:
    """The ways the user could go on to finish `line` that are tried, likeliest first: close
    what is open; an operand after a trailing operator (`if (a and` goes on on the next line),
    written as a placeholder name; a `:` on a Python block header."""
    closing = closers(line, language_id)
    endings = [closing, " _" + closing]
    words = line.split(None, 1)
    if (
        language_id == "python"
        and words
        and words[0].rstrip(":") in _PYTHON_BLOCKS
        and not (line + closing).rstrip().endswith(":")
    ):
        endings += [closing + ":", " _" + closing + ":"]
    return endings


def _error_within(node: Node, start: int, end: int) -> bool:
    """Is an ERROR or MISSING node within bytes `start:end` (or around them)?"""
    if node.end_byte < start or node.start_byte > end:
        return False
    if node.is_error or node.is_missing:
        return True
    return node.has_error and any(_error_within(child, start, end) for child in node.children)


class _Errors:
    """Error counts of what-if versions of one document line, parsed incrementally."""

    def __init__(self, document: Document, start: int, end: int):
        self.document, self.start, self.end = document, start, end
        self.start_byte = len(document.text[:start].encode("utf-8", errors="surrogatepass"))
        self.seen: dict[str, tuple[int, bool]] = {}

    def _judge(self, line: str) -> tuple[int, bool]:
        """Errors in the document with `line` in place, and whether one touches the line."""
        if line not in self.seen:
            tree = self.document.syntax.edited_variant(self.start, self.end, line)
            if tree is None:
                self.seen[line] = (0, False)
            else:
                end_byte = self.start_byte + len(line.encode("utf-8", errors="surrogatepass"))
                touched = _error_within(tree.root_node, self.start_byte, end_byte)
                self.seen[line] = (count_errors(tree.root_node), touched)
        return self.seen[line]

    def __call__(self, line: str) -> int:
        return self._judge(line)[0]

    def closed(self, line: str, language_id: str, enough: int = 0) -> tuple[int, bool]:
        """The fewest errors among the ways of finishing `line`, and whether an error touches
        the line that way; the search stops at the first way with no more than `enough`
        errors (usually the first way tried)."""
        best = (0, False)
        for number, ending in enumerate(_endings(line, language_id)):
            judged = self._judge(line + ending)
            best = judged if number == 0 or judged[0] < best[0] else best
            if best[0] <= enough:
                break
        return best


def check(context: CursorContext, document: Document, text: str) -> LineCheck:
    """Judge a one-line suggestion `text` at the cursor of `context` (no tree: no judgement).

    Only a line that parses cleanly once closed can be broken: inside a bracket left open
    above it, say, error recovery spans many lines and error counts say little about the line.
    """
    tree = document.syntax.tree
    if tree is None or "\n" in text or document.syntax.text != document.text:
        return LineCheck()
    start = context.offset - len(context.line_prefix)
    errors = _Errors(document, start, context.offset + len(context.line_suffix))
    before = context.line_prefix + context.line_suffix
    after = context.line_prefix + text + context.line_suffix
    language = context.language_id
    baseline, unclear = errors.closed(before, language)
    breaks = not unclear and errors.closed(after, language, enough=baseline)[0] > baseline
    completes = (
        not breaks
        and not context.line_suffix.strip()
        and not closers(after, language)
        and errors(after) < count_errors(tree.root_node)
    )
    return LineCheck(breaks, completes)
