"""Feedback as preference data for tuning: `hintwise feedback export --format dpo|kto|events`.

The output is JSON Lines that TRL reads as it is (`datasets.load_dataset("json", ...)`):

- `dpo`: `{"prompt", "chosen", "rejected"}`, from
  (a) an accepted and a rejected suggestion for the same prompt (the exact same prompt text), and
  (b) a rejected suggestion and the user's replacement: what they wrote at that spot instead is
      the human's own answer to the prompt the model saw (`chosen` = replacement).
- `kto`: `{"prompt", "completion", "label"}`, one row per suggestion with an outcome: accepted
  → true, rejected → false, partially accepted → its accepted prefix (`text[:accepted_chars]`),
  true.
- `events`: one object per suggestion with all its columns and its events, for inspection.

`prompt` is always the exact prompt the model saw, so a model tuned on these rows trains on what
it will be asked.

Survival decides whether an acceptance was a good one: text accepted and then deleted was not
wanted after all. KTO labels an accepted (or partially accepted) suggestion true only if its
latest survival check (when it has one) is at least `min_survival`, 0.5 by default, and false
otherwise. For DPO, `min_survival` is a filter the user asks for: with it, an accepted suggestion
is a `chosen` answer only if it has a survival check and its latest one is at least `min_survival`;
without it, every accepted suggestion is.

Streamed: each format is one SQL query whose cursor is read row by row, and rows are written as
they come, so memory does not grow with the store (measured in tests/test_telemetry_export.py).
DPO pairing (a) needs the suggestions of one prompt together: SQLite sorts by prompt text (its
sorter spills to temporary files, not to Python memory), and Python holds one prompt's group at a
time, at most `MAX_PER_PROMPT` distinct texts on each side.

Suggestions whose prompt or text the store does not hold (`telemetry.store_code = hashed` keeps a
sha256 in their place, `none` keeps NULL) cannot become training rows: they are skipped and
counted (`Exported.skipped`, and a log line). The `events` format exports them as they are.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import sqlite3
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from itertools import groupby
from pathlib import Path
from typing import Any, Literal, TextIO

from hintwise.telemetry.stats import DbLike, connection, has_event

log = logging.getLogger(__name__)

Format = Literal["dpo", "kto", "events"]
FORMATS: tuple[str, ...] = ("dpo", "kto", "events")
KTO_DEFAULT_MIN_SURVIVAL = 0.5
# Distinct accepted / rejected texts kept per prompt for DPO pairing: a prompt seen thousands of
# times (an empty file's first line) must not hold thousands of texts in memory.
MAX_PER_PROMPT = 64
# Pairs of one prompt remembered (as hashes) to drop repeats; past this, repeats go through.
MAX_REMEMBERED_PAIRS = 4096

SUGGESTION_JSON_COLUMNS = ("settings", "features", "scores", "latency", "token_logprobs", "detail")

# Skip reasons, as counted in Exported.reasons.
NOT_STORED = "not_stored"  # prompt, text or replacement hashed or not kept (store_code)
EMPTY = "empty"  # nothing to train on: an empty suggestion, replacement or accepted prefix
SAME_TEXT = "same_text"  # chosen and rejected would be the same text
NO_SURVIVAL = "below_min_survival"  # DPO: accepted, but not shown to have survived
DUPLICATE = "duplicate"  # DPO: the same pair again for the same prompt


@dataclass
class Exported:
    """What one export wrote and what it left out, and why."""

    format: str
    written: int = 0
    reasons: dict[str, int] = field(default_factory=dict)

    @property
    def skipped(self) -> int:
        return sum(self.reasons.values())

    def skip(self, reason: str, count: int = 1) -> None:
        self.reasons[reason] = self.reasons.get(reason, 0) + count


def is_stored(value: str | None) -> bool:
    """True when the column holds the code itself, not NULL or the sha256 that `hashed` leaves."""
    if value is None:
        return False
    return not (len(value) == 64 and all(c in "0123456789abcdef" for c in value))


# --- the queries --------------------------------------------------------------------------------

# The latest survival check and replacement of one suggestion. INDEXED BY: with ORDER BY time_ms
# the planner may prefer the (kind, time_ms) index, which would scan every survival event of the
# store for each suggestion; (suggestion_id, kind) finds the few rows of this one.
_LATEST_SURVIVAL = """(SELECT e.similarity FROM events e INDEXED BY idx_events_suggestion_id_kind
    WHERE e.suggestion_id = s.id AND e.kind = 'survival' AND e.similarity IS NOT NULL
    ORDER BY e.time_ms DESC, e.check_after_s DESC, e.id DESC LIMIT 1)"""
_PARTIAL_CHARS = """(SELECT max(e.accepted_chars) FROM events e
    WHERE e.suggestion_id = s.id AND e.kind = 'partially_accepted')"""
_REPLACEMENT = """(SELECT e.text FROM events e INDEXED BY idx_events_suggestion_id_kind
    WHERE e.suggestion_id = s.id AND e.kind = 'replacement'
    ORDER BY e.time_ms DESC, e.id DESC LIMIT 1)"""


def _where(since_ms: int | None, language: str | None) -> tuple[str, dict[str, Any]]:
    clauses: list[str] = ["1"]
    params: dict[str, Any] = {}
    if since_ms is not None:
        clauses.append("s.created_ms >= :since")
        params["since"] = since_ms
    if language is not None:
        clauses.append("s.language = :language")
        params["language"] = language
    return " AND ".join(clauses), params


_HAS_OUTCOME = """EXISTS (SELECT 1 FROM events e WHERE e.suggestion_id = s.id
    AND e.kind IN ('accepted', 'partially_accepted', 'rejected'))"""


def _outcomes_sql(where: str, order: str) -> str:
    """One row per suggestion with an accept/reject outcome, with what the exports need of it.

    The outcome test is one EXISTS in the WHERE clause rather than a filter on the selected flags:
    SQLite would evaluate each flag's subquery twice then.
    """
    return f"""
        SELECT s.id, s.created_ms, s.prompt, s.text,
            {has_event("accepted")} AS accepted,
            {_PARTIAL_CHARS} AS partial_chars,
            {has_event("rejected")} AS rejected,
            {_LATEST_SURVIVAL} AS survival,
            {_REPLACEMENT} AS replacement
        FROM suggestions s
        WHERE {where} AND {_HAS_OUTCOME}
        ORDER BY {order}
    """


@dataclass(slots=True)
class _Outcome:
    """One suggestion's outcome, as read from the query above."""

    id: str
    prompt: str | None
    text: str | None
    accepted: bool
    partial_chars: int | None
    rejected: bool
    survival: float | None
    replacement: str | None

    @property
    def kept(self) -> bool:
        """Accepted in full or in part: acceptance wins over a rejection recorded for it too."""
        return self.accepted or self.partial_chars is not None

    @property
    def accepted_text(self) -> str:
        """What the user took: all of it, or the accepted prefix."""
        text = self.text or ""
        if self.accepted or self.partial_chars is None:
            return text
        return text[: max(self.partial_chars, 0)]


def _outcomes(
    conn: sqlite3.Connection, since_ms: int | None, language: str | None, order: str
) -> Iterator[_Outcome]:
    where, params = _where(since_ms, language)
    cursor = conn.execute(_outcomes_sql(where, order), params)
    try:
        for row in cursor:
            yield _Outcome(
                id=row[0],
                prompt=row[2],
                text=row[3],
                accepted=bool(row[4]),
                partial_chars=row[5],
                rejected=bool(row[6]),
                survival=row[7],
                replacement=row[8],
            )
    finally:
        cursor.close()


# --- DPO ----------------------------------------------------------------------------------------


def dpo_rows(
    conn: sqlite3.Connection,
    result: Exported,
    since_ms: int | None = None,
    language: str | None = None,
    min_survival: float | None = None,
) -> Iterator[dict[str, str]]:
    """DPO pairs, one prompt group at a time (the query sorts by prompt text)."""
    outcomes = _outcomes(conn, since_ms, language, "s.prompt, s.id")
    for prompt, group in groupby(outcomes, key=lambda outcome: outcome.prompt):
        yield from _dpo_group(prompt, group, result, min_survival)


def _dpo_group(
    prompt: str | None,
    group: Iterable[_Outcome],
    result: Exported,
    min_survival: float | None,
) -> Iterator[dict[str, str]]:
    """Pairs (b) as they stream past, then pairs (a) once the whole group has been seen; a pair
    already written for this prompt (the same rejection replaced twice alike, or a rejected text
    that is also some accepted text's pair) is written once."""
    chosen: dict[str, None] = {}  # insertion-ordered sets of distinct texts
    rejected: dict[str, None] = {}
    seen: set[int] = set()
    for outcome in group:
        if not is_stored(prompt) or not is_stored(outcome.text):
            result.skip(NOT_STORED)
            continue
        text = outcome.text or ""
        if outcome.kept:
            if not outcome.accepted:
                continue  # a partial acceptance is a KTO row, not a DPO answer
            if min_survival is not None and (
                outcome.survival is None or outcome.survival < min_survival
            ):
                result.skip(NO_SURVIVAL)
            elif text.strip() and len(chosen) < MAX_PER_PROMPT:
                chosen.setdefault(text)
            continue
        if text.strip() and len(rejected) < MAX_PER_PROMPT:
            rejected.setdefault(text)
        if outcome.replacement is not None:
            pair = _replacement_pair(prompt or "", text, outcome.replacement, result)
            if pair is not None and _first_time(pair, seen, result):
                yield pair
    for pair in _accepted_rejected_pairs(prompt or "", list(chosen), list(rejected), result):
        if _first_time(pair, seen, result):
            yield pair


def _first_time(pair: dict[str, str], seen: set[int], result: Exported) -> bool:
    """False (and counted) for a pair this prompt group has already written."""
    key = hash((pair["chosen"], pair["rejected"]))
    if key in seen:
        result.skip(DUPLICATE)
        return False
    if len(seen) < MAX_REMEMBERED_PAIRS:
        seen.add(key)
    return True


def _replacement_pair(
    prompt: str, text: str, replacement: str, result: Exported
) -> dict[str, str] | None:
    """Pair (b): the user's own text is preferred to the suggestion they rejected."""
    if not is_stored(replacement):
        result.skip(NOT_STORED)
    elif not replacement.strip() or not text.strip():
        result.skip(EMPTY)
    elif replacement == text:
        result.skip(SAME_TEXT)
    else:
        return {"prompt": prompt, "chosen": replacement, "rejected": text}
    return None


def _accepted_rejected_pairs(
    prompt: str, chosen: list[str], rejected: list[str], result: Exported
) -> Iterator[dict[str, str]]:
    """Pairs (a): every accepted and every rejected text used at least once, cycling the shorter
    side, so the count grows as max(len) rather than the product. A text that was accepted at
    this prompt is not also a rejected answer to it."""
    accepted = set(chosen)
    dropped = [text for text in rejected if text in accepted]
    if dropped:
        result.skip(SAME_TEXT, len(dropped))
        rejected = [text for text in rejected if text not in accepted]
    if not chosen or not rejected:
        return
    for index in range(max(len(chosen), len(rejected))):
        yield {
            "prompt": prompt,
            "chosen": chosen[index % len(chosen)],
            "rejected": rejected[index % len(rejected)],
        }


# --- KTO ----------------------------------------------------------------------------------------


def kto_rows(
    conn: sqlite3.Connection,
    result: Exported,
    since_ms: int | None = None,
    language: str | None = None,
    min_survival: float | None = None,
) -> Iterator[dict[str, Any]]:
    """One labelled row per suggestion with an outcome, oldest first."""
    threshold = KTO_DEFAULT_MIN_SURVIVAL if min_survival is None else min_survival
    for outcome in _outcomes(conn, since_ms, language, "s.created_ms, s.id"):
        if not is_stored(outcome.prompt) or not is_stored(outcome.text):
            result.skip(NOT_STORED)
            continue
        completion = outcome.accepted_text if outcome.kept else outcome.text or ""
        if not completion.strip():
            result.skip(EMPTY)
            continue
        label = outcome.kept and (outcome.survival is None or outcome.survival >= threshold)
        yield {"prompt": outcome.prompt, "completion": completion, "label": label}


# --- events -------------------------------------------------------------------------------------

_EVENTS_SQL = """
    SELECT s.*, (
        SELECT json_group_array(json_object(
            'kind', e.kind, 'time', e.time, 'time_ms', e.time_ms,
            'accepted_chars', e.accepted_chars, 'reason', e.reason,
            'check_after_s', e.check_after_s, 'similarity', e.similarity, 'text', e.text,
            'value', e.value, 'data', json(e.data)))
        FROM (SELECT * FROM events e WHERE e.suggestion_id = s.id ORDER BY e.time_ms, e.id) e
    ) AS events_json
    FROM suggestions s WHERE {where}
    ORDER BY s.created_ms, s.id
"""


def event_rows(
    conn: sqlite3.Connection,
    result: Exported,
    since_ms: int | None = None,
    language: str | None = None,
) -> Iterator[dict[str, Any]]:
    """Every suggestion of the window, its JSON columns decoded, with its events in time order
    (an event's empty fields left out)."""
    where, params = _where(since_ms, language)
    cursor = conn.execute(_EVENTS_SQL.format(where=where), params)
    try:
        names = [column[0] for column in cursor.description]
        for values in cursor:
            row = dict(zip(names, values, strict=True))
            for column in SUGGESTION_JSON_COLUMNS:
                if isinstance(row.get(column), str):
                    row[column] = json.loads(row[column])
            events = json.loads(row.pop("events_json") or "[]")
            row["events"] = [
                {key: value for key, value in event.items() if value is not None}
                for event in events
            ]
            yield row
    finally:
        cursor.close()


# --- writing ------------------------------------------------------------------------------------


def export(
    db: DbLike,
    fmt: str,
    out: str | Path | TextIO,
    since_ms: int | None = None,
    language: str | None = None,
    min_survival: float | None = None,
) -> int:
    """Write the `fmt` export ("dpo", "kto" or "events") to `out` as JSON Lines; return how many
    rows were written. Rows skipped for want of stored code are logged (see `export_detailed`
    for the counts)."""
    return export_detailed(db, fmt, out, since_ms, language, min_survival).written


def export_detailed(
    db: DbLike,
    fmt: str,
    out: str | Path | TextIO,
    since_ms: int | None = None,
    language: str | None = None,
    min_survival: float | None = None,
) -> Exported:
    """`export`, returning the rows written and the rows skipped per reason.

    `out` is a path (written to `<name>.partial` and renamed at the end, so a failed export never
    leaves a half file under the real name) or an open text stream (e.g. sys.stdout).
    """
    if fmt not in FORMATS:
        raise ValueError(f"unknown export format {fmt!r}; formats: {', '.join(FORMATS)}")
    if min_survival is not None and not 0 <= min_survival <= 1:
        raise ValueError("min_survival must be between 0 and 1")
    result = Exported(format=fmt)
    with connection(db) as conn, _output(out) as stream:
        if fmt == "dpo":
            rows: Iterator[dict[str, Any]] = dpo_rows(
                conn, result, since_ms, language, min_survival
            )
        elif fmt == "kto":
            rows = kto_rows(conn, result, since_ms, language, min_survival)
        else:
            rows = event_rows(conn, result, since_ms, language)
        result.written = write_jsonl(rows, stream)
    if result.reasons.get(NOT_STORED):
        log.warning(
            "export %s: skipped %d suggestions whose prompt or text the store does not hold "
            "(telemetry.store_code = hashed or none)",
            fmt,
            result.reasons[NOT_STORED],
        )
    log.info("export %s: %d rows written, skipped %s", fmt, result.written, result.reasons)
    return result


def write_jsonl(rows: Iterable[dict[str, Any]], stream: TextIO) -> int:
    """One compact JSON object per line, non-ASCII kept as it is (code is UTF-8 text)."""
    count = 0
    for row in rows:
        stream.write(json.dumps(row, ensure_ascii=False, separators=(",", ":")))
        stream.write("\n")
        count += 1
    return count


@contextlib.contextmanager
def _output(out: str | Path | TextIO) -> Iterator[TextIO]:
    if not isinstance(out, str | Path):
        yield out
        return
    path = Path(out)
    partial = path.with_name(path.name + ".partial")
    try:
        with partial.open("w", encoding="utf-8", newline="\n") as stream:
            yield stream
        os.replace(partial, path)
    finally:
        partial.unlink(missing_ok=True)
