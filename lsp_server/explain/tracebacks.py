"""Tracebacks: the frames of a pasted traceback (a parser per language: CPython's, Node.js's) and
the workspace file each frame points at (also from another machine's or a container's paths)."""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path


class TracebackError(ValueError):
    """A traceback that cannot be explained here (no frame, no frame in the workspace, an
    unreadable file); the message says which."""


@dataclass(frozen=True)
class Frame:
    """One traceback frame: the file as printed, its 1-based line, the function, and (CPython
    3.11+) the sub-expression its caret line marks."""

    path: str
    line: int
    function: str = ""
    source: str = ""  # the line as printed (stripped)
    marked: str = ""  # the marked sub-expression: `sum(values) / len(values)`
    marked_start: int = -1  # its offset in `source`
    anchor: str = ""  # the `^` part when `~` marks the rest: the operator `/`, a subscript


@dataclass
class Traceback:
    frames: list[Frame]
    error: str  # the last line: "ZeroDivisionError: division by zero"
    language: str
    repeated: int = 0  # "[Previous line repeated 996 more times]" (a recursion)


_FILE_LINE = re.compile(r'^\s*File "([^"]+)", line (\d+)(?:, in (.+))?$')
_CARETS = re.compile(r"^\s*[\^~]+\s*$")


def _marked(source: str, carets: str) -> tuple[str, int, str]:
    """(marked text, its offset in `source`, the `^` part) from a caret line printed under
    `    source`."""
    start = len(carets) - len(carets.lstrip()) - 4
    marks = carets.strip()
    if start < 0 or start + len(marks) > len(source):
        return "", -1, ""
    marked = source[start : start + len(marks)]
    anchor = ""
    if "~" in marks and "^" in marks:
        first, last = marks.index("^"), marks.rindex("^")
        anchor = marked[first : last + 1].strip()
    return marked, start, anchor


def _python_frames(lines: list[str]) -> list[Frame]:
    frames: list[Frame] = []
    for index, line in enumerate(lines):
        found = _FILE_LINE.match(line)
        if not found:
            continue
        source, marked, start, anchor = "", "", -1, ""
        following = lines[index + 1] if index + 1 < len(lines) else ""
        printed = following.startswith("    ") and not _FILE_LINE.match(following)
        if printed and not _CARETS.match(following):
            source = following.strip()
            carets = lines[index + 2] if index + 2 < len(lines) else ""
            if _CARETS.match(carets):
                marked, start, anchor = _marked(source, carets)
        frames.append(
            Frame(
                found.group(1),
                int(found.group(2)),
                found.group(3) or "",
                source,
                marked,
                start,
                anchor,
            )
        )
    return frames


def parse_python(text: str) -> Traceback | None:
    """CPython's `File "x.py", line 3, in f` frames (with the printed line and its carets) and
    the exception line after them."""
    frames = _python_frames(text.splitlines())
    if not frames:
        return None
    repeats = re.findall(r"^\s*\[Previous line repeated (\d+) more times?\]", text, re.M)
    error = ""
    for line in reversed(text.strip().splitlines()):
        stripped = line.strip()
        if stripped and not line.startswith((" ", "\t")) and not stripped.startswith("^"):
            error = stripped
            break
    return Traceback(frames, error, "python", sum(int(r) for r in repeats))


def parse_node(text: str) -> Traceback | None:
    """Node.js stacks: `at f (/path/x.js:3:7)` or `at /path/x.js:3:7`, innermost first."""
    found = re.findall(r"^\s*at (?:(.+?) \()?([^()\s]+?):(\d+):\d+\)?$", text, re.M)
    if not found:
        return None
    frames = [Frame(path, int(line), function) for function, path, line in reversed(found)]
    error = next((line.strip() for line in text.splitlines() if line.strip()), "")
    return Traceback(frames, error, "javascript")


# One parser per language, tried in order; add a language by adding a function here.
TRACEBACK_PARSERS: dict[str, Callable[[str], Traceback | None]] = {
    "python": parse_python,
    "javascript": parse_node,
}


def parse_traceback(text: str) -> Traceback:
    """The frames of a traceback in any known format; no frames when none matches."""
    for parser in TRACEBACK_PARSERS.values():
        found = parser(text)
        if found is not None:
            return found
    lines = [line.strip() for line in text.strip().splitlines() if line.strip()]
    return Traceback([], lines[-1] if lines else "", "plaintext")


def resolve_frame(frame: Frame, root: Path | None) -> Path | None:
    """The workspace file a frame points at, or None (library code, a file that is gone)."""
    if frame.path.startswith("<"):
        return None
    path = Path(frame.path)
    candidates = [path] if path.is_absolute() else []
    if root is not None:
        candidates.append(root / path)
        # A traceback from another machine or container: match its path's tail in the root.
        parts = path.parts
        for i in range(1, len(parts)):
            candidates.append(root.joinpath(*parts[i:]))
    for candidate in candidates:
        try:
            resolved = candidate.resolve()
        except OSError:
            continue
        if not resolved.is_file():
            continue
        if root is None or resolved.is_relative_to(root.resolve()):
            return resolved
    return None
