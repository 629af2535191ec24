"""Line edits that are only offered when the file still parses with them.

A fix from a small model (a review comment's replacement, an explanation's corrected line) is
code the user may apply with one click; one that breaks the file's syntax is never offered.
"""

from __future__ import annotations

from hintwise.lsp_server.code.syntax import CodeError, count_errors, parse


def replace_line(text: str, language: str, line: int, replacement: str | None) -> str | None:
    """The file with its 0-based `line` replaced by `replacement` (indented like the line when
    it comes without indentation), or None: no replacement, no such line, no change, or more
    syntax errors than the file had."""
    if not replacement:
        return None
    lines = text.split("\n")
    if not 0 <= line < len(lines):
        return None
    old = lines[line]
    indent = old[: len(old) - len(old.lstrip())]
    new_lines = replacement.strip("\n").split("\n")
    if new_lines and new_lines[0] == new_lines[0].lstrip():
        new_lines = [indent + new if new.strip() else new for new in new_lines]
    candidate = "\n".join([*lines[:line], *new_lines, *lines[line + 1 :]])
    try:
        before = count_errors(parse(text, language).root_node)
        after = count_errors(parse(candidate, language).root_node)
    except CodeError:
        return None
    if after > before or candidate == text:
        return None
    return candidate
