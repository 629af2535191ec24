"""Retention: purge by date, by age and by row count, suggestions together with their events."""

from __future__ import annotations

from datetime import date, datetime
from pathlib import Path

import pytest
from sqlite_utils import Database

from hintwise.telemetry import Writer, default_path, open_db, purge
from hintwise.telemetry.store import DAY_MS, to_epoch_ms

NOW = to_epoch_ms(datetime(2026, 11, 20, 12, 0))


def fill(db: Database) -> None:
    """Suggestions 0..9, suggestion n created n days before NOW, each with two events;
    one gate request per day; and one orphan event (its suggestion was never stored)."""
    for n in range(10):
        created = NOW - n * DAY_MS
        db["suggestions"].insert({"id": f"s{n}", "created_ms": created, "text": f"t{n}"})
        db["events"].insert_all(
            [
                {"suggestion_id": f"s{n}", "kind": "shown", "time_ms": created + 10},
                {"suggestion_id": f"s{n}", "kind": "accepted", "time_ms": created + 900},
            ]
        )
        db["requests"].insert({"time_ms": created, "decision": "skipped"})
    db["events"].insert({"suggestion_id": "gone", "kind": "rejected", "time_ms": NOW - 30 * DAY_MS})


def ids(db: Database) -> set[str]:
    return {row["id"] for row in db["suggestions"].rows}


def test_purge_before_a_date(tmp_path: Path) -> None:
    db = open_db(tmp_path / "t.db")
    fill(db)
    # Everything created before the 17th (s4..s9, whose last event is a few hundred ms later).
    result = purge(db, before=date(2026, 11, 17), now_ms=NOW)
    assert ids(db) == {"s0", "s1", "s2", "s3"}
    assert (result.suggestions, result.events, result.requests) == (6, 13, 6)
    assert {row["suggestion_id"] for row in db["events"].rows} == ids(db)
    assert db["requests"].count == 4


def test_purge_keep_days_and_iso_string(tmp_path: Path) -> None:
    db = open_db(tmp_path / "t.db")
    fill(db)
    purge(db, keep_days=2.5, now_ms=NOW)
    assert ids(db) == {"s0", "s1", "s2"}
    purge(db, before="2026-11-19T11:00:00", now_ms=NOW)
    assert ids(db) == {"s0", "s1"}


def test_purge_keep_rows(tmp_path: Path) -> None:
    db = open_db(tmp_path / "t.db")
    fill(db)
    result = purge(db, keep_rows=3, now_ms=NOW)
    assert ids(db) == {"s0", "s1", "s2"}
    assert result.suggestions == 7 and result.events == 14
    assert {row["suggestion_id"] for row in db["events"].rows} == {"s0", "s1", "s2", "gone"}
    assert db["requests"].count == 3  # older than the oldest suggestion kept: gone
    assert purge(db, keep_rows=0, now_ms=NOW).suggestions == 3
    assert db["suggestions"].count == 0 and db["requests"].count == 0


def test_purge_without_limits_deletes_nothing(tmp_path: Path) -> None:
    db = open_db(tmp_path / "t.db")
    fill(db)
    assert purge(db, now_ms=NOW) == purge(db, keep_days=365, keep_rows=100, now_ms=NOW)
    assert purge(db).suggestions == 0 and db["suggestions"].count == 10
    with pytest.raises(ValueError):
        purge(db, keep_rows=-1)


def test_purge_by_path_while_the_writer_runs(tmp_path: Path) -> None:
    path = tmp_path / "t.db"
    writer = Writer.start(path)
    for n in range(5):
        writer.enqueue("suggestions", {"id": f"old{n}", "created_ms": NOW - 100 * DAY_MS})
    assert writer.flush()
    for n in range(5):
        writer.enqueue("suggestions", {"id": f"new{n}"})
        writer.enqueue("events", {"suggestion_id": f"new{n}", "kind": "shown"})
    assert purge(path, keep_days=30).suggestions == 5
    assert writer.close() and writer.ok
    db = open_db(path)
    assert ids(db) == {f"new{n}" for n in range(5)} and db["events"].count == 5


def test_purge_refuses_to_create_a_database(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError):
        purge(tmp_path / "missing.db", keep_days=1)
    assert not (tmp_path / "missing.db").exists()


def test_default_path(tmp_path: Path) -> None:
    assert default_path(tmp_path) == tmp_path / "telemetry.db"
    assert default_path().name == "telemetry.db" and "hintwise" in str(default_path())
