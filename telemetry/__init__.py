"""The local feedback store: every suggestion, review comment and explanation, and its outcome.

Plain data in, plain data out: this package imports neither `lsp_server` nor `models` (see
DESIGN.md). The server builds rows (dicts or the dataclasses in telemetry.records) and hands them
to a `Writer`, which writes them to SQLite on its own thread.

    schema.py   the tables, as migrations (sqlite-utils `Migrations`)
    records.py  typed rows: Suggestion, Event, Request
    privacy.py  store_code = full | hashed | none, and secret redaction (detect-secrets)
    writer.py   the background writer (WAL, batched transactions, one clear message on failure)
    store.py    opening the file from the CLI, retention (purge)

Nothing here opens a network connection.
"""

from hintwise.telemetry.privacy import Privacy, redact
from hintwise.telemetry.records import Event, Request, Suggestion
from hintwise.telemetry.schema import LATEST_VERSION, migrate, schema_version
from hintwise.telemetry.store import Purged, default_path, open_db, purge
from hintwise.telemetry.writer import NullWriter, Writer, WriterStats

__all__ = [
    "LATEST_VERSION",
    "Event",
    "NullWriter",
    "Privacy",
    "Purged",
    "Request",
    "Suggestion",
    "Writer",
    "WriterStats",
    "default_path",
    "migrate",
    "open_db",
    "purge",
    "redact",
    "schema_version",
]
