"""The model's answer to an error, checked against the facts: the explanation, the culprit line
(only one of the lines shown, and among the lines whose tokens surprised the model most, when the
engine scores tokens), a fix only when it parses in place, and the markdown a user reads, which
lists every fact the model was given."""

from __future__ import annotations

import ast
import json
import textwrap
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field

from hintwise.lsp_server.code.edits import replace_line
from hintwise.lsp_server.code.surprise import Candidate, candidates
from hintwise.lsp_server.code.units import Unit, numbered
from hintwise.lsp_server.explain.checks import explanation_problems, fix_problem
from hintwise.lsp_server.explain.facts import Place
from hintwise.lsp_server.explain.question import Question
from hintwise.models.engine import Engine, GenerationRequest, TokenScorer


def explain_schema(question: Question, lines: list[int] | None = None) -> dict:
    """JSON schema of an answer: `culprit_line` can only be one of the lines shown, or of
    `lines` when given; no `culprit_line` at all when the facts decided it (`lines == []`)."""
    if lines is None:
        last = question.first_line + question.code.count("\n")
        lines = list(range(question.first_line + 1, last + 2))
    properties: dict = {
        "explanation": {"type": "string", "minLength": 10, "maxLength": 300},
        "fix": {"type": "string", "maxLength": 120},
    }
    required = ["explanation"]
    if lines:
        properties["culprit_line"] = {"enum": lines}
        required.append("culprit_line")
    return {"type": "object", "properties": properties, "required": required}


def explain_request(
    question: Question,
    max_tokens: int = 256,
    culprit_lines: list[int] | None = None,
    hints: list[str] = (),  # type: ignore[assignment]
    culprit: tuple[int, str] | None = None,
) -> GenerationRequest:
    """The prompt: the facts, the code, and either the lines the culprit is chosen among or,
    when the facts decided it, the culprit line to correct."""
    facts = "\n".join(f"- {fact}" for fact in question.facts)
    hinted = "".join(f"\n- {hint}" for hint in hints)
    if culprit is not None:
        task = (
            "Explain the cause in two sentences, using the facts, and, if you can, give line "
            f"{culprit[0] + 1} (`{culprit[1].strip()}`) corrected (`fix`). Answer in JSON."
        )
    else:
        task = (
            "Explain the cause in two sentences, using the facts, give the number of the line "
            "that causes it (`culprit_line`, often not the line that raised) and, if you can, "
            "that line corrected (`fix`). Answer in JSON."
        )
    content = (
        f"This {question.language} code fails.\n\nFacts:\n{facts}\n"
        + (f"\nLines to check:{hinted}\n" if hinted else "")
        + f"\n```{question.language}\n{numbered(question.code, question.first_line)}\n```\n\n"
        + task
    )
    return GenerationRequest(
        messages=[{"role": "user", "content": content}],
        max_tokens=max_tokens,
        json_schema=explain_schema(question, [] if culprit is not None else culprit_lines),
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
    explained_by: str = "model"  # "model", or "facts" when the model's text failed the checks
    problems: list[str] = field(default_factory=list)  # why the model's text or fix was not used

    def to_json(self) -> dict:
        return {
            "id": self.id,
            "markdown": self.markdown,
            "culprit": self.culprit,
            "facts": self.facts,
            "fix": self.fix,
            "explained_by": self.explained_by,
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
    """Ask the model (on the model thread) and build the answer; None when cancelled.

    The culprit is, in this order: the line of a verified fix, the line the facts point at (a
    caller that passed a bad literal), the raising line; the model chooses it (among the lines
    it least expected) only when the raising line checks another function's result."""
    suspects = _suspects(engine, question, cancelled) if question.model_picks_culprit else []
    if cancelled():
        return None
    decided = _decided_culprit(question)
    hints = [
        f"line {s.line + 1}: `{s.written.strip()}` is unusual there (`{s.expected.strip()}` "
        "is more common)"
        for s in suspects
    ]
    culprit_lines = sorted({s.line + 1 for s in suspects}) or code_lines(question)
    code_at = (decided.line, decided.code) if decided is not None else None
    request = explain_request(question, max_tokens, culprit_lines, hints, code_at)
    generation = engine.generate(request, cancelled)
    if generation.stop_reason == "cancelled":
        return None
    explanation, line, fix, problem = parse_answer(generation.text, question)
    result = Explanation(
        markdown="",
        culprit=None,
        facts=list(question.facts),
        fix=None,
        prompt=request.messages[0]["content"] if request.messages else request.prompt,
        raw=generation.text,
        stop_reason=generation.stop_reason,
        latency_ms=generation.prompt_ms + generation.generate_ms,
    )
    place = decided or _shown_place(question, line)
    result.culprit = {"uri": place.uri, "line": place.line} if place.uri else None
    result.culprit_path = f"{place.path}:{place.line + 1}"
    result.fix = _checked_fix(question, place, fix, suspects, result.problems)
    _choose_explanation(question, result, explanation, problem)
    result.markdown = render_markdown(question, result, place.code, suspects)
    return result


def code_lines(question: Question) -> list[int] | None:
    """The 1-based lines of the shown code a culprit can be: not the `def` line, a docstring,
    a comment or a blank line (None when the code does not parse alone: every line)."""
    lines = question.code.split("\n")
    try:
        tree = ast.parse(textwrap.dedent(question.code))
    except (SyntaxError, ValueError, RecursionError):
        return None
    excluded: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            excluded.update(range(node.lineno, node.body[0].lineno))  # the signature
            first = node.body[0]
            is_doc = isinstance(first, ast.Expr) and isinstance(first.value, ast.Constant)
            if is_doc and isinstance(first.value.value, str):  # type: ignore[attr-defined]
                excluded.update(range(first.lineno, (first.end_lineno or first.lineno) + 1))
    kept = [
        question.first_line + number
        for number, text in enumerate(lines, 1)
        if number not in excluded and text.strip() and not text.strip().startswith("#")
    ]
    return kept or None


def _decided_culprit(question: Question) -> Place | None:
    """The culprit when something stronger than the model decides it: a verified fix, a caller
    the facts point at, or the raising line (not when the model picks among the suspects)."""
    verified = question.verified_fix
    lines = question.code.split("\n")
    if verified is not None and 0 <= verified.line - question.first_line < len(lines):
        return _shown_place(question, verified.line)
    if question.analysis is not None and question.analysis.culprit is not None:
        return question.analysis.culprit
    if question.model_picks_culprit:
        return None
    return _shown_place(question, question.line)


def _shown_place(question: Question, line: int) -> Place:
    lines = question.code.split("\n")
    at = line - question.first_line
    code = lines[at] if 0 <= at < len(lines) else ""
    reason = "the raising line"
    return Place(question.uri or "", question.path, line, code, "", reason)


def _checked_fix(
    question: Question, place: Place, fix: str | None, suspects: list[Candidate], problems: list
) -> str | None:
    """The verified fix; else the model's, unless it is the line as it is, only renames an
    identifier, or does not parse in place."""
    verified = question.verified_fix
    if verified is not None and verified.line == place.line and not place.source:
        return verified.code
    reason = fix_problem(place.code, fix)
    if reason is not None:
        problems.append(reason)
        fix = None
    if place.source:  # a line in a caller, maybe in another file
        edited = fix_edit(place.source, question.language, place.line, fix) if fix else None
        return fix if edited is not None and _still_python(place.source, edited, question) else None
    fix = _usable_fix(question, place.line, place.code, fix, suspects)
    if fix is not None and fix_problem(place.code, fix) is not None:
        return None
    return fix


def _still_python(before: str, after: str, question: Question) -> bool:
    """Python's own parser agrees the fixed file parses (when the file parsed before):
    tree-sitter recovers from more than Python accepts."""
    if question.language != "python":
        return True
    try:
        ast.parse(before)
    except (SyntaxError, ValueError, RecursionError):
        return True
    try:
        ast.parse(after)
    except (SyntaxError, ValueError, RecursionError):
        return False
    return True


def _choose_explanation(
    question: Question, result: Explanation, text: str, problem: str | None
) -> None:
    """The model's text when it passes the checks; else the one built from the facts."""
    analysis = question.analysis
    claims = analysis.claims if analysis is not None else []
    problems = [problem] if problem else explanation_problems(text, question.message, claims)
    result.problems = problems + result.problems
    if not problems:
        result.explanation, result.explained_by = text, "model"
        return
    result.explained_by = "facts"
    summary = analysis.summary if analysis is not None else ""
    result.explanation = summary or _plain_summary(question)


def _plain_summary(question: Question) -> str:
    """The explanation from the facts when no exception-specific one exists."""
    message = question.message or "an error"
    return f"Line {question.line + 1} of {question.path} raised {message}."


def _usable_fix(
    question: Question, line: int, culprit_code: str, fix: str | None, suspects: list[Candidate]
) -> str | None:
    """The model's fix when it changes the line and parses in place; else what the model
    expected on that line, when it was a suspect and that parses; else None."""
    if fix is not None and "".join(fix.split()) == "".join(culprit_code.split()):
        fix = None  # the "fix" is the line as it is
    at = line - question.first_line
    if fix is not None and fix_edit(question.code, question.language, at, fix) is None:
        fix = None  # prose, or code that does not parse in place: not offered as a fix
    suspect = next((s for s in suspects if s.line == line), None)
    if fix is None and suspect is not None and suspect.replacement:
        swapped = suspect.replacement.strip()  # what the model expected there, as the fix
        if fix_edit(question.code, question.language, at, swapped):
            fix = swapped
    return fix


SUSPECTS = 3


def _suspects(engine: Engine, question: Question, cancelled: Callable[[], bool]) -> list[Candidate]:
    """Lines of the shown code holding the tokens the model least expected (engines that score
    tokens only): the culprit is chosen among them. Never the `def` line, never a token the
    model "expected" that is the written one again."""
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
    return [
        c
        for c in found
        if c.line != question.first_line and c.written.strip() != c.expected.strip()
    ]


def render_markdown(
    question: Question,
    result: Explanation,
    culprit_code: str,
    suspects: list[Candidate] = (),  # type: ignore[assignment]
) -> str:
    parts = [f"**{question.message or 'Error'}**", ""]
    parts.append(result.explanation or "_No explanation._")
    if result.explained_by == "facts":
        why = "; ".join(p for p in result.problems if not p.startswith("the fix")) or "none given"
        parts += [
            "",
            f"_Explanation built from the facts below (the model's text was not used: {why})._",
        ]
    else:
        parts += ["", "_Explanation written by the model from the facts below._"]
    parts += ["", f"**Likely culprit:** `{result.culprit_path}`", "", "```" + question.language]
    parts += [culprit_code.strip(), "```"]
    verified = question.verified_fix is not None and question.verified_fix.code == result.fix
    if result.fix:
        title = (
            "**Verified fix** (the failing run passes with it):"
            if verified
            else "**Suggested fix:**"
        )
        parts += ["", title, "", "```" + question.language, result.fix, "```"]
    parts += ["", "**Facts:**", ""]
    parts += [f"- {fact}" for fact in result.facts]
    if suspects and not verified:
        lines = ", ".join(str(s.line + 1) for s in suspects)
        parts += [
            "",
            f"_The culprit was chosen among lines {lines}, whose code the model found "
            "least expected._",
        ]
    return "\n".join(parts)


def fix_edit(text: str, language: str, line: int, fix: str) -> str | None:
    """The file with line `line` replaced by `fix`, or None when that does not parse."""
    return replace_line(text, language, line, fix)
