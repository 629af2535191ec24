"""Where a one-token change is a plausible defect, decided by the syntax tree, not the token text.

A review comment of the model may only propose one of these swaps: a comparison turned around
(`<` for `<=`, `==` for `!=`, `is` for `is not`, `in` for `not in`), a boolean operator (`and`
for `or`), an arithmetic or augmented operator (`+` for `-`, `%` for `//`), an integer off by
one, or a negation dropped or added. These are the defects a small model can confirm by
likelihood (see review/verify.py) and the ones people write by slip. Nothing is proposed inside
annotations, decorators, imports, strings and f-strings, default values or case patterns: there
a `|` is a union, a constant is a choice, and modern syntax is no defect.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass

from tree_sitter import Node

from hintwise.lsp_server.code.syntax import CodeError, parse

# Each written operator and the operators it may have been meant to be (a seeded or slipped
# defect's inverse). A site is only checked against these, never against any token.
COMPARISONS = {
    "<": ("<=", ">"),
    "<=": ("<",),
    ">": (">=", "<"),
    ">=": (">",),
    "==": ("!=",),
    "!=": ("==",),
}
# `is` / `in` against their negated forms: a `not` added or dropped, which the model suggests by
# habit (see review/verify.py MARGINS).
NEGATED_COMPARISONS = {
    "is": ("is not",),
    "is not": ("is",),
    "in": ("not in",),
    "not in": ("in",),
}
BOOLEANS = {"and": ("or",), "or": ("and",)}
ARITHMETIC = {
    "+": ("-", "*"),
    "-": ("+",),
    "*": ("+",),
    "/": ("*", "//"),
    "//": ("%", "/"),
    "%": ("//",),
    "&": ("|",),
    "<<": (">>",),
    ">>": ("<<",),
}
AUGMENTED = {"+=": ("-=",), "-=": ("+=",)}
# An integer constant is checked at ±1 up to this value (larger ones are sizes and masks).
MAX_CONSTANT = 16
# Subtrees where no swap is proposed: types, decorators, imports, text, patterns.
_EXCLUDED = {
    "type",
    "decorator",
    "import_statement",
    "import_from_statement",
    "future_import_statement",
    "string",
    "concatenated_string",
    "interpolation",
    "comment",
    "case_pattern",
    "type_alias_statement",
    "type_parameter",
}
_DEFAULTS = {"default_parameter", "typed_default_parameter"}
# Conditions where a dropped `not` is checked (the expression may have been meant negated).
_CONDITION_PARENTS = {"if_statement", "elif_clause", "while_statement"}


@dataclass(frozen=True)
class Swap:
    """Replace text[start:end] (`written`) by `fix`: one plausible correction of a defect."""

    start: int  # characters into the text
    end: int
    written: str
    fix: str
    kind: str  # comparison, negated comparison, boolean, arithmetic, constant, negation

    def apply(self, text: str) -> str:
        return text[: self.start] + self.fix + text[self.end :]


def swaps(text: str, language: str = "python") -> list[Swap]:
    """Every plausible one-token correction of `text` (Python only: other languages get none,
    which keeps reviews quiet rather than wrong)."""
    if language != "python":
        return []
    try:
        tree = parse(text, language)
    except CodeError:
        return []
    data = text.encode("utf-8", errors="surrogatepass")

    def char(byte: int) -> int:
        return len(data[:byte].decode("utf-8", errors="surrogatepass"))

    found = [
        Swap(char(start), char(end), written, fix, kind)
        for start, end, written, fix, kind in _sites(tree.root_node)
    ]
    return sorted(found, key=lambda s: (s.start, s.fix))


Site = tuple[int, int, str, str, str]  # start byte, end byte, written, fix, kind


def _sites(node: Node) -> Iterator[Site]:
    if excluded(node):
        return
    yield from _own_sites(node)
    for child in node.children:
        yield from _sites(child)


def excluded(node: Node) -> bool:
    """Inside a type, decorator, import, string, pattern, or a parameter's default value."""
    if node.type in _EXCLUDED:
        return True
    parent = node.parent
    return (
        parent is not None
        and parent.type in _DEFAULTS
        and parent.child_by_field_name("value") == node
    )


def _own_sites(node: Node) -> Iterator[Site]:
    kind = node.type
    if kind == "comparison_operator":
        for op in node.children_by_field_name("operators"):
            yield from _replace(op, COMPARISONS, "comparison")
            yield from _replace(op, NEGATED_COMPARISONS, "negated comparison")
    elif kind == "boolean_operator":
        yield from _replace(node.child_by_field_name("operator"), BOOLEANS, "boolean")
    elif kind == "binary_operator":
        yield from _replace(node.child_by_field_name("operator"), ARITHMETIC, "arithmetic")
    elif kind == "augmented_assignment":
        yield from _replace(node.child_by_field_name("operator"), AUGMENTED, "arithmetic")
    elif kind == "integer":
        yield from _constant(node)
    elif kind == "not_operator":
        argument = node.child_by_field_name("argument")
        if argument is not None and argument.text is not None:
            yield (node.start_byte, node.end_byte, _text(node), _text(argument), "negation")
    if _negatable(node):
        yield (node.start_byte, node.start_byte, "", "not ", "negation")


def _replace(op: Node | None, table: Mapping[str, tuple[str, ...]], kind: str) -> Iterator[Site]:
    if op is None:
        return
    written = " ".join(_text(op).split())
    for fix in table.get(written, ()):
        yield (op.start_byte, op.end_byte, _text(op), fix, kind)


def _constant(node: Node) -> Iterator[Site]:
    written = _text(node)
    if not written.isdigit() or (len(written) > 1 and written.startswith("0")):
        return  # hex, octal, floats-like and long literals are not counts
    value = int(written)
    if value > MAX_CONSTANT:
        return
    negative = node.parent is not None and node.parent.type == "unary_operator"
    for fix in (value + 1, value - 1):
        if fix < 0 or (negative and fix == 0):
            continue
        yield (node.start_byte, node.end_byte, written, str(fix), "constant")


def _negatable(node: Node) -> bool:
    """A condition (of if/elif/while, or an operand of and/or) that is a plain value: where a
    dropped `not` could have been. Comparisons are left to their operator swaps, negations to
    their removal, and/or chains to their operands."""
    parent = node.parent
    if parent is None or node.type in ("comparison_operator", "not_operator", "boolean_operator"):
        return False
    if node.type in ("parenthesized_expression", "conditional_expression", "named_expression"):
        return False
    if parent.type in _CONDITION_PARENTS:
        return parent.child_by_field_name("condition") == node
    if parent.type == "boolean_operator":
        return node in (parent.child_by_field_name("left"), parent.child_by_field_name("right"))
    return False


def _text(node: Node) -> str:
    return node.text.decode("utf-8", errors="surrogatepass") if node.text is not None else ""
