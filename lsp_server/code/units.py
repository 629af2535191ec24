"""The units a file is made of: its functions (methods included) and its classes without
methods, found with tree-sitter.

A review looks at one unit at a time, an explanation shows the unit around the failing line, and
a changed file is re-reviewed unit by unit (by digest), so a small model always sees a short,
whole piece of code and every comment can be checked against the unit it was about.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from dataclasses import dataclass

from tree_sitter import Node

from hintwise.lsp_server.code.syntax import parse

# Node types that make a unit, per language: functions (methods included) and classes.
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

# A unit longer than this is shown to the model in its first lines only (prompt size, and a
# small model loses track in long code anyway).
MAX_UNIT_LINES = 120


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


def _name(node: Node) -> str:
    named = node.child_by_field_name("name")
    if named is None and node.parent is not None and node.type == "arrow_function":
        named = node.parent.child_by_field_name("name")
    if named is None:
        declarator = node.child_by_field_name("declarator")
        while declarator is not None and declarator.child_by_field_name("declarator") is not None:
            declarator = declarator.child_by_field_name("declarator")
        named = declarator
    if named is None or named.text is None:
        return f"<anonymous@{node.start_point[0] + 1}>"
    return named.text.decode("utf-8", errors="replace")


def find_units(text: str, language: str) -> list[Unit]:
    """The functions (and classes without methods) of a file, outermost functions only.

    Raises CodeError for a language without a grammar or a file too large to parse. A file
    with syntax errors still has units: tree-sitter recovers around the broken part.
    """
    tree = parse(text, language)
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


def containing(units: Iterable[Unit], line: int) -> Unit | None:
    """The innermost unit around a 0-based line, if any."""
    around = [unit for unit in units if unit.start_line <= line <= unit.end_line]
    return min(around, key=lambda unit: unit.end_line - unit.start_line) if around else None


def numbered(text: str, first_line: int, limit: int = MAX_UNIT_LINES) -> str:
    """Code with 1-based file line numbers in front, as the model sees it."""
    lines = text.split("\n")[:limit]
    width = len(str(first_line + len(lines)))
    return "\n".join(f"{first_line + i + 1:>{width}} | {line}" for i, line in enumerate(lines))
