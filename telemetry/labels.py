"""Completions with a known outcome, oldest first: what the acceptance gate trains on.

A suggestion is labelled once the user answered it: accepted (wholly or in part) or rejected.
Survival adds a stricter label: accepted text still there (similarity ≥ SURVIVED) at the last
check. Rows are read in time order so that a one-user model can be validated on the most recent.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from hintwise.telemetry.stats import SURVIVED, DbLike, connection


@dataclass(frozen=True)
class Labelled:
    id: str
    created_ms: int
    features: dict[str, Any]  # the JSON the server stored when it showed the suggestion
    accepted: bool
    survival: float | None  # similarity at the latest survival check, if any

    @property
    def survived(self) -> bool | None:
        if not self.accepted or self.survival is None:
            return None if self.accepted else False
        return self.survival >= SURVIVED


_SQL = """
    SELECT s.id, s.created_ms, s.features, s.rowid AS row_number,
        EXISTS (SELECT 1 FROM events e WHERE e.suggestion_id = s.id
                AND e.kind IN ('accepted', 'partially_accepted')) AS accepted,
        EXISTS (SELECT 1 FROM events e WHERE e.suggestion_id = s.id
                AND e.kind = 'rejected') AS rejected,
        (SELECT e.similarity FROM events e WHERE e.suggestion_id = s.id AND e.kind = 'survival'
            ORDER BY e.check_after_s DESC LIMIT 1) AS survival
    FROM suggestions s
    WHERE s.kind = 'completion' AND s.features IS NOT NULL
"""
# The newest answered ones first, at most :limit of them.
_NEWEST_SQL = f"""
    SELECT * FROM ({_SQL}) WHERE accepted OR rejected
    ORDER BY created_ms DESC, row_number DESC LIMIT :limit
"""


def labelled(db: DbLike, newest: int | None = None) -> Iterator[Labelled]:
    """Every answered completion in the store, oldest first (unanswered ones are skipped).
    With `newest`: only that many, the most recent, newest first (read from the end and one at
    a time, so that a retrain's cost and memory do not grow with the store)."""
    with connection(db) as conn:
        if newest is None:
            rows = conn.execute(_SQL + " ORDER BY s.created_ms, s.rowid")
        else:
            rows = conn.execute(_NEWEST_SQL, {"limit": newest})
        for row_id, created_ms, features, _, accepted, rejected, survival in rows:
            if not accepted and not rejected:
                continue
            try:
                parsed = json.loads(features)
            except (TypeError, json.JSONDecodeError):
                continue
            if isinstance(parsed, dict):
                yield Labelled(row_id, created_ms, parsed, bool(accepted), survival)


def counts(db: DbLike) -> dict[str, int]:
    """How many completions are labelled, and how many of the accepted have survival data."""
    total = accepted = with_survival = 0
    for row in labelled(db):
        total += 1
        accepted += row.accepted
        with_survival += row.accepted and row.survival is not None
    return {"labelled": total, "accepted": accepted, "with_survival": with_survival}
