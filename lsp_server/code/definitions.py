"""What a Python file defines and imports, read with tree-sitter: the facts a completion needs
about other files of the project.

A small model completes `x = make_parser(` well only if it has seen `make_parser`'s signature,
which lives in another module. Here: each top-level function, class and constant of a file as a
short summary (a short definition whole; a long one as its signature and the first line of its
docstring, a class with its `__init__` signature), and the `from … import …` statements of a
file, which say where the names used near the cursor are defined. Tree-sitter rather than `ast`
because the file being edited is usually not valid Python at the cursor.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import cache

from tree_sitter import Node, Parser, Query, QueryCursor, Tree

from hintwise.lsp_server.code.syntax import grammar

# A definition this short is given whole; a longer one as its signature and docstring line.
SHORT_LINES = 8
# Files larger than this are not read for definitions (generated code, vendored bundles).
MAX_SOURCE_BYTES = 400_000


@dataclass(frozen=True)
class Import:
    """`from <level dots><module> import <name> as <alias>`: `alias` is the name used here."""

    module: str
    level: int
    name: str
    alias: str


@cache
def _parser() -> Parser | None:
    language = grammar("python")
    return Parser(language) if language is not None else None


@cache
def _import_query() -> Query | None:
    language = grammar("python")
    return Query(language, "(import_from_statement) @import") if language is not None else None


def parse(source: str) -> Tree | None:
    """A tree-sitter tree of Python source, or None without the grammar or for a huge file."""
    parser = _parser()
    data = source.encode("utf-8", errors="surrogatepass")
    if parser is None or len(data) > MAX_SOURCE_BYTES:
        return None
    return parser.parse(data)


def _text(node: Node | None) -> str:
    if node is None or node.text is None:
        return ""
    return node.text.decode("utf-8", errors="replace")


def imports(source: str) -> list[Import]:
    """Every `from … import …` of a file (also inside functions), in file order."""
    tree, query = parse(source), _import_query()
    if tree is None or query is None:
        return []
    found = QueryCursor(query).captures(tree.root_node).get("import", [])
    result = []
    for statement in sorted(found, key=lambda node: node.start_byte):
        module_node = statement.child_by_field_name("module_name")
        level, module = 0, _text(module_node)
        if module_node is not None and module_node.type == "relative_import":
            module = module.lstrip(".")
            level = len(_text(module_node)) - len(module)
        for name_node in statement.children_by_field_name("name"):
            if name_node.type == "aliased_import":
                name = _text(name_node.child_by_field_name("name"))
                alias = _text(name_node.child_by_field_name("alias"))
            else:
                name = alias = _text(name_node)
            result.append(Import(module, level, name, alias))
    return result


def definitions(source: str) -> dict[str, str]:
    """Top-level names of a file and a short text for each (see the module docstring)."""
    tree = parse(source)
    if tree is None:
        return {}
    data = source.encode("utf-8", errors="surrogatepass")
    found: dict[str, str] = {}
    for node in tree.root_node.children:
        definition = (
            node.child_by_field_name("definition") if node.type == "decorated_definition" else node
        )
        if definition is None:
            continue
        if definition.type in ("function_definition", "class_definition"):
            name = _text(definition.child_by_field_name("name"))
            found.setdefault(name, summary(data, node, definition))
        elif (
            definition.type == "expression_statement"
            and definition.start_point[0] == definition.end_point[0]
        ):
            assignment = definition.children[0] if definition.children else None
            if assignment is not None and assignment.type == "assignment":
                target = assignment.child_by_field_name("left")
                if target is not None and target.type == "identifier":
                    found.setdefault(_text(target), _text(definition))
    return found


def summary(data: bytes, outer: Node, definition: Node) -> str:
    """A function or class (with its decorators, `outer`): whole when short, else its
    signature, the first line of its docstring and, for a class, its `__init__` signature."""
    lines = outer.end_point[0] - outer.start_point[0] + 1
    if lines <= SHORT_LINES:
        return _text(outer)
    body = definition.child_by_field_name("body")
    if body is None:
        return _text(outer)
    head = _one_line(data[outer.start_byte : body.start_byte])
    indent = " " * (body.start_point[1] or 4)
    parts = [head]
    docstring = _docstring_line(body)
    if docstring:
        parts.append(indent + docstring)
    if definition.type == "class_definition":
        init = _method(body, "__init__")
        if init is not None:
            init_body = init.child_by_field_name("body")
            end = init_body.start_byte if init_body is not None else init.end_byte
            signature = _one_line(data[init.start_byte : end])
            parts.append(indent + signature + " ...")
    parts.append(indent + "...")
    return "\n".join(parts)


def _one_line(code: bytes) -> str:
    """A signature spread over lines, on one line (fewer tokens, the same facts)."""
    text = code.decode("utf-8", errors="replace").rstrip()
    lines = text.split("\n")
    decorators = [line for line in lines if line.lstrip().startswith("@")]
    rest = "\n".join(line for line in lines if not line.lstrip().startswith("@"))
    joined = re.sub(r"\s*\n\s*", " ", rest.strip())
    joined = joined.replace("( ", "(").replace(", )", ")").replace(",)", ")")
    return "\n".join([*decorators, joined])


def _docstring_line(body: Node) -> str:
    """The first non-blank line of a block's docstring, quotes included, or ""."""
    first = body.children[0] if body.children else None
    if first is None or first.type != "expression_statement" or not first.children:
        return ""
    string = first.children[0]
    if string.type != "string":
        return ""
    text = _text(string)
    quote = text[:3] if text[:3] in ('"""', "'''") else text[:1]
    inner = text[len(quote) :]
    line = next((part.strip() for part in inner.splitlines() if part.strip()), "")
    line = line.removesuffix(quote).strip()
    return f"{quote}{line}{quote}" if line else ""


def _method(body: Node, name: str) -> Node | None:
    for child in body.children:
        node = (
            child.child_by_field_name("definition")
            if child.type == "decorated_definition"
            else child
        )
        is_function = node is not None and node.type == "function_definition"
        if is_function and node is not None and _text(node.child_by_field_name("name")) == name:
            return node
    return None
