"""Explanations of errors and tracebacks: frames, the code around them, the question, the answer.

Plain functions shared by the server (`hintwise.explain`, `hintwise.explainTraceback`, hover),
`hintwise explain` and the benchmark. An explanation is grounded before the model sees anything:
the traceback's frames are mapped to workspace files, the enclosing function of the failing line
is cut out with tree-sitter, and every fact handed to the model is listed in the answer, so a user
can check them even when a small model's prose is weak. The model's `culprit_line` can only be
one of the lines it was shown (a JSON-schema enum), so the location it points at always exists.
"""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import unquote, urlparse

from hintwise.lsp_server.review import (
    Comment,
    ReviewError,
    Unit,
    apply_replacement,
    candidates,
    find_units,
    numbered,
)
from hintwise.lsp_server.syntax import language_for_path
from hintwise.models.engine import Engine, GenerationRequest, TokenScorer

MAX_FUNCTION_LINES = 80


def uri_path(uri: str) -> Path | None:
    """The file path of a file:// URI, else None."""
    parsed = urlparse(uri)
    return Path(unquote(parsed.path)) if parsed.scheme == "file" else None


@dataclass(frozen=True)
class Frame:
    """One traceback frame: the file as printed, its 1-based line, the function."""

    path: str
    line: int
    function: str = ""


@dataclass
class Traceback:
    frames: list[Frame]
    error: str  # the last line: "ZeroDivisionError: division by zero"
    language: str


def parse_python(text: str) -> Traceback | None:
    """CPython's `File "x.py", line 3, in f` frames and the exception line after them."""
    frames = [
        Frame(m.group(1), int(m.group(2)), m.group(3) or "")
        for m in re.finditer(r'^\s*File "([^"]+)", line (\d+)(?:, in (.+))?$', text, re.M)
    ]
    if not frames:
        return None
    error = ""
    for line in reversed(text.strip().splitlines()):
        stripped = line.strip()
        if stripped and not line.startswith((" ", "\t")) and not stripped.startswith("^"):
            error = stripped
            break
    return Traceback(frames, error, "python")


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


def question_at(
    text: str, language: str, line: int, message: str, uri: str | None, path: str
) -> Question:
    """The function around a 0-based line (tree-sitter), or ±15 lines when there is none."""
    lines = text.split("\n")
    line = max(0, min(line, len(lines) - 1))
    unit = None
    try:
        containing = [u for u in find_units(text, language) if u.start_line <= line <= u.end_line]
        unit = min(containing, key=lambda u: u.end_line - u.start_line) if containing else None
    except ReviewError:
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
    return Question(uri, path, line, message, language, code, first, facts, name)


def explain_schema(question: Question) -> dict:
    lines = list(
        range(question.first_line + 1, question.first_line + question.code.count("\n") + 2)
    )
    return {
        "type": "object",
        "properties": {
            "explanation": {"type": "string", "minLength": 10, "maxLength": 300},
            "culprit_line": {"enum": lines},
            "fix": {"type": "string", "maxLength": 120},
        },
        "required": ["explanation", "culprit_line"],
    }


def explain_request(question: Question, max_tokens: int = 256) -> GenerationRequest:
    facts = "\n".join(f"- {fact}" for fact in question.facts)
    content = (
        f"This {question.language} code fails.\n\nFacts:\n{facts}\n\n"
        f"```{question.language}\n{numbered(question.code, question.first_line)}\n```\n\n"
        "Explain the cause in two sentences, give the number of the line that causes it "
        "(`culprit_line`, often not the line that raised) and, if you can, that line corrected "
        "(`fix`). Answer in JSON."
    )
    return GenerationRequest(
        messages=[{"role": "user", "content": content}],
        max_tokens=max_tokens,
        json_schema=explain_schema(question),
        time_limit_s=60.0,
    )


@dataclass
class Explanation:
    """The answer a client gets (the contract's shape) plus what the store keeps."""

    markdown: str
    culprit: dict | None  # {"uri", "line"} (0-based line), or None
    facts: list[str]
    fix: str | None
    id: str = field(default_factory=lambda: uuid.uuid4().hex)
    explanation: str = ""
    prompt: str = ""
    raw: str = ""
    culprit_path: str | None = None
    stop_reason: str = "stop"
    latency_ms: float = 0.0

    def to_json(self) -> dict:
        return {
            "id": self.id,
            "markdown": self.markdown,
            "culprit": self.culprit,
            "facts": self.facts,
            "fix": self.fix,
        }


def parse_answer(raw: str, question: Question) -> tuple[str, int, str | None, str | None]:
    """(explanation, culprit 0-based line, fix, problem) from the model's JSON; the failing line
    and a problem sentence when the answer does not parse."""
    try:
        answer = json.loads(raw)
    except (json.JSONDecodeError, RecursionError):
        return "", question.line, None, "the model's answer was not valid JSON"
    if not isinstance(answer, dict):
        return "", question.line, None, "the model's answer was not a JSON object"
    explanation = answer.get("explanation")
    explanation = " ".join(explanation.split()) if isinstance(explanation, str) else ""
    culprit = answer.get("culprit_line")
    last = question.first_line + question.code.count("\n")
    if isinstance(culprit, int) and question.first_line <= culprit - 1 <= last:
        line = culprit - 1
    else:
        line = question.line
    fix = answer.get("fix")
    fix = fix.strip("\n") if isinstance(fix, str) and fix.strip() else None
    return explanation, line, fix, None


def explain(
    engine: Engine, question: Question, cancelled: Callable[[], bool], max_tokens: int = 256
) -> Explanation | None:
    """Ask the model (on the model thread) and build the answer; None when cancelled."""
    suspects = _suspects(engine, question, cancelled)
    if cancelled():
        return None
    request = explain_request(question, max_tokens)
    if suspects:
        for suspect in suspects:
            question.facts.append(
                f"line {suspect.line + 1}: the model did not expect `{suspect.written.strip()}`"
                f" there (it expected `{suspect.expected.strip()}`)"
            )
        request = explain_request(question, max_tokens)
        lines = sorted({s.line + 1 for s in suspects})
        request.json_schema["properties"]["culprit_line"] = {"enum": lines}
    generation = engine.generate(request, cancelled)
    if generation.stop_reason == "cancelled":
        return None
    explanation, line, fix, problem = parse_answer(generation.text, question)
    lines = question.code.split("\n")
    culprit_code = lines[line - question.first_line] if lines else ""
    if fix is not None and "".join(fix.split()) == "".join(culprit_code.split()):
        fix = None  # the "fix" is the line as it is
    if (
        fix is not None
        and fix_edit(question.code, question.language, line - question.first_line, fix) is None
    ):
        fix = None  # prose, or code that does not parse in place: not offered as a fix
    suspect = next((s for s in suspects if s.line == line), None)
    if fix is None and suspect is not None and suspect.replacement:
        swapped = suspect.replacement.strip()  # what the model expected there, as the fix
        if fix_edit(question.code, question.language, line - question.first_line, swapped):
            fix = swapped
    result = Explanation(
        markdown="",
        culprit={"uri": question.uri, "line": line} if question.uri else None,
        facts=list(question.facts),
        fix=fix,
        explanation=explanation or problem or "",
        prompt=request.messages[0]["content"] if request.messages else request.prompt,
        raw=generation.text,
        culprit_path=f"{question.path}:{line + 1}",
        stop_reason=generation.stop_reason,
        latency_ms=generation.prompt_ms + generation.generate_ms,
    )
    result.markdown = render_markdown(question, result, culprit_code)
    return result


SUSPECTS = 3


def _suspects(engine: Engine, question: Question, cancelled: Callable[[], bool]) -> list:
    """Lines of the shown code holding the tokens the model least expected (engines that score
    tokens only): the culprit is chosen among them, and they are listed as facts."""
    if not isinstance(engine, TokenScorer):
        return []
    scores = engine.score(f"# {question.language}\n", question.code, cancelled)
    if not scores:
        return []
    unit = Unit(
        "code",
        "shown",
        question.first_line,
        question.first_line + question.code.count("\n"),
        0,
        len(question.code),
        question.code,
    )
    found = candidates(unit, scores, SUSPECTS, any_token=True, language=question.language)
    # The `def` line itself is never the culprit of a wrong result.
    return [c for c in found if c.line != question.first_line] or found


def render_markdown(question: Question, result: Explanation, culprit_code: str) -> str:
    parts = [f"**{question.message or 'Error'}**", ""]
    parts.append(result.explanation or "_The model gave no explanation._")
    parts += ["", f"**Likely culprit:** `{result.culprit_path}`", "", "```" + question.language]
    parts += [culprit_code.strip(), "```"]
    if result.fix:
        parts += ["", "**Suggested fix:**", "", "```" + question.language, result.fix, "```"]
    parts += ["", "**Facts given to the model:**", ""]
    parts += [f"- {fact}" for fact in result.facts]
    return "\n".join(parts)


def fix_edit(text: str, language: str, line: int, fix: str) -> str | None:
    """The file with line `line` replaced by `fix`, or None when that does not parse."""
    return apply_replacement(
        text, language, Comment(line=line, severity="info", message="fix", replacement=fix)
    )


def called_unit(text: str, language: str, line: int):
    """The workspace function called on `line` that does not contain it (tree-sitter units), or
    None: `assert f(x) == 3` in a test names the function whose result was wrong."""
    try:
        units = find_units(text, language)
    except ReviewError:
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

    Raises ReviewError when no frame maps to a readable workspace file.
    """
    parsed = parse_traceback(text)
    notes: list[str] = []
    resolved = [(frame, resolve_frame(frame, root)) for frame in parsed.frames]
    inside = [(frame, path) for frame, path in resolved if path is not None]
    if not parsed.frames:
        raise ReviewError("no stack frame found in the text (is it a Python or Node.js traceback?)")
    if not inside:
        shown = ", ".join(sorted({frame.path for frame in parsed.frames}))
        where = f"the workspace {root}" if root else "this machine"
        raise ReviewError(f"no frame of the traceback is a file in {where} (frames: {shown})")
    frame, path = inside[-1]
    try:
        source = read(path)
    except (OSError, UnicodeDecodeError) as error:
        raise ReviewError(f"cannot read {path}: {error}") from None
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
    calls = [f for f, _ in resolved[:-1]][-4:]
    for call in reversed(calls):
        question.facts.append(f"called from {call.path}:{call.line} in {call.function}")
    if len(inside) < len(parsed.frames):
        notes.append(f"{len(parsed.frames) - len(inside)} frame(s) outside the workspace skipped")
    return question, parsed, notes
