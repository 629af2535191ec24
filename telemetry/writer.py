"""The background writer: the LSP loop hands rows over and never waits on the disk.

`enqueue` is a `queue.SimpleQueue.put` of a tuple plus two counter updates: no lock, no I/O, no
encoding (a few microseconds at worst). One daemon thread owns the SQLite connection and does the
rest: privacy (redaction, hashing, see telemetry/privacy.py), JSON encoding, and batched inserts in
transactions. It takes whatever has queued up since its last commit, so batches grow with the load
on their own and a lone event is committed at once; a batch that takes long to prepare is committed
at least every `commit_interval` (0.1 s).

Durability: WAL with `synchronous=NORMAL`. A committed transaction is in the WAL file before
COMMIT returns, so it survives the process being killed (`kill -9`, a crash): SQLite recovers the
WAL on the next open. Only an operating-system crash or power loss can lose the last commits
(NORMAL does not fsync every commit), which is the trade SQLite recommends for WAL: it is what
makes 20,000+ events/s possible.

A lock another program holds for longer than `busy_timeout` is waited out: the writer tries again
after a growing pause (up to LOCK_RETRY_MAX_S) and keeps the rows meanwhile, within `max_pending`.
When the database cannot be used (corrupt, with damaged pages found by `PRAGMA quick_check` on
opening, not a database, unwritable, disk full, or anything unexpected), the writer calls
`on_problem` once with one clear sentence, stops writing, and from then on drops (and counts)
whatever it is given. It never raises into the caller, never retries in a loop, and never
touches the broken file (no repair, no overwrite, no delete): the user decides what to do with it.
`on_problem` runs on the writer thread: a server should pass something thread-safe (e.g.
`loop.call_soon_threadsafe` around its showMessage).
"""

from __future__ import annotations

import contextlib
import json
import logging
import queue
import re
import sqlite3
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, fields, is_dataclass
from datetime import datetime
from itertools import groupby
from pathlib import Path
from typing import Any

from sqlite_utils import Database

from hintwise.telemetry.privacy import Privacy
from hintwise.telemetry.records import Record
from hintwise.telemetry.schema import (
    EVENT_KINDS,
    GATE_DECISIONS,
    REJECT_REASONS,
    SUGGESTION_KINDS,
    migrate,
)

log = logging.getLogger(__name__)

TABLES = frozenset({"suggestions", "events", "requests"})
JSON_COLUMNS: dict[str, frozenset[str]] = {
    "suggestions": frozenset(
        {"settings", "features", "scores", "latency", "token_logprobs", "detail"}
    ),
    "events": frozenset({"data"}),
    "requests": frozenset(),
}
# Where a row's keys that are not columns go (None: dropped, with a warning).
OVERFLOW_COLUMN = {"suggestions": "detail", "events": "data", "requests": None}
# Integer ids SQLite assigns (a row's own "id" key goes to the overflow column).
_AUTO_ID: dict[str, frozenset[str]] = {
    "suggestions": frozenset(),
    "events": frozenset({"id"}),
    "requests": frozenset({"id"}),
}
# Columns an update of an existing suggestion never changes.
_SET_ONCE = frozenset({"id", "created", "created_ms"})

ProblemCallback = Callable[[str], None]
LOCK_RETRY_MAX_S = 30.0
CACHE_KIB = 512


class _Flush:
    __slots__ = ("done",)

    def __init__(self) -> None:
        self.done = threading.Event()


_STOP = object()


@dataclass(frozen=True)
class WriterStats:
    enqueued: int  # accepted by enqueue
    written: int  # committed rows
    dropped: int  # not written because telemetry stopped, the queue was full, or it closed
    invalid: int  # rows the writer refused (unknown kind, missing id...)
    batches: int  # transactions committed
    pending: int  # still in the queue
    problem: str | None


def describe_problem(exc: BaseException, path: Path, busy_timeout: float) -> str:
    """The one sentence a user sees when telemetry has to stop."""
    name = getattr(exc, "sqlite_errorname", "") or ""
    text = str(exc)
    where = f"the telemetry database {path}"
    if isinstance(exc, OSError):
        reason = f"cannot create {where}: {exc.strerror or exc}"
    elif name.startswith(("SQLITE_BUSY", "SQLITE_LOCKED")) or "locked" in text:
        reason = f"{where} is locked by another program (waited {busy_timeout:g} s)"
    elif name.startswith(("SQLITE_NOTADB", "SQLITE_CORRUPT")) or any(
        words in text for words in ("not a database", "malformed")
    ):
        reason = (
            f"{where} is damaged or is not an SQLite database ({text}); "
            "move it away and hintwise will start a new one"
        )
    elif name.startswith("SQLITE_FULL") or "is full" in text:
        reason = f"the disk holding {where} is full"
    elif name.startswith(("SQLITE_READONLY", "SQLITE_CANTOPEN", "SQLITE_PERM", "SQLITE_AUTH")):
        reason = f"cannot write to {where} ({text})"
    elif name.startswith("SQLITE_IOERR"):
        reason = f"input/output error on {where} ({text})"
    else:
        reason = f"{where} failed ({type(exc).__name__}: {text})"
    return (
        f"hintwise telemetry stopped: {reason}. Completions go on without telemetry until "
        "hintwise restarts; the file was left as it is."
    )


def iso_time(ms: int) -> str:
    """Local time with its UTC offset, to the millisecond."""
    return datetime.fromtimestamp(ms / 1000).astimezone().isoformat(timespec="milliseconds")


class Writer:
    """Owns the telemetry database on one background thread. Create with `Writer.start(path)`."""

    def __init__(
        self,
        path: str | Path,
        *,
        privacy: Privacy | None = None,
        on_problem: ProblemCallback | None = None,
        busy_timeout: float = 5.0,
        commit_interval: float = 0.1,
        max_batch: int = 5_000,
        max_pending: int = 200_000,
        on_connect: Callable[[sqlite3.Connection], None] | None = None,
        on_ready: Callable[[sqlite3.Connection], None] | None = None,
    ) -> None:
        """
        `busy_timeout`: how long to wait for another program's lock before giving up (another
        hintwise sharing the file holds it for milliseconds). `max_pending`: queued rows beyond
        this are dropped rather than let memory grow when the disk is slow. `on_connect` runs on
        the new connection before anything else (tests use it to cap the file size); `on_ready`
        once the schema is current, on the writer's thread (the server's retention purge runs
        there, so it never contends with the writer for the lock).
        """
        self.path = Path(path)
        self.privacy = privacy or Privacy()
        self._on_problem = on_problem
        self._busy_timeout = busy_timeout
        self._commit_interval = commit_interval
        self._max_batch = max_batch
        self._max_pending = max_pending
        self._on_connect = on_connect
        self._on_ready = on_ready
        self._queue: queue.SimpleQueue[Any] = queue.SimpleQueue()
        self._thread: threading.Thread | None = None
        self._closed = False
        self._failed = False
        self.problem: str | None = None
        # Counters: each is written by one thread only (callers or the writer), read by anyone.
        self._enqueued = 0
        self._dropped_at_enqueue = 0
        self._dropped = 0
        self._written = 0
        self._invalid = 0
        self._batches = 0
        self._warned: set[str] = set()
        self._lock_waits = 0
        self._statements: dict[tuple[str, tuple[str, ...]], str] = {}
        self._columns: dict[str, frozenset[str]] = {}

    # --- the caller's side (the LSP loop) -----------------------------------------------------

    @classmethod
    def start(cls, path: str | Path, **options: Any) -> Writer:
        """Start a writer thread for the database at `path` (created, with its directory, if
        missing). Problems opening it are reported through `on_problem`, not raised."""
        writer = cls(path, **options)
        writer._thread = threading.Thread(
            target=writer._run, name="hintwise-telemetry-writer", daemon=True
        )
        writer._thread.start()
        return writer

    def enqueue(self, table: str, row: Mapping[str, Any] | Record) -> bool:
        """Queue one row (a dict of column values, or a telemetry.records dataclass) for `table`.

        Never blocks and never raises, except ValueError for a table name that does not exist
        (a programming error, whatever the state of the disk). Returns False when the row was
        dropped (telemetry stopped or closed, or the queue is full). The row must not be changed
        after it is handed over.
        """
        if table not in TABLES:
            raise ValueError(f"no telemetry table {table!r}; tables: {sorted(TABLES)}")
        if self._failed or self._closed or self._queue.qsize() >= self._max_pending:
            self._dropped_at_enqueue += 1
            return False
        self._queue.put((table, row, time.time()))
        self._enqueued += 1
        return True

    def record(self, row: Record) -> bool:
        """`enqueue` for a telemetry.records dataclass (Suggestion, Event, Request)."""
        return self.enqueue(row.TABLE, row)

    def flush(self, timeout: float = 5.0) -> bool:
        """Wait until everything enqueued before this call is committed (or dropped, if
        telemetry stopped). False if that took longer than `timeout`."""
        if self._thread is None or not self._thread.is_alive():
            return True
        marker = _Flush()
        self._queue.put(marker)
        return marker.done.wait(timeout)

    def close(self, timeout: float = 5.0) -> bool:
        """Write what is queued, close the database, end the thread. Later rows are dropped.
        False if the thread had not finished within `timeout` (it is a daemon: it cannot keep
        the process alive)."""
        if not self._closed:
            self._closed = True
            self._queue.put(_STOP)
        if self._thread is None:
            return True
        self._thread.join(timeout)
        return not self._thread.is_alive()

    @property
    def ok(self) -> bool:
        """False once telemetry has stopped because of a problem."""
        return not self._failed

    def stats(self) -> WriterStats:
        return WriterStats(
            enqueued=self._enqueued,
            written=self._written,
            dropped=self._dropped + self._dropped_at_enqueue,
            invalid=self._invalid,
            batches=self._batches,
            pending=self._queue.qsize(),
            problem=self.problem,
        )

    # --- the writer thread ----------------------------------------------------------------------

    def _connect(self) -> sqlite3.Connection | None:
        """The open database, after waiting out another program's lock; None when it cannot be
        used (reported)."""
        while True:
            try:
                conn = self._open()
            except Exception as exc:
                if _is_busy(exc) and not self._closed:
                    self._wait_for_lock()
                    continue
                self._fail(exc)
                return None
            self._lock_waits = 0
            return conn

    def _run(self) -> None:
        conn = self._connect()
        try:
            while True:
                batch = [self._queue.get()]
                while len(batch) < self._max_batch:
                    try:
                        batch.append(self._queue.get_nowait())
                    except queue.Empty:
                        break
                try:
                    stop = self._process(conn, batch)
                except Exception as exc:  # a bug here must not leave callers queueing forever
                    self._fail(exc)
                    stop = any(item is _STOP for item in batch)
                    for item in batch:
                        if isinstance(item, _Flush):
                            item.done.set()
                if stop:
                    break
        finally:
            if conn is not None:
                try:
                    if not self._failed:
                        conn.execute("PRAGMA optimize")
                    conn.close()
                except sqlite3.Error:
                    pass

    def _open(self) -> sqlite3.Connection:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        conn = sqlite3.connect(self.path, timeout=self._busy_timeout, isolation_level=None)
        try:
            if self._on_connect is not None:
                self._on_connect(conn)
            mode = conn.execute("PRAGMA journal_mode=WAL").fetchone()[0]
            if str(mode).lower() != "wal":
                log.warning("telemetry database %s: journal_mode is %s, not wal", self.path, mode)
            conn.execute("PRAGMA synchronous=NORMAL")
            # SQLite's page cache fills up to its bound as the file grows (2 MB by default):
            # in a long session that looked like a leak. Inserts touch few pages; the OS keeps
            # the file's pages cached anyway.
            conn.execute(f"PRAGMA cache_size=-{CACHE_KIB}")
            # Damaged interior pages are found here, once, not after a session of writing into
            # them (the schema page alone says nothing about the others).
            check = conn.execute("PRAGMA quick_check(1)").fetchone()[0]
            if check != "ok":
                raise sqlite3.DatabaseError(f"database disk image is malformed: {check}")
            db = Database(conn, execute_plugins=False, recursive_triggers=False)
            migrate(db)
            if self._on_ready is not None:
                try:
                    self._on_ready(conn)
                except Exception as error:  # housekeeping must not stop the recording
                    log.warning("telemetry: %s", error)
            # What a row may set: the columns as they are in this file (events and requests get
            # their integer id from SQLite).
            self._columns = {
                table: frozenset(db[table].columns_dict) - _AUTO_ID[table] for table in TABLES
            }
        except BaseException:
            conn.close()
            raise
        return conn

    def _process(self, conn: sqlite3.Connection | None, batch: list[Any]) -> bool:
        """Write one batch; True when the writer should stop."""
        stop = False
        markers: list[_Flush] = []
        pending: list[tuple[str, dict[str, Any]]] = []
        started = time.monotonic()
        for item in batch:
            if item is _STOP:
                stop = True
                continue
            if isinstance(item, _Flush):
                markers.append(item)
                continue
            if self._failed or conn is None:
                self._dropped += 1
                continue
            try:
                prepared = self._prepare(*item)
            except Exception as exc:  # a bug or an unencodable value: lose the row, not telemetry
                self._invalid += 1
                self._warn_once(f"prepare:{type(exc).__name__}", f"telemetry row dropped: {exc!r}")
                continue
            if prepared is not None:
                pending.append((item[0], prepared))
            if time.monotonic() - started >= self._commit_interval:
                self._commit(conn, pending)
                pending = []
                started = time.monotonic()
        if pending and conn is not None:
            self._commit(conn, pending)
        for marker in markers:
            marker.done.set()
        return stop

    def _commit(self, conn: sqlite3.Connection, rows: list[tuple[str, dict[str, Any]]]) -> None:
        if not rows:
            return
        if self._failed:
            self._dropped += len(rows)
            return
        while True:
            try:
                bad = self._transaction(conn, rows)
                break
            except Exception as exc:
                if _is_busy(exc) and not self._closed:
                    self._wait_for_lock()  # the rows stay here; the queue holds what comes
                    continue
                self._dropped += len(rows)
                self._fail(exc)
                return
        self._lock_waits = 0
        self._written += len(rows) - bad
        self._invalid += bad
        self._batches += 1

    def _wait_for_lock(self) -> None:
        """Another program holds the database longer than busy_timeout: pause and try again,
        a little longer each time."""
        self._lock_waits += 1
        pause = min(LOCK_RETRY_MAX_S, self._busy_timeout * 2 ** min(self._lock_waits, 10))
        self._warn_once(
            "busy",
            f"telemetry: {self.path} is locked by another program; the writer keeps the rows "
            "and tries again",
        )
        time.sleep(pause)

    def _transaction(self, conn: sqlite3.Connection, rows: list[tuple[str, dict[str, Any]]]) -> int:
        """Insert `rows` in one transaction; how many of them were bad and left out."""
        conn.execute("BEGIN IMMEDIATE")
        try:
            bad = 0
            for (table, columns), group in groupby(
                rows, key=lambda item: (item[0], tuple(item[1]))
            ):
                bad += self._insert(conn, self._statement(table, columns), list(group))
            conn.execute("COMMIT")
        except BaseException:
            if conn.in_transaction:
                with contextlib.suppress(sqlite3.Error):
                    conn.execute("ROLLBACK")
            raise
        return bad

    def _insert(
        self, conn: sqlite3.Connection, sql: str, group: list[tuple[str, dict[str, Any]]]
    ) -> int:
        """All rows of one statement at once; when one of them cannot be stored (a value SQLite
        cannot bind, a constraint), row by row, leaving out only the bad ones (how many): one
        bad row must never cost the batch or turn the recording off."""
        conn.execute("SAVEPOINT rows")
        try:
            conn.executemany(sql, [tuple(row.values()) for _, row in group])
            conn.execute("RELEASE rows")
            return 0
        except _ROW_ERRORS:
            conn.execute("ROLLBACK TO rows")  # the rows before the bad one, to write again
            conn.execute("RELEASE rows")
        bad = 0
        for _, row in group:
            try:
                conn.execute(sql, tuple(row.values()))
            except _ROW_ERRORS as exc:
                bad += 1
                self._warn_once(f"row:{type(exc).__name__}", f"telemetry row dropped: {exc!r}")
        return bad

    def _statement(self, table: str, columns: tuple[str, ...]) -> str:
        key = (table, columns)
        sql = self._statements.get(key)
        if sql is None:
            names = ", ".join(f"[{column}]" for column in columns)
            marks = ", ".join("?" for _ in columns)
            sql = f"INSERT INTO [{table}] ({names}) VALUES ({marks})"
            if table == "suggestions":
                updates = [column for column in columns if column not in _SET_ONCE]
                if updates:
                    sets = ", ".join(f"[{column}] = excluded.[{column}]" for column in updates)
                    sql += f" ON CONFLICT([id]) DO UPDATE SET {sets}"
                else:
                    sql += " ON CONFLICT([id]) DO NOTHING"
            self._statements[key] = sql
        return sql

    def _prepare(self, table: str, row: Any, enqueued_at: float) -> dict[str, Any] | None:
        """Row → the column values to store (keys sorted), or None if it is refused."""
        if is_dataclass(row) and not isinstance(row, type):
            values = {f.name: getattr(row, f.name) for f in fields(row)}
        else:
            values = dict(row)
        values = {key: value for key, value in values.items() if value is not None}
        problem = _validate(table, values)
        if problem is not None:
            self._invalid += 1
            self._warn_once(f"invalid:{problem}", f"telemetry row refused: {problem}")
            return None
        time_column = "created" if table == "suggestions" else "time"
        ms_column = f"{time_column}_ms"
        if ms_column not in values:
            values[ms_column] = int(enqueued_at * 1000)
        if time_column not in values:
            values[time_column] = iso_time(int(values[ms_column]))
        columns = self._columns[table]
        extra = {key: values.pop(key) for key in list(values) if key not in columns}
        if extra:
            overflow = OVERFLOW_COLUMN[table]
            if overflow is None:
                self._warn_once(f"extra:{table}", f"telemetry: no {table} columns {sorted(extra)}")
            else:
                merged = dict(values.get(overflow) or {})
                merged.update(extra)
                values[overflow] = merged
        self.privacy.apply(table, values)
        for column in JSON_COLUMNS[table] & values.keys():
            value = values[column]
            if value is not None and not isinstance(value, str):
                values[column] = json.dumps(
                    value, ensure_ascii=False, separators=(",", ":"), default=str
                )
        return {key: _encodable(values[key]) for key in sorted(values) if values[key] is not None}

    def _fail(self, exc: BaseException) -> None:
        if self._failed:
            return
        self._failed = True
        self.problem = describe_problem(exc, self.path, self._busy_timeout)
        log.warning("%s", self.problem)
        log.debug("telemetry failure", exc_info=exc)
        if self._on_problem is not None:
            try:
                self._on_problem(self.problem)
            except Exception:
                log.exception("telemetry on_problem callback failed")

    def _warn_once(self, key: str, message: str) -> None:
        if key not in self._warned:
            self._warned.add(key)
            log.warning("%s", message)


# Errors of one row's values, not of the database: that row is dropped, the others written.
_ROW_ERRORS = (
    UnicodeEncodeError,
    OverflowError,
    sqlite3.IntegrityError,
    sqlite3.InterfaceError,
    sqlite3.ProgrammingError,
)
_LONE_SURROGATE = re.compile("[\ud800-\udfff]")


def _encodable(value: Any) -> Any:
    """A string with lone UTF-16 surrogates (which SQLite's UTF-8 cannot hold) repaired to
    U+FFFD; anything else as it is."""
    if isinstance(value, str) and _LONE_SURROGATE.search(value):
        return _LONE_SURROGATE.sub("\ufffd", value)
    return value


def _is_busy(exc: BaseException) -> bool:
    name = getattr(exc, "sqlite_errorname", "") or ""
    return name.startswith(("SQLITE_BUSY", "SQLITE_LOCKED")) or (
        isinstance(exc, sqlite3.OperationalError) and "locked" in str(exc)
    )


def _validate(table: str, values: dict[str, Any]) -> str | None:
    if table == "suggestions":
        if not isinstance(values.get("id"), str) or not values["id"]:
            return "a suggestion needs a string id"
        if values.get("kind", "completion") not in SUGGESTION_KINDS:
            return f"unknown suggestion kind {values.get('kind')!r}"
    elif table == "events":
        if not isinstance(values.get("suggestion_id"), str):
            return "an event needs a suggestion_id"
        if values.get("kind") not in EVENT_KINDS:
            return f"unknown event kind {values.get('kind')!r}"
        if "reason" in values and values["reason"] not in REJECT_REASONS:
            return f"unknown rejection reason {values['reason']!r}"
    elif table == "requests" and values.get("decision") not in GATE_DECISIONS:
        return f"unknown gate decision {values.get('decision')!r}"
    return None


class NullWriter:
    """Same interface, writes nothing: for `telemetry.enabled = false` (no file is created)."""

    path = None
    problem = None
    ok = True

    def enqueue(self, table: str, row: Mapping[str, Any] | Record) -> bool:
        if table not in TABLES:
            raise ValueError(f"no telemetry table {table!r}; tables: {sorted(TABLES)}")
        return False

    def record(self, row: Record) -> bool:
        return False

    def flush(self, timeout: float = 5.0) -> bool:
        return True

    def close(self, timeout: float = 5.0) -> bool:
        return True

    def stats(self) -> WriterStats:
        return WriterStats(0, 0, 0, 0, 0, 0, None)
