"""The model's answer to an error, checked against the facts: the explanation, the culprit line
(only one of the lines shown, and among the lines whose tokens surprised the model most, when the
engine scores tokens), a fix only when it parses in place, and the markdown a user reads, which
lists every fact the model was given."""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field

from hintwise.lsp_server.code.edits import replace_line
from hintwise.lsp_server.code.surprise import Candidate, candidates
from hintwise.lsp_server.code.units import Unit, numbered
from hintwise.lsp_server.explain.question import Question
from hintwise.models.engine import Engine, GenerationRequest, TokenScorer


def explain_schema(question: Question, lines: list[int] | None = None) -> dict:
    """JSON schema of an answer: `culprit_line` can only be one of the lines shown, or of
    `lines` when given."""
    if lines is None:
        last = question.first_line + question.code.count("\n")
        lines = list(range(question.first_line + 1, last + 2))
    return {
        "type": "object",
        "properties": {
            "explanation": {"type": "string", "minLength": 10, "maxLength": 300},
            "culprit_line": {"enum": lines},
            "fix": {"type": "string", "maxLength": 120},
        },
        "required": ["explanation", "culprit_line"],
    }


def explain_request(
    question: Question, max_tokens: int = 256, culprit_lines: list[int] | None = None
) -> GenerationRequest:
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
        json_schema=explain_schema(question, culprit_lines),
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
        culprit_lines = sorted({s.line + 1 for s in suspects})
        request = explain_request(question, max_tokens, culprit_lines)
    generation = engine.generate(request, cancelled)
    if generation.stop_reason == "cancelled":
        return None
    explanation, line, fix, problem = parse_answer(generation.text, question)
    lines = question.code.split("\n")
    verified = question.verified_fix
    shown = verified is not None and 0 <= verified.line - question.first_line < len(lines)
    if verified is not None and shown:
        line = verified.line  # a fix that made the failing run pass decides the culprit
    culprit_code = lines[line - question.first_line] if lines else ""
    if verified is not None and shown:
        fix = verified.code
    else:
        fix = _usable_fix(question, line, culprit_code, fix, suspects)
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
    return replace_line(text, language, line, fix)
