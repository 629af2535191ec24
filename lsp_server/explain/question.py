"""What the model is asked about an error: the failing line, the function around it (or a window
of lines), the facts known before the model sees anything, and, for a traceback, the innermost
frame in the workspace and the calls that led there."""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from hintwise.lsp_server.code.documents import uri_path
from hintwise.lsp_server.code.syntax import CodeError, language_for_path
from hintwise.lsp_server.code.units import Unit, containing, find_units
from hintwise.lsp_server.explain.facts import Analysis, Located
from hintwise.lsp_server.explain.kinds import analyse
from hintwise.lsp_server.explain.tracebacks import (
    Frame,
    Traceback,
    TracebackError,
    parse_traceback,
    resolve_frame,
)

MAX_FUNCTION_LINES = 80


@dataclass(frozen=True)
class VerifiedFix:
    """A change of one line that made the failing run pass, found by re-running it sandboxed
    (`explain.run`): the strongest fact an explanation can have, so it decides the culprit."""

    line: int  # 0-based file line
    code: str  # the line as it should read
    evidence: str  # what passed with it, for the user: "the failing test passes"


@dataclass
class Question:
    """What the model is asked about: the failing place and the code around it."""

    uri: str | None
    path: str  # for display
    line: int  # 0-based, the failing line
    message: str
    language: str
    code: str  # the enclosing function (or a window of lines)
    first_line: int  # 0-based line of `code`'s first line
    facts: list[str] = field(default_factory=list)
    function: str | None = None  # the function shown, for execution tracing
    verified_fix: VerifiedFix | None = None  # set by the sandboxed re-run, when one was found
    analysis: Analysis | None = None  # what the code and the message say (explain/kinds.py)
    # The model picks the culprit among the shown lines only when the raising line is a check
    # of another function's result (`assert f(x) == y`); else the facts decide it.
    model_picks_culprit: bool = False
    frames: list[Located] = field(default_factory=list)  # the workspace frames analysed
    repeated: int = 0  # "[Previous line repeated N more times]"


def question_at(
    text: str, language: str, line: int, message: str, uri: str | None, path: str
) -> Question:
    """The function around a 0-based line (tree-sitter), or ±15 lines when there is none."""
    lines = text.split("\n")
    line = max(0, min(line, len(lines) - 1))
    try:
        unit = containing(find_units(text, language), line)
    except CodeError:
        unit = None
    if unit is not None and unit.end_line - unit.start_line < MAX_FUNCTION_LINES:
        first, last = unit.start_line, unit.end_line
    else:
        first, last = max(0, line - 15), min(len(lines) - 1, line + 15)
    code = "\n".join(lines[first : last + 1])
    where = f"{path}:{line + 1}"
    facts = [f"error: {message}" if message else "error: (no message)"]
    facts.append(f"at {where}: `{lines[line].strip()}`")
    if unit is not None:
        facts.append(f"in {unit.kind} `{unit.name}` (lines {first + 1}-{last + 1})")
    name = unit.name if unit is not None and unit.kind == "function" else None
    question = Question(uri, path, line, message, language, code, first, facts, name)
    file = uri_path(uri) if uri else None
    if language == "python" and file is not None:
        frame = Frame(path, line + 1, name or "<module>", lines[line].strip())
        question.frames = [Located(frame, file, path, text)]
        add_analysis(question, analyse(question.frames, message))
    return question


def add_runtime_values(question: Question, events: list[dict]) -> None:
    """Analyse again with the local values a sandboxed run recorded on the raising line (the
    keys a dict really had, a list's real length): call with `tracing.run_traced(...).events`
    when the traced function is the raising one."""
    if not question.frames or question.analysis is None:
        return
    frame = question.frames[-1].frame
    at_line = [e for e in events if e.get("line") == frame.line and e.get("locals")]
    if not at_line or frame.function != question.function:
        return
    values = at_line[-1]["locals"]
    add_analysis(question, analyse(question.frames, question.message, question.repeated, values))


def add_analysis(question: Question, analysis: Analysis) -> None:
    """Keep the analysis and list its facts (replacing an earlier analysis's facts)."""
    if question.analysis is not None:
        old = set(question.analysis.facts)
        question.facts = [fact for fact in question.facts if fact not in old]
    question.analysis = analysis
    question.facts.extend(analysis.facts)


def called_unit(text: str, language: str, line: int) -> Unit | None:
    """The workspace function called on `line` that does not contain it (tree-sitter units), or
    None: `assert f(x) == 3` in a test names the function whose result was wrong."""
    try:
        units = find_units(text, language)
    except CodeError:
        return None
    lines = text.split("\n")
    if not 0 <= line < len(lines):
        return None
    called = set(re.findall(r"([A-Za-z_]\w*)\s*\(", lines[line]))
    for unit in units:
        outside = not unit.start_line <= line <= unit.end_line
        if unit.name in called and outside and unit.end_line - unit.start_line < MAX_FUNCTION_LINES:
            return unit
    return None


def traceback_question(
    text: str, root: Path | None, read: Callable[[Path], str]
) -> tuple[Question, Traceback, list[str]]:
    """The question for a traceback: the innermost frame in the workspace; notes for the user.

    Raises TracebackError when no frame maps to a readable workspace file.
    """
    parsed = parse_traceback(text)
    notes: list[str] = []
    resolved = [(frame, resolve_frame(frame, root)) for frame in parsed.frames]
    inside = [(frame, path) for frame, path in resolved if path is not None]
    if not parsed.frames:
        raise TracebackError(
            "no stack frame found in the text (is it a Python or Node.js traceback?)"
        )
    if not inside:
        shown = ", ".join(sorted({frame.path for frame in parsed.frames}))
        where = f"the workspace {root}" if root else "this machine"
        raise TracebackError(f"no frame of the traceback is a file in {where} (frames: {shown})")
    frame, path = inside[-1]
    try:
        source = read(path)
    except (OSError, UnicodeDecodeError) as error:
        raise TracebackError(f"cannot read {path}: {error}") from None
    language = language_for_path(str(path))
    display = str(path.relative_to(root.resolve())) if root is not None else str(path)
    question = question_at(source, language, frame.line - 1, parsed.error, path.as_uri(), display)
    callee = called_unit(source, language, frame.line - 1)
    if callee is not None:
        # The failing line is a check (an assert in a test, say) of what a workspace function
        # returned: the bug is more likely in that function, so that is the code the model sees.
        question.facts.append(
            f"line {frame.line} calls `{callee.name}` (lines {callee.start_line + 1}-"
            f"{callee.end_line + 1}), shown below"
        )
        question.code, question.first_line = callee.text, callee.start_line
        question.function = callee.name
        question.line = callee.start_line + min(1, callee.end_line - callee.start_line)
        question.model_picks_culprit = True
    calls = [f for f, _ in resolved[:-1]][-4:]
    for call in reversed(calls):
        question.facts.append(f"called from {call.path}:{call.line} in {call.function}")
    if language == "python":
        question.frames, question.repeated = _located(inside, root, read), parsed.repeated
        add_analysis(question, analyse(question.frames, parsed.error, parsed.repeated))
    if len(inside) < len(parsed.frames):
        notes.append(f"{len(parsed.frames) - len(inside)} frame(s) outside the workspace skipped")
    return question, parsed, notes


def _located(inside: list[tuple[Frame, Path]], root: Path | None, read) -> list[Located]:
    """The workspace frames with their files' text (each file read once)."""
    texts: dict[Path, str] = {}
    located = []
    for frame, path in inside:
        if path not in texts:
            try:
                texts[path] = read(path)
            except (OSError, UnicodeDecodeError):
                texts[path] = ""
        display = str(path.relative_to(root.resolve())) if root is not None else str(path)
        located.append(Located(frame, path, display, texts[path]))
    return located
