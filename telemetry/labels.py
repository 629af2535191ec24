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
    SELECT s.id, s.created_ms, s.features,
        EXISTS (SELECT 1 FROM events e WHERE e.suggestion_id = s.id
                AND e.kind IN ('accepted', 'partially_accepted')) AS accepted,
        EXISTS (SELECT 1 FROM events e WHERE e.suggestion_id = s.id
                AND e.kind = 'rejected') AS rejected,
        (SELECT e.similarity FROM events e WHERE e.suggestion_id = s.id AND e.kind = 'survival'
            ORDER BY e.check_after_s DESC LIMIT 1) AS survival
    FROM suggestions s
    WHERE s.kind = 'completion' AND s.features IS NOT NULL
    ORDER BY s.created_ms, s.rowid
"""


def labelled(db: DbLike) -> Iterator[Labelled]:
    """Every answered completion in the store, oldest first (unanswered ones are skipped)."""
    with connection(db) as conn:
        for row_id, created_ms, features, accepted, rejected, survival in conn.execute(_SQL):
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
