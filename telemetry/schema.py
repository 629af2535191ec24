"""The feedback store's schema, as a list of small migrations.

Each migration is a function that moves the database one step forward. They are applied in order
and each one is recorded (with the time it ran) in sqlite-utils' `_sqlite_migrations` table, under
the migration set name `hintwise.telemetry`, so opening a database that an older hintwise created
brings it up to date without losing a row. This is the pattern of Simon Willison's `llm`, using the
`Migrations` class that sqlite-utils 4 ships (a port of his `sqlite-migrate`): one more migration
is one more function at the bottom of this file. Never edit a migration that has shipped; add a new
one.

Why the tables look the way they do:

- **One `suggestions` table for completions, review comments and explanations** (`kind`). They have
  the same life (shown → accepted/applied/rejected/dismissed, with a prompt and an answer), so
  stats, exports and outcome events work on one id space and one set of queries. What only reviews
  and explanations have is split in two: the few fields a query filters or groups on (`line`,
  `end_line`, `severity`, `category`) are typed, nullable columns; everything else about them (the
  diagnostic range, the question asked, a proposed fix...) goes in the JSON `detail` column, which
  nothing needs to index. The review comment or the explanation itself is `text`, exactly like a
  completion's suggestion text, so the DPO/KTO export reads `prompt` → `text` for every kind.
- **One `events` row per outcome**, appended, never updated: an outcome is a fact that happened at
  a time, several can happen to one suggestion (shown, seen, accepted, then three survival checks),
  and append-only rows are what a crash-safe background writer does best. The values a stats query
  aggregates (`accepted_chars`, `reason`, `check_after_s`, `similarity`, `value`) are typed columns;
  `text` holds a user's replacement (code, so it follows the privacy setting); anything else rides
  in the JSON `data` column.
- **`requests`**: one row per completion request the acceptance gate looked at, including the ones
  it stopped before any model call; "how many model calls did the gate avoid" has no suggestion
  row to count otherwise.
- Times are stored twice: `*_ms` (integer epoch milliseconds, UTC) for ranges, ordering and
  retention, and ISO 8601 text in local time with its UTC offset (`2026-11-05T14:03:07.123+01:00`)
  for people and for "acceptance by hour of the user's day" (characters 12-13).
- JSON columns are TEXT holding JSON (SQLite's `json_extract` reads them).
- `events.suggestion_id` declares a foreign key to `suggestions.id` (for sqlite-utils/Datasette
  introspection) but it is not enforced (SQLite's default): an outcome that arrives for a suggestion
  that retention already removed must not make the writer's whole batch fail.
"""

from __future__ import annotations

from sqlite_utils import Database, Migrations

MIGRATION_SET = "hintwise.telemetry"

migrations = Migrations(MIGRATION_SET)

# Values the writer accepts in the `kind` columns (it drops and counts rows with any other kind).
SUGGESTION_KINDS = frozenset({"completion", "review", "explanation"})
EVENT_KINDS = frozenset(
    {
        "shown",  # returned to the client, or confirmed by hintwise/didShow
        "seen",  # on screen for at least 750 ms
        "accepted",
        "partially_accepted",  # accepted_chars
        "rejected",  # reason: explicit | superseded | diverged | timeout
        "survival",  # check_after_s (30, 120, 300), similarity 0..1
        "replacement",  # text: what the user wrote instead
        "applied",  # review comment fix / explanation applied
        "dismissed",
        "expanded",
        "rated",  # value
    }
)
REJECT_REASONS = frozenset({"explicit", "superseded", "diverged", "timeout"})
# skipped: no model call (pre-generation stage); hidden: generated but not shown (after).
GATE_DECISIONS = frozenset({"skipped", "hidden", "generated"})


@migrations()
def m001_suggestions_and_events(db: Database) -> None:
    """Completions and their outcomes: what issue 3 needs to record."""
    db.table("suggestions").create(
        {
            "id": str,  # the id the server puts in hintwise.accept (uuid4 hex)
            "created": str,  # ISO 8601, local time with offset
            "created_ms": int,  # epoch ms, UTC
            "kind": str,  # completion | review | explanation
            "language": str,  # LSP language id
            "file": str,  # path, sha256 of the path, or NULL (telemetry.store_code)
            "model": str,
            "settings": str,  # JSON: engine settings (temperature, max tokens, n_ctx, ...)
            "mode": str,  # what the server asked for: single | multi (line)
            "prompt": str,  # the exact prompt text the model saw (per store_code)
            "prefix": str,  # per store_code
            "suffix": str,  # per store_code
            "text": str,  # the suggestion (per store_code)
            "features": str,  # JSON: acceptance-gate features
            "scores": str,  # JSON: gate scores, e.g. {"pre": 0.41, "post": 0.63}
            "latency": str,  # JSON: milliseconds per part, e.g. {"context": 1.2, "generate": 140}
            "token_logprobs": str,  # JSON: list of numbers, one per generated token
        },
        pk="id",
        not_null={"kind", "created_ms"},
        defaults={"kind": "completion"},
    )
    db.table("events").create(
        {
            "id": int,
            "suggestion_id": str,
            "time": str,  # ISO 8601, local time with offset
            "time_ms": int,  # epoch ms, UTC
            "kind": str,  # see EVENT_KINDS
            "accepted_chars": int,  # partially_accepted
            "reason": str,  # rejected: explicit | superseded | diverged | timeout
            "check_after_s": int,  # survival: 30 | 120 | 300
            "similarity": float,  # survival: 0..1
            "text": str,  # replacement: what the user wrote (per store_code)
            "data": str,  # JSON: anything else
        },
        pk="id",
        not_null={"suggestion_id", "kind", "time_ms"},
        foreign_keys=[("suggestion_id", "suggestions", "id")],
    )
    # Stats group suggestions by time and language; exports page through them by time.
    db.table("suggestions").create_index(["created_ms"])
    db.table("suggestions").create_index(["language", "created_ms"])
    # Outcomes of one suggestion; one kind of outcome over time; retention by time.
    db.table("events").create_index(["suggestion_id", "kind"])
    db.table("events").create_index(["kind", "time_ms"])
    db.table("events").create_index(["time_ms"])


@migrations()
def m002_reviews_and_explanations(db: Database) -> None:
    """Review comments (published as diagnostics) and explanations, and their ratings (issue 5)."""
    suggestions = db.table("suggestions")
    suggestions.add_column("line", int)  # 0-based LSP line the comment is about
    suggestions.add_column("end_line", int)
    suggestions.add_column("severity", str)  # error | warning | information | hint
    suggestions.add_column("category", str)  # e.g. bug, style, security; explanation: error type
    suggestions.add_column("detail", str)  # JSON: range, question, proposed fix, ...
    db.table("events").add_column("value", float)  # rated: the rating
    db.table("suggestions").create_index(["kind", "created_ms"])


@migrations()
def m003_gate_requests(db: Database) -> None:
    """One row per completion request the acceptance gate scored, generated or not."""
    db.table("requests").create(
        {
            "id": int,
            "time": str,
            "time_ms": int,
            "language": str,
            "pre_score": float,  # the gate's pre-generation score
            "decision": str,  # skipped (no model call) | hidden (not shown) | generated
            "suggestion_id": str,  # when generation produced a suggestion
        },
        pk="id",
        not_null={"time_ms", "decision"},
    )
    db.table("requests").create_index(["time_ms"])


# In the order they were registered above (sqlite-utils applies them in that order).
MIGRATION_NAMES: tuple[str, ...] = (
    m001_suggestions_and_events.__name__,
    m002_reviews_and_explanations.__name__,
    m003_gate_requests.__name__,
)
LATEST_VERSION = len(MIGRATION_NAMES)


def migrate(db: Database, *, version: int | None = None) -> int:
    """Apply pending migrations, up to `version` (a count: 1 = the first migration only).

    Each migration runs in its own transaction together with its record, so a failure leaves the
    database at the previous version. Returns the version the database is at afterwards.
    """
    if version is not None and not 0 <= version <= LATEST_VERSION:
        raise ValueError(f"version must be between 0 and {LATEST_VERSION}")
    stop_before = None
    if version is not None and version < LATEST_VERSION:
        stop_before = MIGRATION_NAMES[version]
        if stop_before in applied_names(db):
            # Already past that point: nothing to do (sqlite-utils would refuse stop_before).
            return schema_version(db)
    migrations.apply(db, stop_before=stop_before)
    return schema_version(db)


def applied_names(db: Database) -> list[str]:
    return [m.name for m in migrations.applied(db)]


def schema_version(db: Database) -> int:
    """How many of this set's migrations the database has had (0 for a new file)."""
    return len(set(applied_names(db)) & set(MIGRATION_NAMES))
