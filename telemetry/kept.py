"""What the user kept of each completion, for tuning the completion model on it.

One row per completion suggestion whose outcome says what the right answer at that spot was:

- `accepted`: accepted in full and not deleted afterwards (its latest survival check, when it
  has one, at least `min_survival`);
- `replacement`: rejected, and the user wrote something else there (the replacement event).

Partial acceptances are left out: the accepted prefix is where the user stopped taking the
suggestion, not where their line ended, and teaching the model to stop there would be wrong.
A row holds the document around the cursor (`prefix`, `suffix`) rather than only the prompt, so
the tuner can rebuild the request exactly as the server builds it, with its token healing.
Suggestions whose code the store does not hold (`store_code` hashed or none) are counted, not
returned.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

from hintwise.telemetry.export import KTO_DEFAULT_MIN_SURVIVAL, is_stored
from hintwise.telemetry.stats import DbLike, connection, has_event

_SQL = f"""
    SELECT s.id, s.created_ms, s.language, s.prefix, s.suffix, s.text,
        {has_event("accepted")} AS accepted,
        (SELECT e.similarity FROM events e INDEXED BY idx_events_suggestion_id_kind
            WHERE e.suggestion_id = s.id AND e.kind = 'survival' AND e.similarity IS NOT NULL
            ORDER BY e.time_ms DESC, e.check_after_s DESC, e.id DESC LIMIT 1) AS survival,
        (SELECT e.text FROM events e INDEXED BY idx_events_suggestion_id_kind
            WHERE e.suggestion_id = s.id AND e.kind = 'replacement'
            ORDER BY e.time_ms DESC, e.id DESC LIMIT 1) AS replacement
    FROM suggestions s
    WHERE s.kind = 'completion' AND s.created_ms >= :since
    ORDER BY s.created_ms, s.id
"""


@dataclass(frozen=True)
class Kept:
    """The document around the cursor and the text the user kept there."""

    id: str
    created_ms: int
    language: str
    prefix: str
    suffix: str
    kept: str
    source: str  # accepted | replacement
    suggested: str  # what the model suggested (equal to `kept` when accepted)


@dataclass
class KeptCounts:
    """Why the other completions gave no row."""

    completions: int = 0
    not_stored: int = 0  # code hashed or not kept (telemetry.store_code)
    no_answer: int = 0  # no acceptance, no replacement, or deleted after acceptance


def kept_rows(
    db: DbLike,
    counts: KeptCounts | None = None,
    since_ms: int = 0,
    min_survival: float = KTO_DEFAULT_MIN_SURVIVAL,
) -> Iterator[Kept]:
    """Rows oldest first (the most recent ones are the tuner's held-out set)."""
    counts = counts if counts is not None else KeptCounts()
    with connection(db) as conn:
        cursor = conn.execute(_SQL, {"since": since_ms})
        try:
            for row in cursor:
                counts.completions += 1
                kept = _kept(row, min_survival, counts)
                if kept is not None:
                    yield kept
        finally:
            cursor.close()


def _kept(row: tuple, min_survival: float, counts: KeptCounts) -> Kept | None:
    sid, created, language, prefix, suffix, text, accepted, survival, replacement = row
    if not (is_stored(prefix) and is_stored(text)) or (suffix and not is_stored(suffix)):
        counts.not_stored += 1
        return None
    if accepted and (survival is None or survival >= min_survival) and text.strip():
        return Kept(sid, created, language or "", prefix, suffix or "", text, "accepted", text)
    if not accepted and is_stored(replacement) and replacement.strip() and replacement != text:
        return Kept(
            sid, created, language or "", prefix, suffix or "", replacement, "replacement", text
        )
    counts.no_answer += 1
    return None
