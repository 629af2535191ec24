"""Suggestions the server has shown and what became of them, kept in memory.

This is the hand-off point to the feedback store (telemetry/): until it exists, the server
remembers the most recent suggestions and their outcome so `hintwise.accept` has something real to
act on and tests can see it.
"""

from __future__ import annotations

import time
from collections import OrderedDict
from dataclasses import dataclass

from lsp_server.completion import Result

KEEP = 2000


@dataclass
class Record:
    result: Result
    shown_at: float
    outcome: str = "shown"  # shown | accepted | superseded
    outcome_at: float | None = None


class SuggestionLog:
    def __init__(self, keep: int = KEEP):
        self._records: OrderedDict[str, Record] = OrderedDict()
        self._keep = keep
        self._last_per_document: dict[str, str] = {}

    def shown(self, result: Result) -> None:
        if result.id is None:
            return
        previous = self._last_per_document.get(result.uri)
        if previous is not None and previous != result.id:
            record = self._records.get(previous)
            if record is not None and record.outcome == "shown":
                record.outcome, record.outcome_at = "superseded", time.time()
        self._last_per_document[result.uri] = result.id
        if result.id not in self._records:
            self._records[result.id] = Record(result, time.time())
            while len(self._records) > self._keep:
                self._records.popitem(last=False)

    def accepted(self, suggestion_id: str) -> Record | None:
        record = self._records.get(suggestion_id)
        if record is not None:
            record.outcome, record.outcome_at = "accepted", time.time()
        return record

    def get(self, suggestion_id: str) -> Record | None:
        return self._records.get(suggestion_id)

    def counts(self) -> dict[str, int]:
        totals: dict[str, int] = {}
        for record in self._records.values():
            totals[record.outcome] = totals.get(record.outcome, 0) + 1
        return totals
