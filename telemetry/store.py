"""Opening the feedback store from outside the writer, and retention.

The writer (telemetry/writer.py) is the only thing that writes while the server runs. The CLI
(`hintwise feedback stats | export | purge`) and tests open the same file here, alongside it: WAL
lets them read while the writer writes, and `busy_timeout` makes a purge wait for the writer's
short transactions instead of failing.
"""

from __future__ import annotations

import sqlite3
import time
from dataclasses import dataclass
from datetime import date, datetime
from datetime import time as dtime
from pathlib import Path

import platformdirs
from sqlite_utils import Database

from hintwise.telemetry.schema import migrate

DB_NAME = "telemetry.db"
DAY_MS = 86_400_000


def default_path(data_dir: str | Path | None = None) -> Path:
    """`<data dir>/telemetry.db`; the data dir defaults to platformdirs' one for hintwise."""
    base = Path(data_dir) if data_dir else platformdirs.user_data_path("hintwise", appauthor=False)
    return base / DB_NAME


def open_db(path: str | Path, *, create: bool = True, busy_timeout: float = 5.0) -> Database:
    """The store as a sqlite-utils Database, migrated to the latest schema.

    `create=False` refuses to create a missing file (for read-only commands such as stats),
    raising FileNotFoundError.
    """
    path = Path(path)
    if not create and not path.exists():
        raise FileNotFoundError(f"no telemetry database at {path}")
    if create:
        path.parent.mkdir(parents=True, exist_ok=True)
    conn = sqlite3.connect(path, timeout=busy_timeout)
    try:
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA synchronous=NORMAL")
        db = Database(conn, execute_plugins=False, recursive_triggers=False)
        migrate(db)
    except BaseException:
        conn.close()
        raise
    return db


@dataclass(frozen=True)
class Purged:
    suggestions: int
    events: int
    requests: int


def to_epoch_ms(moment: datetime | date | str | int | float) -> int:
    """A cut-off as epoch ms: a datetime (naive = local time), a date (its local midnight),
    an ISO 8601 string of either, or epoch ms already."""
    if isinstance(moment, int | float):
        return int(moment)
    if isinstance(moment, str):
        moment = datetime.fromisoformat(moment)
    if not isinstance(moment, datetime):
        moment = datetime.combine(moment, dtime.min)
    return int(moment.timestamp() * 1000)


def purge(
    db: Database | sqlite3.Connection | str | Path,
    before: datetime | date | str | int | float | None = None,
    keep_days: float | None = None,
    keep_rows: int | None = None,
    *,
    now_ms: int | None = None,
) -> Purged:
    """Delete suggestions (with their events) and gate requests, and say how many went.

    - `before`: everything created before that moment (`hintwise feedback purge --before DATE`);
    - `keep_days`: everything older than that many days (the retention limit);
    - `keep_rows`: all but the newest `keep_rows` suggestions (the row limit); gate requests
      older than the oldest suggestion kept go too.

    With none of them given, nothing is deleted (purging everything is `before=<now>`). Events are
    deleted with their suggestion, and also on their own when older than the cut-off (outcomes of
    a suggestion that was never stored). Runs in one transaction. Freed pages are reused by later
    inserts; the file does not shrink (that takes a VACUUM, which rewrites the whole file).
    """
    if keep_rows is not None and keep_rows < 0:
        raise ValueError("keep_rows must be >= 0")
    if keep_days is not None and keep_days < 0:
        raise ValueError("keep_days must be >= 0")
    own = not isinstance(db, Database | sqlite3.Connection)
    if isinstance(db, str | Path):
        db = open_db(db, create=False)
    elif isinstance(db, sqlite3.Connection):
        db = Database(db, execute_plugins=False, recursive_triggers=False)
    now_ms = int(time.time() * 1000) if now_ms is None else now_ms
    cutoff = _cutoff(before, keep_days, now_ms)
    counts = {"suggestions": 0, "events": 0, "requests": 0}
    try:
        with db.atomic():
            if cutoff is not None:
                _purge_before(db, cutoff, counts)
            if keep_rows is not None:
                _purge_surplus(db, keep_rows, counts)
    finally:
        if own:
            db.close()
    return Purged(**counts)


def _cutoff(
    before: datetime | date | str | int | float | None, keep_days: float | None, now_ms: int
) -> int | None:
    """The later of `before` and `now - keep_days` (epoch ms), or None when neither is given."""
    cutoffs: list[int] = []
    if before is not None:
        cutoffs.append(to_epoch_ms(before))
    if keep_days is not None:
        cutoffs.append(now_ms - int(keep_days * DAY_MS))
    return max(cutoffs) if cutoffs else None


def _delete(
    db: Database, sql: str, params: list[object], counts: dict[str, int], table: str
) -> None:
    counts[table] += db.execute(sql, params).rowcount


def _purge_before(db: Database, cutoff: int, counts: dict[str, int]) -> None:
    """Everything created before `cutoff` (epoch ms): suggestions with their events, events on
    their own, gate requests."""
    _delete(
        db,
        "DELETE FROM events WHERE time_ms < ? OR suggestion_id IN "
        "(SELECT id FROM suggestions WHERE created_ms < ?)",
        [cutoff, cutoff],
        counts,
        "events",
    )
    _delete(db, "DELETE FROM suggestions WHERE created_ms < ?", [cutoff], counts, "suggestions")
    _delete(db, "DELETE FROM requests WHERE time_ms < ?", [cutoff], counts, "requests")


def _purge_surplus(db: Database, keep_rows: int, counts: dict[str, int]) -> None:
    """All but the newest `keep_rows` suggestions (with their events), and the gate requests
    older than the oldest suggestion kept (all of them when none is kept)."""
    surplus = "SELECT id FROM suggestions ORDER BY created_ms DESC, rowid DESC LIMIT -1 OFFSET ?"
    _delete(
        db, f"DELETE FROM events WHERE suggestion_id IN ({surplus})", [keep_rows], counts, "events"
    )
    _delete(
        db, f"DELETE FROM suggestions WHERE id IN ({surplus})", [keep_rows], counts, "suggestions"
    )
    oldest = db.execute("SELECT min(created_ms) FROM suggestions").fetchone()[0]
    if oldest is not None:
        _delete(db, "DELETE FROM requests WHERE time_ms < ?", [oldest], counts, "requests")
    elif keep_rows == 0:
        _delete(db, "DELETE FROM requests", [], counts, "requests")
