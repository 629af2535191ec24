"""The function under test in another workspace module: a failing `assert largest(xs) == 9` in
`test_shapes.py` is about `largest`, imported from `shapes.py`. That function, not the test, is
where explain.repair looks for a fix (a change of the test's own assert would "pass" by
weakening the test), and what the explanation is then about.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

from hintwise.lsp_server.code.documents import uri_path
from hintwise.lsp_server.code.syntax import CodeError
from hintwise.lsp_server.code.units import find_units
from hintwise.lsp_server.explain.question import Question, question_at

_CALLED = re.compile(r"([A-Za-z_]\w*)\s*\(")


def is_test_file(path: Path) -> bool:
    """pytest's default test file names, and conftest.py."""
    name = path.name
    return name.startswith("test_") or name.endswith("_test.py") or name == "conftest.py"


def imported_callee(question: Question, root: Path) -> Question | None:
    """The question about the workspace function that the failing line of a test file calls and
    imports from another module of `root`; None when there is none."""
    path = uri_path(question.uri) if question.uri else None
    if path is None or question.language != "python" or not is_test_file(path):
        return None
    try:
        text = path.read_text(encoding="utf-8", errors="surrogateescape")
        tree = ast.parse(text)
    except (OSError, SyntaxError, ValueError):
        return None
    lines = text.split("\n")
    failing = lines[question.line] if 0 <= question.line < len(lines) else ""
    modules = _imported_names(tree)
    for name in _CALLED.findall(failing):
        module = modules.get(name)
        found = _module_file(root, module) if module else None
        if found is not None:
            callee = _function_question(found, name, question, root)
            if callee is not None:
                return callee
    return None


def _imported_names(tree: ast.Module) -> dict[str, str]:
    """name → module for `from module import name` at any level of the file."""
    names: dict[str, str] = {}
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module and not node.level:
            for alias in node.names:
                names[alias.asname or alias.name] = node.module
    return names


def _module_file(root: Path, module: str) -> Path | None:
    base = root.joinpath(*module.split("."))
    for candidate in (base.with_suffix(".py"), base / "__init__.py"):
        if candidate.is_file() and candidate.resolve().is_relative_to(root.resolve()):
            return candidate.resolve()
    return None


def _function_question(path: Path, name: str, question: Question, root: Path) -> Question | None:
    try:
        text = path.read_text(encoding="utf-8", errors="surrogateescape")
        unit = next((u for u in find_units(text, "python") if u.name == name), None)
    except (OSError, CodeError):
        return None
    if unit is None or unit.kind != "function":
        return None
    display = str(path.relative_to(root.resolve()))
    line = unit.start_line + min(1, unit.end_line - unit.start_line)
    callee = question_at(text, "python", line, question.message, path.as_uri(), display)
    callee.function = name
    return callee


def move_to(question: Question, callee: Question, evidence: str) -> None:
    """Make `callee` (where a verified fix was found) the question the model is asked."""
    question.facts.append(
        f"{question.path}:{question.line + 1} calls `{callee.function}` "
        f"({callee.path} lines {callee.first_line + 1}-"
        f"{callee.first_line + callee.code.count(chr(10)) + 1}), shown below; {evidence}"
    )
    question.uri, question.path = callee.uri, callee.path
    question.code, question.first_line = callee.code, callee.first_line
    question.line, question.function = callee.line, callee.function
