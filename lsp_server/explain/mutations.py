"""Candidate one-line edits of Python code, the classic mutation operators of automated program
repair: a swapped comparison or arithmetic operator, `and`/`or`, a dropped or added `not`, an
integer constant off by one, the wrong one of two names in scope, `min`/`max`-style function
swaps, a dropped term, clause, call or statement. Each edit changes one line and is kept only
when the file still parses with it; explain/repair.py ranks them and re-runs the failing target
with each to find one that makes it pass.
"""

from __future__ import annotations

import ast
import io
import tokenize
from collections.abc import Iterator
from dataclasses import dataclass

_COMPARISONS = ("<", "<=", ">", ">=", "==", "!=")
_AUGMENTED = ("+=", "-=", "*=", "/=", "//=", "%=")
OPERATORS = {
    **{op: tuple(o for o in _COMPARISONS if o != op) for op in _COMPARISONS},
    **{op: (*(o for o in _AUGMENTED if o != op), "=") for op in _AUGMENTED},
    "+": ("-", "*"),
    "-": ("+",),
    "*": ("/", "+", "//", "**"),
    "/": ("//", "*"),
    "//": ("/", "%", "*"),
    "%": ("//",),
    "**": ("*",),
}
KEYWORDS = {
    "and": ("or",),
    "or": ("and",),
    "True": ("False",),
    "False": ("True",),
    "is": ("is not",),
    "in": ("not in",),
}
FUNCTION_GROUPS = (
    ("min", "max"),
    ("any", "all"),
    ("floor", "ceil"),
    ("lower", "upper", "swapcase", "title", "capitalize"),
    ("islower", "isupper"),
    ("startswith", "endswith"),
    ("append", "extend"),
    ("sorted", "reversed"),
    ("find", "rfind"),
    ("index", "rindex"),
    ("remove", "discard"),
    ("isdigit", "isalpha", "isalnum"),
    ("int", "round"),
)
FUNCTIONS = {
    name: tuple(n for n in group if n != name) for group in FUNCTION_GROUPS for name in group
}
MAX_EDITS = 600


@dataclass(frozen=True)
class Edit:
    """One line of the file as a candidate would have it."""

    line: int  # 0-based file line
    code: str  # the whole new line, indentation included; "" deletes the line
    kind: str  # operator, keyword, constant, name, function, string, negation, drop, delete
    column: int  # where the change starts on the line (to look up how surprising it was)


def edits(text: str, first: int, last: int) -> list[Edit]:
    """The edits of lines `first`..`last` (0-based) of the Python file `text` that still parse,
    without duplicates, in a stable order; never of `def` headers, decorators or docstrings."""
    try:
        tree = ast.parse(text)
    except (SyntaxError, ValueError):
        return []
    lines = text.split("\n")
    allowed = set(range(first, min(last, len(lines) - 1) + 1)) - _fixed_lines(tree)
    names = _variables(tree, first, last)
    strings = _strings(text, allowed)
    found: list[Edit] = []
    seen = {(line, lines[line]) for line in allowed}
    for edit in [*_token_edits(text, allowed, names, strings), *_tree_edits(tree, lines, allowed)]:
        if (edit.line, edit.code) in seen or not _parses(lines, edit):
            continue
        seen.add((edit.line, edit.code))
        found.append(edit)
        if len(found) >= MAX_EDITS:
            break
    return found


def apply(text: str, edit: Edit) -> str:
    """The file with the edit made."""
    lines = text.split("\n")
    new = [edit.code] if edit.code else []
    return "\n".join([*lines[: edit.line], *new, *lines[edit.line + 1 :]])


def _parses(lines: list[str], edit: Edit) -> bool:
    new = [edit.code] if edit.code else []
    try:
        ast.parse("\n".join([*lines[: edit.line], *new, *lines[edit.line + 1 :]]))
    except (SyntaxError, ValueError):
        return False
    return True


def _fixed_lines(tree: ast.Module) -> set[int]:
    """0-based lines no edit may touch: `def`/`class` headers, decorators, docstrings and
    asserts."""
    fixed: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Assert):  # weakening a check is no fix
            fixed.update(range(node.lineno - 1, node.end_lineno or node.lineno))
        if not isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
            continue
        top = min([node.lineno, *(d.lineno for d in node.decorator_list)])
        fixed.update(range(top - 1, node.body[0].lineno - 1))
        first = node.body[0]
        docstring = isinstance(first, ast.Expr) and isinstance(first.value, ast.Constant)
        if docstring and isinstance(first.value.value, str):  # type: ignore[attr-defined]
            fixed.update(range(first.lineno - 1, (first.end_lineno or first.lineno)))
    return fixed


def _variables(tree: ast.Module, first: int, last: int) -> set[str]:
    """Names bound in the lines (parameters, assignments, loop targets): what a swapped
    variable can be swapped with."""
    names: set[str] = set()
    for node in ast.walk(tree):
        line = getattr(node, "lineno", 0) - 1
        if not first <= line <= last:
            continue
        if isinstance(node, ast.arg):
            names.add(node.arg)
        elif isinstance(node, ast.Name) and isinstance(node.ctx, ast.Store):
            names.add(node.id)
    return names


def _strings(text: str, allowed: set[int]) -> list[str]:
    """Short one-line string literals on the lines: what a wrong literal can be swapped with."""
    found: list[str] = []
    for token in _tokens(text):
        short = "\n" not in token.string and len(token.string) <= 20
        if token.type == tokenize.STRING and token.start[0] - 1 in allowed and short:
            found.append(token.string)
    return list(dict.fromkeys(found))[:8]


def _tokens(text: str) -> list[tokenize.TokenInfo]:
    try:
        return list(tokenize.generate_tokens(io.StringIO(text).readline))
    except (tokenize.TokenError, SyntaxError):
        return []


def _constants(value: int) -> list[int]:
    """Off by one, or 0, 1 (and -1 for a 0)."""
    others = [value + 1, value - 1, 0, 1] if value > 0 else [1, -1]
    return [other for other in dict.fromkeys(others) if other != value]


def _replacements(
    token: tokenize.TokenInfo, before: str, names: set[str], strings: list[str]
) -> Iterator[tuple[str, str]]:
    """(kind, replacement) for one token; `before` is the previous token's text."""
    word = token.string
    if token.type == tokenize.OP:
        for other in OPERATORS.get(word, ()):
            yield "operator", other
    elif token.type == tokenize.NUMBER and word.isdigit():
        for number in _constants(int(word)):
            yield "constant", str(number)
    elif token.type == tokenize.STRING and word in strings:
        for other in (*strings, '""'):
            yield "string", other
    elif token.type == tokenize.NAME:
        for other in KEYWORDS.get(word, ()):
            yield "keyword", other
        if before != ".":
            for other in sorted(names - {word}) if word in names else ():
                yield "name", other
        for other in FUNCTIONS.get(word, ()):
            yield "function", other


def _token_edits(
    text: str, allowed: set[int], names: set[str], strings: list[str]
) -> Iterator[Edit]:
    lines = text.split("\n")
    before = ""
    for token in _tokens(text):
        row, start = token.start[0] - 1, token.start[1]
        if row in allowed and token.end[0] - 1 == row:
            line, end = lines[row], token.end[1]
            if token.string == "not":
                rest = line[end:].lstrip(" ")
                yield Edit(row, line[:start] + rest, "negation", start)
            for kind, other in _replacements(token, before, names, strings):
                yield Edit(row, line[:start] + other + line[end:], kind, start)
        if token.type not in (tokenize.NL, tokenize.COMMENT):
            before = token.string
    return


def _segment(lines: list[str], node: ast.AST) -> tuple[int, int, int] | None:
    """(0-based line, start column, end column) of a node on one line, else None."""
    line, end_line = getattr(node, "lineno", 0), getattr(node, "end_lineno", None)
    if line != end_line or line < 1:
        return None
    # AST columns count UTF-8 bytes; the lines are text.
    raw = lines[line - 1].encode()
    start = len(raw[: node.col_offset].decode(errors="replace"))  # type: ignore[attr-defined]
    end = len(raw[: node.end_col_offset].decode(errors="replace"))  # type: ignore[attr-defined]
    return line - 1, start, end


def _tree_edits(tree: ast.Module, lines: list[str], allowed: set[int]) -> Iterator[Edit]:
    """Dropped terms, clauses and calls, added `not`s and deleted statements."""
    for node in ast.walk(tree):
        where = _segment(lines, node)
        if where is None or where[0] not in allowed:
            continue
        row, start, end = where
        line = lines[row]

        def put(code: str, kind: str, at: int = start) -> Edit:
            return Edit(row, line[:start] + code + line[end:], kind, at)  # noqa: B023

        for part in _parts(node, lines):
            yield put(part, "drop")
        if isinstance(node, ast.If | ast.While) and _segment(lines, node.test):
            _, test_start, test_end = _segment(lines, node.test) or where
            test = line[test_start:test_end]
            yield Edit(row, f"{line[:test_start]}not ({test}){line[test_end:]}", "negation", start)
        if isinstance(node, ast.Return) and node.value is not None:
            value = _segment(lines, node.value)
            if value is not None:
                _, value_start, value_end = value
                negated = f"not ({line[value_start:value_end]})"
                yield Edit(row, line[:value_start] + negated + line[value_end:], "negation", start)
        if isinstance(node, ast.stmt) and not isinstance(node, _COMPOUND):
            yield Edit(row, "", "delete", start)


_COMPOUND = (
    ast.If,
    ast.For,
    ast.While,
    ast.With,
    ast.Try,
    ast.FunctionDef,
    ast.AsyncFunctionDef,
    ast.ClassDef,
)


def _parts(node: ast.AST, lines: list[str]) -> Iterator[str]:
    """What a node may be replaced by when one of its parts is excess: one side of a binary
    operation, the other clauses of `and`/`or`, the argument of a one-argument call."""
    line = lines[node.lineno - 1] if hasattr(node, "lineno") else ""

    def text(part: ast.AST) -> str | None:
        where = _segment(lines, part)
        return line[where[1] : where[2]] if where else None

    if isinstance(node, ast.BinOp):
        children: list[ast.AST] = [node.left, node.right]
        yield from (t for t in map(text, children) if t)
        yield from _swapped(text(node), text(node.left), text(node.right))
    elif isinstance(node, ast.Compare) and len(node.comparators) == 1:
        yield from _swapped(text(node), text(node.left), text(node.comparators[0]))
    elif isinstance(node, ast.Subscript) and not isinstance(node.slice, ast.Slice):
        index, whole = text(node.slice), text(node)
        if index and whole and whole.endswith(f"[{index}]"):
            for change in (" + 1", " - 1"):
                yield f"{whole[: -len(index) - 2]}[{index}{change}]"
    elif isinstance(node, ast.BoolOp) and len(node.values) > 1:
        yield from _clauses(node, text)
    elif isinstance(node, ast.Call):
        yield from _call_parts(node, text)
    elif isinstance(node, ast.Tuple | ast.List) and 1 < len(node.elts) <= 12:
        yield from _sequence_parts(node, text)


def _sequence_parts(node: ast.Tuple | ast.List, text) -> Iterator[str]:
    """A tuple or list literal without one of its items, or with its two items exchanged."""
    items = [text(e) for e in node.elts]
    whole = text(node) or ""
    opening, closing = ("[", "]") if isinstance(node, ast.List) else ("(", ")")
    if all(items) and whole.startswith(opening):
        for skip in range(len(items)):
            kept = ", ".join(p for i, p in enumerate(items) if i != skip and p)
            yield opening + kept + ("," if len(items) == 2 and opening == "(" else "") + closing
    if len(items) == 2 and all(items):
        yield from _swapped(whole, items[0], items[1])


def _clauses(node: ast.BoolOp, text) -> Iterator[str]:
    """`a and b and c` without one of its clauses."""
    joiner = " and " if isinstance(node.op, ast.And) else " or "
    parts = [text(v) for v in node.values]
    if all(parts):
        for skip in range(len(parts)):
            yield joiner.join(p for i, p in enumerate(parts) if i != skip and p)


def _swapped(whole: str | None, left: str | None, right: str | None) -> Iterator[str]:
    """`whole` with its two parts `left` … `right` exchanged, when they occur once each."""
    if not whole or not left or not right:
        return
    start = whole.find(left)
    end = whole.rfind(right)
    if start >= 0 and start + len(left) <= end:
        middle = whole[start + len(left) : end]
        yield whole[:start] + right + middle + left + whole[end + len(right) :]


def _call_parts(node: ast.Call, text) -> Iterator[str]:
    """A call without the call (its argument, or the object of a method call), `range` with
    one bound less or one more, and its two arguments exchanged."""
    arguments = [text(a) for a in node.args]
    if len(node.args) == 1 and not node.keywords and arguments[0]:
        yield arguments[0]
    if isinstance(node.func, ast.Attribute) and text(node.func.value):
        yield text(node.func.value)
    whole = text(node)
    if isinstance(node.func, ast.Name) and node.func.id == "range" and whole and all(arguments):
        if len(arguments) == 2:
            yield f"range({arguments[1]})"
        for index, argument in enumerate(arguments[:2]):
            for change in (" + 1", " - 1"):
                changed = [*arguments]
                changed[index] = argument + change
                yield f"range({', '.join(changed)})"
    if len(arguments) == 2 and not node.keywords:
        yield from _swapped(whole, arguments[0], arguments[1])
