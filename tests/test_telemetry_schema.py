"""The feedback store's schema: migrations, and an old database upgraded without losing rows."""

from __future__ import annotations

import json
from pathlib import Path

from sqlite_utils import Database

from hintwise.telemetry import LATEST_VERSION, Writer, migrate, open_db, schema_version
from hintwise.telemetry.schema import MIGRATION_NAMES, MIGRATION_SET


def index_columns(db: Database, table: str) -> set[tuple[str, ...]]:
    return {tuple(index.columns) for index in db[table].indexes}


def test_new_database_gets_every_migration_recorded(tmp_path: Path) -> None:
    db = open_db(tmp_path / "t.db")
    assert schema_version(db) == LATEST_VERSION == len(MIGRATION_NAMES)
    applied = list(db["_sqlite_migrations"].rows_where("migration_set = ?", [MIGRATION_SET]))
    assert [row["name"] for row in applied] == list(MIGRATION_NAMES)
    assert all(row["applied_at"] for row in applied)
    assert {"suggestions", "events", "requests"} <= set(db.table_names())
    assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    # The queries stats/export/retention make are indexed.
    assert {("suggestion_id", "kind"), ("kind", "time_ms"), ("time_ms",)} <= index_columns(
        db, "events"
    )
    assert {("created_ms",), ("language", "created_ms"), ("kind", "created_ms")} <= index_columns(
        db, "suggestions"
    )
    # Migrating again changes nothing.
    assert migrate(db) == LATEST_VERSION
    assert db["_sqlite_migrations"].count == len(MIGRATION_NAMES)


def test_version_1_database_is_upgraded_with_its_rows(tmp_path: Path) -> None:
    path = tmp_path / "old.db"
    old = Database(path)
    assert migrate(old, version=1) == 1
    # What version 1 had: no review/explanation columns, no rating, no gate requests.
    assert "requests" not in old.table_names()
    assert "severity" not in old["suggestions"].columns_dict
    assert "value" not in old["events"].columns_dict
    old["suggestions"].insert(
        {
            "id": "a" * 32,
            "created": "2026-11-01T10:00:00.000+01:00",
            "created_ms": 1_793_523_600_000,
            "kind": "completion",
            "language": "python",
            "prompt": "def add(a, b):\n    return",
            "text": " a + b",
            "scores": json.dumps({"pre": 0.4, "post": 0.7}),
        }
    )
    old["events"].insert_all(
        [
            {"suggestion_id": "a" * 32, "time_ms": 1_793_523_600_100, "kind": "shown"},
            {
                "suggestion_id": "a" * 32,
                "time_ms": 1_793_523_630_000,
                "kind": "survival",
                "check_after_s": 30,
                "similarity": 0.9,
            },
        ]
    )
    old.close()

    db = open_db(path)  # what a newer hintwise does when it starts
    assert schema_version(db) == LATEST_VERSION
    row = db["suggestions"].get("a" * 32)
    assert row["text"] == " a + b" and json.loads(row["scores"]) == {"pre": 0.4, "post": 0.7}
    assert row["severity"] is None and row["detail"] is None and row["line"] is None
    events = list(db["events"].rows_where(order_by="id"))
    assert [(e["kind"], e["check_after_s"], e["similarity"]) for e in events] == [
        ("shown", None, None),
        ("survival", 30, 0.9),
    ]
    assert all(e["value"] is None for e in events)
    assert "requests" in db.table_names()
    assert ("kind", "created_ms") in index_columns(db, "suggestions")
    db.close()

    # The upgraded file takes the new kinds of rows.
    writer = Writer.start(path)
    writer.enqueue(
        "suggestions",
        {
            "id": "b" * 32,
            "kind": "review",
            "text": "`open` without `with` leaks the file handle",
            "line": 12,
            "severity": "warning",
            "category": "bug",
            "detail": {"range": [12, 4, 12, 20]},
        },
    )
    writer.enqueue("events", {"suggestion_id": "b" * 32, "kind": "rated", "value": 1})
    writer.enqueue("requests", {"decision": "skipped", "pre_score": 0.05, "language": "python"})
    assert writer.close()
    assert writer.stats().written == 3
    db = open_db(path)
    review = db["suggestions"].get("b" * 32)
    assert (review["kind"], review["line"], review["severity"]) == ("review", 12, "warning")
    assert json.loads(review["detail"]) == {"range": [12, 4, 12, 20]}
    assert db.execute("SELECT value FROM events WHERE kind = 'rated'").fetchone()[0] == 1.0
    assert db["requests"].count == 1


def test_telemetry_imports_neither_lsp_server_nor_models() -> None:
    """DESIGN.md's dependency rule: plain data in, plain data out."""
    import ast

    package = Path(__file__).resolve().parent.parent / "telemetry"
    for source in package.glob("*.py"):
        for node in ast.walk(ast.parse(source.read_text())):
            names = []
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module:
                names = [node.module]
            for name in names:
                assert name.split(".")[0] not in {"lsp_server", "models"}, f"{source.name}: {name}"
