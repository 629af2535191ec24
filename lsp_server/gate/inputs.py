"""GateInputs from the places the acceptance gate learns or serves: CUPS files and a live
request (the feedback store keeps the features the server computed, see training.py).
Tree-sitter facts are computed here, by one function, for both (hintwise.models cannot import
the grammars' home, lsp_server/code/syntax.py).
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterator
from dataclasses import dataclass, replace
from functools import lru_cache
from pathlib import Path
from typing import Protocol

from tree_sitter import Parser

from hintwise.lsp_server.code.syntax import count_errors, grammar, state_at
from hintwise.models.gate.features import (
    PREFIX_CHARS,
    GateInput,
    History,
    Suggestion,
    SyntaxFacts,
)


class CursorFacts(Protocol):
    """What the gate reads of a completion's cursor context (completion.context.CursorContext)."""

    @property
    def language_id(self) -> str: ...

    @property
    def line_suffix(self) -> str: ...


@lru_cache(maxsize=16)
def _parser(language_id: str) -> Parser | None:
    language = grammar(language_id)
    return Parser(language) if language is not None else None


@lru_cache(maxsize=4)
def _tree(text: str, language_id: str):
    """A parse of `text`, kept for the next call: the window before the cursor is parsed once
    per request, though both gate stages look at it."""
    parser = _parser(language_id)
    if parser is None:
        return None
    return parser.parse(text.encode("utf-8", errors="surrogatepass"))


def syntax_facts(prefix: str, language_id: str) -> SyntaxFacts:
    """Tree-sitter's view of the end of `prefix` (the last PREFIX_CHARS characters, parsed alone:
    CUPS has only those, so serving parses the same window rather than the whole document)."""
    window = prefix[-PREFIX_CHARS:]
    tree = _tree(window, language_id)
    if tree is None:
        return SyntaxFacts()
    state = state_at(tree, len(window.encode("utf-8", errors="surrogatepass")))
    kind = state.node_kinds[0] if state.node_kinds else "other"
    return SyntaxFacts(state.in_comment, state.in_string, kind, state.has_error)


def breaks_parse(prefix: str, text: str, language_id: str) -> bool | None:
    """Does inserting the suggestion add syntax errors to the window before the cursor?"""
    window = prefix[-PREFIX_CHARS:]
    before = _tree(window, language_id)
    if before is None:
        return None
    after = _tree(window + text, language_id)
    return count_errors(after.root_node) > count_errors(before.root_node)


def suggestion(
    prefix: str, text: str, logprobs: list[float], language_id: str, tokens: int | None = None
) -> Suggestion:
    """The post-generation facts of a suggestion with its per-token natural-log probabilities
    (a remote server may give none: then only the token count, if known)."""
    return Suggestion(
        text=text,
        tokens=len(logprobs) if logprobs else tokens,
        mean_logprob=sum(logprobs) / len(logprobs) if logprobs else None,
        min_logprob=min(logprobs) if logprobs else None,
        breaks_parse=breaks_parse(prefix, text, language_id),
    )


def request_input(text: str, offset: int, ctx: CursorFacts, history: History) -> GateInput:
    """A live request's GateInput: the same facts, from the same functions, as for CUPS rows."""
    prefix = text[max(0, offset - PREFIX_CHARS) : offset]
    return GateInput(
        language=ctx.language_id,
        prefix=prefix,
        document_chars=len(text),
        cursor_offset=offset,
        line_suffix=ctx.line_suffix,
        syntax=syntax_facts(prefix, ctx.language_id),
        history=history,
    )


def with_suggestion(
    data: GateInput, text: str, logprobs: list[float], tokens: int | None = None
) -> GateInput:
    """`data` with the generated suggestion's facts added (the post-generation stage)."""
    return replace(data, suggestion=suggestion(data.prefix, text, logprobs, data.language, tokens))


# -- CUPS ----------------------------------------------------------------------------------------

CUPS_FIELDS = (
    "user",
    "timestamp",
    "language",
    "prefix",
    "suggestion",
    "accepted",
    "chars_after_cursor",
    "time_since_last_outcome_s",
    "prev_outcome",
    "n_shown_before_in_session",
    "n_accepted_before_in_session",
    "typing_state_at_show",
    "copilot_measurements.meanLogProb",
    "copilot_measurements.numTokens",
    "copilot_measurements.documentLength",
    "copilot_measurements.promptEndPos",
)
# May be null in a row (the first suggestion of a session has no previous outcome).
_NULLABLE = {"time_since_last_outcome_s", "prev_outcome", "copilot_measurements.meanLogProb"}


class EventsFileError(ValueError):
    """A file in the CUPS format that cannot be used; the message names the line and field."""


@dataclass(frozen=True)
class LabelledInput:
    group: str  # who made it (a CUPS user; the store's rows are one user)
    time: float  # epoch seconds, for time-ordered splits
    data: GateInput
    accepted: bool


def _field(row: dict, dotted: str):
    value = row
    for part in dotted.split("."):
        if not isinstance(value, dict) or part not in value:
            raise KeyError(dotted)
        value = value[part]
    return value


def cups_input(row: dict) -> GateInput:
    """One CUPS row (a Copilot suggestion as shown to a programmer) as a GateInput."""
    measurements = row["copilot_measurements"]
    prefix = row["prefix"]
    language = row["language"]
    mean = measurements.get("meanLogProb")
    typing_state = row["typing_state_at_show"]
    document_chars = int(measurements["documentLength"])
    return GateInput(
        language=language,
        prefix=prefix,
        document_chars=document_chars,
        cursor_offset=max(0, document_chars - int(row["chars_after_cursor"])),
        line_suffix=None,
        syntax=syntax_facts(prefix, language),
        history=History(
            prev_outcome=row["prev_outcome"] or "none",
            seconds_since_outcome=row["time_since_last_outcome_s"],
            shown=int(row["n_shown_before_in_session"]),
            accepted=int(row["n_accepted_before_in_session"]),
            typing=None if typing_state == "UserTypingOrPaused" else typing_state == "UserTyping",
            typing_cps=None,
        ),
        suggestion=Suggestion(
            text=row["suggestion"],
            tokens=int(measurements["numTokens"]),
            mean_logprob=None if mean is None or math.isnan(mean) else float(mean),
            min_logprob=None,
            breaks_parse=breaks_parse(prefix, row["suggestion"], language),
        ),
    )


def read_cups(path: Path) -> Iterator[LabelledInput]:
    """Rows of a JSONL file in the CUPS format; EventsFileError names the first bad line."""
    with open(path, encoding="utf-8") as lines:
        for number, line in enumerate(lines, 1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except json.JSONDecodeError as error:
                raise EventsFileError(f"{path}:{number}: not JSON ({error.msg})") from None
            if not isinstance(row, dict):
                raise EventsFileError(f"{path}:{number}: a row must be a JSON object")
            for name in CUPS_FIELDS:
                try:
                    value = _field(row, name)
                except KeyError:
                    raise EventsFileError(
                        f"{path}:{number}: missing field {name!r} (the CUPS format is "
                        "described in the README's acceptance gate section)"
                    ) from None
                if value is None and name not in _NULLABLE:
                    raise EventsFileError(f"{path}:{number}: field {name!r} is null")
            try:
                data = cups_input(row)
            except (TypeError, ValueError) as error:
                raise EventsFileError(f"{path}:{number}: {error}") from None
            yield LabelledInput(
                str(row["user"]), float(row["timestamp"]), data, bool(row["accepted"])
            )
