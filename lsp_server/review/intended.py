"""Findings of the static analyser on code written that way on purpose: dropped before they
become review comments. Each filter was chosen on CPython's standard library, where ruff reports
the idiom (docs/review-static.md has the counts):

- F821/F822 (undefined name) in a module that makes names at run time (`globals().update`,
  enum's `_convert_` and `global_enum`, `exec`), or with three or more distinct undefined names
  (names made out of the analyser's sight, not typos);
- B006 (mutable default argument) unless the function mutates that argument in place: a default
  that is only read is an idiom (tkinter's `cnf={}`), and so are a memo (`_cache={}`) and a
  one-item cell (`n=[0]`); the shared-state bug needs a mutation;
- PLW0127 (self-assignment) outside functions: `TimeoutError = TimeoutError` re-exports a name;
- F841 (unused variable) for `except E as e:` (harmless) and names that say so (`dummy = f()`).
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

from tree_sitter import Node

from hintwise.lsp_server.code.syntax import CodeError, parse

if TYPE_CHECKING:
    from hintwise.lsp_server.review.static import Finding


_RUNTIME_NAMES = re.compile(r"\bglobals\(\)|\._convert_\(|\bglobal_enum\b|\bexec\(")


def _defines_names_at_run_time(text: str, findings: list[Finding]) -> bool:
    undefined = {f.message for f in findings if f.code == "F821"}
    return len(undefined) >= 3 or _RUNTIME_NAMES.search(text) is not None


def intended(finding: Finding, text: str, findings: list[Finding]) -> str | None:
    """Why a finding is code written that way on purpose rather than a defect, or None."""
    if finding.code in ("F821", "F822") and _defines_names_at_run_time(text, findings):
        return "names defined at run time"
    if finding.code == "PLW0127" and not _in_function(text, finding):
        return "re-export by self-assignment"
    if finding.code == "B006":
        return _default_idiom(text, finding)
    if finding.code == "F841":
        return _unused_on_purpose(text, finding)
    return None


_DUMMY = re.compile(r"`(dummy|unused|ignored?|junk)\w*`")


def _unused_on_purpose(text: str, finding: Finding) -> str | None:
    """`except E as e:` with `e` unused is harmless; `dummy = f()` says it on purpose."""
    if re.match(r"\s*except\b", text.split("\n")[finding.line]):
        return "unused exception name"
    if _DUMMY.search(finding.message):
        return "named as unused"
    return None


_MEMO_NAME = re.compile(r"^_|cache|memo|seen|registry", re.I)
_CELL = re.compile(r"\[[^,\[\]]+\]")


def _default_idiom(text: str, finding: Finding) -> str | None:
    """Why a mutable default is intended: only read, a memo (`_cache={}`), or a one-item
    cell (`n=[0]`); None when it is the shared-state bug (or the code cannot be read)."""
    found = _parameter_and_body(text, finding)
    if found is None:
        return None
    name, default, body = found
    if _CELL.fullmatch(default):
        return "one-item cell default"
    if _MEMO_NAME.search(name):
        return "memo default"
    if not _mutated(name, body):
        return "mutable default only read"
    return None


def _node_at(text: str, finding: Finding) -> Node | None:
    """The innermost named node where the finding starts (tree-sitter), None when unparsable."""
    try:
        tree = parse(text, "python")
    except CodeError:
        return None
    lines = text.split("\n")
    if finding.line >= len(lines):
        return None
    column = len(lines[finding.line][: finding.column].encode("utf-8", "surrogatepass"))
    return tree.root_node.named_descendant_for_point_range(
        (finding.line, column), (finding.line, column)
    )


def _in_function(text: str, finding: Finding) -> bool:
    node = _node_at(text, finding)
    while node is not None and node.type != "function_definition":
        node = node.parent
    return node is not None


def _parameter_and_body(text: str, finding: Finding) -> tuple[str, str, str] | None:
    """(parameter name, default's text, function body's text) of a flagged default."""
    node = _node_at(text, finding)
    while node is not None and node.type not in ("default_parameter", "typed_default_parameter"):
        node = node.parent
    function = node.parent.parent if node is not None and node.parent is not None else None
    if node is None or function is None or function.type != "function_definition":
        return None
    name, value = node.child_by_field_name("name"), node.child_by_field_name("value")
    body = function.child_by_field_name("body")
    if name is None or value is None or body is None:
        return None
    return _text(name), _text(value), _text(body)


def _text(node: Node) -> str:
    return (node.text or b"").decode("utf-8", "replace")


_MUTATORS = (
    "append|extend|insert|update|setdefault|pop|popitem|add|clear|remove|discard|sort|reverse"
)
_AUGMENTED = r"([-+*/|&^%@]|//|<<|>>|\*\*)"


def _mutated(parameter: str, body: str) -> bool:
    """Whether the body mutates the parameter in place and never rebinds it first
    (`x = dict(x)` then `x[k] = v` changes a copy)."""
    name = rf"(?<![\w.]){re.escape(parameter)}"
    if re.search(rf"{name}[ \t]*(:[^=\n]*)?=(?!=)", body):
        return False
    mutation = (
        rf"{name}[ \t]*\.[ \t]*({_MUTATORS})[ \t]*\("
        rf"|{name}[ \t]*\[[^\]\n]*\][ \t]*{_AUGMENTED}?=(?!=)"
        rf"|{name}[ \t]*{_AUGMENTED}="
        rf"|\bdel[ \t]+{name}[ \t]*\["
    )
    return re.search(mutation, body) is not None
