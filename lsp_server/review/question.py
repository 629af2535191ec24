"""What the model is asked about one unit: the numbered code, the bug classes to look for, and
a JSON schema whose `line` may only be one of the unit's own lines (or, for a grounded review,
one of the lines where the model's token scores were surprised), so even a 270M model returns
parseable output that points inside the code it was shown."""

from __future__ import annotations

from hintwise.lsp_server.code.surprise import Candidate
from hintwise.lsp_server.code.units import MAX_UNIT_LINES, Unit, numbered
from hintwise.lsp_server.review.comments import SEVERITIES
from hintwise.models.engine import GenerationRequest


def comment_schema(unit: Unit, max_comments: int, lines: list[int] | None = None) -> dict:
    """JSON schema of an answer: `line` can only be one of the unit's (1-based) line numbers,
    or of `lines` when given."""
    if lines is None:
        lines = list(range(unit.start_line + 1, unit.end_line + 2))[:MAX_UNIT_LINES]
    return {
        "type": "object",
        "properties": {
            "comments": {
                "type": "array",
                "maxItems": max_comments,
                "items": {
                    "type": "object",
                    "properties": {
                        "line": {"enum": lines},
                        "severity": {"enum": list(SEVERITIES)},
                        "message": {"type": "string", "minLength": 3, "maxLength": 160},
                        "replacement": {"type": "string", "maxLength": 200},
                    },
                    "required": ["line", "severity", "message"],
                },
            }
        },
        "required": ["comments"],
    }


REVIEW_INSTRUCTIONS = (
    "You review {language} code for bugs: a wrong operator or comparison, an off-by-one index "
    "or constant, a wrong variable, an inverted condition, a missing return, an exception that "
    "can be raised. Report only real bugs, at most {max_comments}, each on the line where it is, "
    "with a short message and, when you can, the corrected line as `replacement`. "
    'If the code is correct, answer {{"comments": []}}.'
)


def review_request(
    unit: Unit,
    language: str,
    max_comments: int,
    max_tokens: int = 256,
    found: list[Candidate] | None = None,
) -> GenerationRequest:
    """The review question; with `found` (the model's surprises) those are given as facts and
    the answer's `line` is limited to their lines (a grounded review)."""
    instructions = REVIEW_INSTRUCTIONS.format(language=language, max_comments=max_comments)
    content = (
        f"{instructions}\n\n```{language}\n{numbered(unit.text, unit.start_line)}\n```\n\n"
        "Answer in JSON."
    )
    lines = None
    if found:
        facts = "\n".join(
            f"- line {c.line + 1}: `{c.written.strip()}` written, `{c.expected.strip()}` expected"
            for c in found
        )
        content += f"\n\nSuspicious tokens:\n{facts}"
        lines = sorted(c.line + 1 for c in found)
    return GenerationRequest(
        messages=[{"role": "user", "content": content}],
        max_tokens=max_tokens,
        json_schema=comment_schema(unit, max_comments, lines),
        time_limit_s=60.0,
    )


def grounded_request(unit: Unit, language: str, found: list[Candidate]) -> GenerationRequest:
    """The review question with the model's surprises as facts; `line` limited to them."""
    return review_request(unit, language, len(found), found=found)
