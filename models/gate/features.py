"""The acceptance gate's features: one function for training and serving.

A `GateInput` holds the plain facts known about one completion request: the text before the
cursor, the session's history, typing activity, tree-sitter's view of the cursor (computed by the
caller, since tree-sitter lives with the documents in lsp_server) and, after generation, the
suggestion with its per-token log-probabilities. `pre_features` and `post_features` turn it into
numbers. The server builds a GateInput at each request; training builds one per logged
suggestion, or per row of a file in the CUPS format (real Copilot suggestions), and calls the
same functions. A fact a source does not have is None and becomes NaN, which LightGBM treats as
missing (CUPS logged no text after the cursor, nor per-token log-probs, only their mean).
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field

from rapidfuzz import fuzz

# Bump when a feature changes meaning: stored feature rows of another version are not mixed in.
FEATURE_VERSION = 1

# The window of text before the cursor that features look at (CUPS logged the last 2,000
# characters, so serving looks at no more, or the two would differ).
PREFIX_CHARS = 2000

LANGUAGES = ("python", "javascript", "typescript", "go", "rust", "java", "c", "cpp")
OUTCOMES = ("none", "accepted", "rejected")
# Character classes of the last (non-blank) character before the cursor.
CHAR_CLASSES = (
    "none", "letter", "digit", "space", "newline", "(", ")", "[", "]", "{", "}",
    ".", ",", ":", ";", "=", "quote", "operator", "#", "other",
)  # fmt: skip
# Tree-sitter node kinds at the cursor worth telling apart; the rest are "other".
NODE_KINDS = (
    "other", "ERROR", "module", "program", "block", "statement_block", "expression_statement",
    "call", "call_expression", "argument_list", "arguments", "identifier", "attribute",
    "member_expression", "assignment", "string", "string_content", "comment",
    "function_definition", "class_definition", "parameters", "if_statement", "for_statement",
    "return_statement", "import_statement", "import_from_statement", "dictionary", "list",
    "subscript", "binary_operator", "comparison_operator", "keyword_argument",
    "integer", "lambda", "decorator", "with_statement", "try_statement",
)  # fmt: skip


@dataclass(frozen=True)
class SyntaxFacts:
    """What tree-sitter says about the cursor (see lsp_server/gate/inputs.py, syntax_facts)."""

    in_comment: bool = False
    in_string: bool = False
    node_kind: str = "other"
    has_error: bool = False


@dataclass(frozen=True)
class History:
    """The session so far, as the user lived it."""

    prev_outcome: str = "none"  # none | accepted | rejected
    seconds_since_outcome: float | None = None
    shown: int = 0
    accepted: int = 0
    typing: bool | None = None  # an edit in the last second (CUPS: "UserTyping")
    typing_cps: float | None = None  # characters typed per second over the last 5 s


@dataclass(frozen=True)
class Suggestion:
    """A generated suggestion and what the model thought of it."""

    text: str
    tokens: int | None
    mean_logprob: float | None  # natural log, per token
    min_logprob: float | None = None
    breaks_parse: bool | None = None  # more syntax errors with it inserted than without


@dataclass(frozen=True)
class GateInput:
    language: str
    prefix: str  # up to PREFIX_CHARS characters before the cursor
    document_chars: int
    cursor_offset: int
    line_suffix: str | None = None  # the rest of the cursor's line; None when unknown
    syntax: SyntaxFacts = field(default_factory=SyntaxFacts)
    history: History = field(default_factory=History)
    suggestion: Suggestion | None = None

    def to_json(self) -> dict:
        return asdict(self)


def _nan(value: float | None) -> float:
    return math.nan if value is None else float(value)


def _flag(value: bool | None) -> float:
    return math.nan if value is None else float(value)


def _code(value: str, vocabulary: tuple[str, ...]) -> float:
    return float(vocabulary.index(value)) if value in vocabulary else float(len(vocabulary) - 1)


def char_class(char: str) -> str:
    if not char:
        return "none"
    if char == "\n":
        return "newline"
    if char.isspace():
        return "space"
    if char.isalpha() or char == "_":
        return "letter"
    if char.isdigit():
        return "digit"
    if char in "()[]{}.,:;=#":
        return char
    if char in "'\"`":
        return "quote"
    if char in "+-*/%<>!&|^~@":
        return "operator"
    return "other"


def _indent_columns(line: str) -> int:
    stripped = line.lstrip(" \t")
    return len(line[: len(line) - len(stripped)].expandtabs(4))


def _ends_block(previous_line: str) -> bool:
    """The last statement before the cursor leaves its block (return, raise, }, …)."""
    code = previous_line.strip()
    return code.startswith(("return", "raise", "break", "continue", "pass")) or code in (
        "}",
        "};",
        "end",
    )


PRE_FEATURES = (
    "language", "prev_outcome", "log_s_since_outcome", "session_shown", "session_accept_rate",
    "typing", "typing_cps", "rest_of_line_blank", "log_chars_after", "last_char",
    "last_nonspace_char", "line_chars", "line_blank", "log_document_chars", "relative_position",
    "in_comment", "in_string", "node_kind", "syntax_error", "indent_depth", "block_end",
    "prev_line_opens_block",
)  # fmt: skip
POST_FEATURES = (
    *PRE_FEATURES, "suggestion_chars", "suggestion_lines", "suggestion_tokens", "mean_logprob",
    "min_logprob", "repeats_suffix", "repeats_previous", "breaks_parse", "suggestion_alnum",
    "suggestion_starts_newline",
)  # fmt: skip
# Stage name → its feature names, in vector order.
STAGES = {"pre": PRE_FEATURES, "post": POST_FEATURES}


def pre_features(data: GateInput) -> list[float]:
    """Features known at the keystroke, in PRE_FEATURES order."""
    history, syntax = data.history, data.syntax
    prefix = data.prefix[-PREFIX_CHARS:]
    line_start = prefix.rfind("\n") + 1
    line = prefix[line_start:]
    above = prefix[:line_start].rstrip("\n").split("\n")
    previous_line = next((candidate for candidate in reversed(above) if candidate.strip()), "")
    stripped = prefix.rstrip()
    chars_after = max(0, data.document_chars - data.cursor_offset)
    return [
        _code(data.language, LANGUAGES),
        _code(history.prev_outcome, OUTCOMES),
        _nan(
            None
            if history.seconds_since_outcome is None
            else math.log1p(max(0.0, history.seconds_since_outcome))
        ),
        float(history.shown),
        history.accepted / history.shown if history.shown else math.nan,
        _flag(history.typing),
        _nan(history.typing_cps),
        math.nan if data.line_suffix is None else float(not data.line_suffix.strip()),
        math.log1p(chars_after),
        _code(char_class(prefix[-1:]), CHAR_CLASSES),
        _code(char_class(stripped[-1:]), CHAR_CLASSES),
        float(len(line)),
        float(not line.strip()),
        math.log1p(max(0, data.document_chars)),
        data.cursor_offset / data.document_chars if data.document_chars else 1.0,
        float(syntax.in_comment),
        float(syntax.in_string),
        _code(syntax.node_kind, NODE_KINDS),
        float(syntax.has_error),
        float(_indent_columns(line if line.strip() else line or previous_line)),
        float(_ends_block(previous_line) and not line.strip()),
        float(previous_line.rstrip().endswith((":", "{", "("))),
    ]


def post_features(data: GateInput) -> list[float]:
    """PRE_FEATURES plus what the suggestion itself shows, in POST_FEATURES order."""
    suggestion = data.suggestion
    if suggestion is None:
        raise ValueError("post_features needs a suggestion")
    text = suggestion.text
    first_line = next((line.strip() for line in text.split("\n") if line.strip()), "")
    previous = [line.strip() for line in data.prefix[-PREFIX_CHARS:].split("\n")[-30:]]
    repeats_previous = max(
        (fuzz.ratio(first_line, line) / 100 for line in previous if line), default=0.0
    )
    if data.line_suffix is None:
        repeats_suffix = math.nan
    else:
        rest = data.line_suffix.strip()
        repeats_suffix = fuzz.ratio(first_line, rest) / 100 if rest and first_line else 0.0
    visible = [char for char in text if not char.isspace()]
    return [
        *pre_features(data),
        float(len(text)),
        float(text.count("\n") + 1),
        _nan(suggestion.tokens),
        _nan(suggestion.mean_logprob),
        _nan(suggestion.min_logprob),
        repeats_suffix,
        repeats_previous,
        _flag(suggestion.breaks_parse),
        sum(char.isalnum() for char in visible) / len(visible) if visible else 0.0,
        float(text.startswith("\n")),
    ]


def named(values: list[float], names: tuple[str, ...]) -> dict[str, float | None]:
    """A feature vector as a JSON-friendly dict (NaN → None), for the feedback store."""
    return {
        name: (None if math.isnan(value) else round(value, 6))
        for name, value in zip(names, values, strict=True)
    }


def vector(values: dict[str, float | None], names: tuple[str, ...]) -> list[float]:
    """The inverse of `named`: a stored dict back to a vector (missing → NaN)."""
    return [_nan(values.get(name)) for name in names]
