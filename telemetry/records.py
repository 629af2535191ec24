"""Typed rows for the three tables: what the server hands to `Writer.record`.

Plain data: field names are the column names (see telemetry/schema.py for what each means).
A field left at None is not written: a second `Suggestion` with the same id and only, say,
`scores` set updates those columns and leaves the rest (the writer upserts suggestions).
JSON columns take Python values (dicts, lists); the writer encodes them. Times default to the
moment the row was enqueued.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar


@dataclass(slots=True)
class Suggestion:
    TABLE: ClassVar[str] = "suggestions"

    id: str
    kind: str | None = None  # completion (the column's default) | review | explanation
    created_ms: int | None = None
    language: str | None = None
    file: str | None = None
    model: str | None = None
    settings: dict[str, Any] | None = None
    mode: str | None = None
    prompt: str | None = None
    prefix: str | None = None
    suffix: str | None = None
    text: str | None = None
    features: dict[str, Any] | None = None
    scores: dict[str, Any] | None = None
    latency: dict[str, float] | None = None
    token_logprobs: list[Any] | None = None
    # reviews and explanations
    line: int | None = None
    end_line: int | None = None
    severity: str | None = None
    category: str | None = None
    detail: dict[str, Any] | None = None


@dataclass(slots=True)
class Event:
    TABLE: ClassVar[str] = "events"

    suggestion_id: str
    kind: str
    time_ms: int | None = None
    accepted_chars: int | None = None
    reason: str | None = None
    check_after_s: int | None = None
    similarity: float | None = None
    text: str | None = None
    value: float | None = None
    data: dict[str, Any] | None = None


@dataclass(slots=True)
class Request:
    TABLE: ClassVar[str] = "requests"

    decision: str  # skipped | generated
    time_ms: int | None = None
    language: str | None = None
    pre_score: float | None = None
    suggestion_id: str | None = None


Record = Suggestion | Event | Request
