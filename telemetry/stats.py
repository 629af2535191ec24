"""Reading the feedback store back as numbers: `hintwise feedback stats`.

Every figure is computed by SQLite (aggregates and GROUP BY over indexed lookups), so a store of a
million suggestions costs a few small result sets in Python, never a list of rows.

Definitions (completions only: reviews and explanations have outcomes of their own, issue 5):

- **shown**: a completion with a `shown` event, or with an acceptance (nobody accepts what was not
  on screen, so a lost `shown` row must not push a rate above 1);
- **accepted**: shown and fully accepted (`accepted`) or partially accepted (`partially_accepted`);
  the acceptance rate is accepted / shown. Each rate comes with its `n` (the denominator) and its
  count, so that "100 %" over two suggestions reads as what it is;
- a suggestion belongs to the hour and the day of its creation in the user's local time (read from
  the ISO `created` column, which the writer stores with the local UTC offset);
- **length** is the suggestion's length in characters; with `telemetry.store_code = hashed | none`
  the text is not stored and the suggestion falls in the `unknown` bucket;
- **survival**: every survival check (30 s, 2 min, 5 min after acceptance) of a suggestion created
  in the window: its mean similarity and the share of checks at or above 0.9;
- **rejections**: rejection events of the window's suggestions, per reason;
- **gate**: requests the acceptance gate skipped (no model call) over all requests since `since_ms`.

`since_ms` (epoch milliseconds, UTC) keeps suggestions created, and requests made, at or after it.
"""

from __future__ import annotations

import contextlib
import sqlite3
from collections.abc import Iterator
from datetime import date, timedelta
from pathlib import Path
from typing import Any

from sqlite_utils import Database

from hintwise.telemetry.store import open_db

DbLike = Database | sqlite3.Connection | str | Path

LENGTH_BUCKETS: tuple[tuple[str, int, int | None], ...] = (
    ("1-10", 0, 10),
    ("11-30", 11, 30),
    ("31-80", 31, 80),
    ("81+", 81, None),
)
UNKNOWN = "unknown"
SURVIVAL_CHECKS: tuple[int, ...] = (30, 120, 300)
SURVIVED = 0.9
REJECT_REASONS: tuple[str, ...] = ("explicit", "superseded", "diverged", "timeout")

# SQL snippets shared with telemetry.export: whether a column holds text the store kept (not NULL
# and not the sha256 hex digest that store_code = hashed leaves).
HASHED_SQL = "(length({col}) = 64 AND {col} NOT GLOB '*[^0-9a-f]*')"
LOCAL_DAY_SQL = (
    "coalesce(substr(s.created, 1, 10), date(s.created_ms / 1000, 'unixepoch', 'localtime'))"
)
LOCAL_HOUR_SQL = (
    "coalesce(substr(s.created, 12, 2), strftime('%H', s.created_ms / 1000, 'unixepoch', "
    "'localtime'))"
)


def has_event(kind: str, alias: str = "s") -> str:
    """An EXISTS test on the (suggestion_id, kind) index: one index probe per suggestion."""
    return (
        f"EXISTS (SELECT 1 FROM events e WHERE e.suggestion_id = {alias}.id AND e.kind = '{kind}')"
    )


@contextlib.contextmanager
def connection(db: DbLike) -> Iterator[sqlite3.Connection]:
    """The sqlite3 connection behind whatever the caller has; a path is opened (never created)
    and closed again, a Database or Connection the caller owns is left open."""
    if isinstance(db, Database):
        yield db.conn
    elif isinstance(db, sqlite3.Connection):
        yield db
    else:
        opened = open_db(db, create=False)
        try:
            yield opened.conn
        finally:
            opened.close()


def rate(count: int, n: int) -> dict[str, Any]:
    """A share with the numbers it comes from; None when there is nothing to divide by."""
    return {"rate": count / n if n else None, "count": count, "n": n}


def _length_bucket_sql() -> str:
    cases = " ".join(
        f"WHEN length(s.text) <= {high} THEN '{name}'"
        for name, _, high in LENGTH_BUCKETS
        if high is not None
    )
    hashed = HASHED_SQL.format(col="s.text")
    return (
        f"CASE WHEN s.text IS NULL OR {hashed} THEN '{UNKNOWN}' {cases} "
        f"ELSE '{LENGTH_BUCKETS[-1][0]}' END"
    )


# A completion's outcome in one index probe: NULL never shown, 0 shown, 1 partially accepted,
# 2 accepted.
SHOWN, PARTIAL, ACCEPTED = 0, 1, 2
_OUTCOME_SQL = f"""(SELECT max(CASE e.kind WHEN 'accepted' THEN {ACCEPTED}
        WHEN 'partially_accepted' THEN {PARTIAL} ELSE {SHOWN} END)
    FROM events e WHERE e.suggestion_id = s.id
        AND e.kind IN ('shown', 'accepted', 'partially_accepted'))"""


def _outcome_counts_sql(*keys: str) -> str:
    """Completions of the window counted per `keys` (SQL expressions) and outcome.

    The outcome is a GROUP BY key rather than a filter or a sum: SQLite evaluates a grouping
    expression once per row, where a flag used in WHERE and in two sums would be probed three
    times. Python drops the never-shown group (outcome NULL) and adds the rest up.
    """
    positions = ", ".join(str(index + 1) for index in range(len(keys) + 1))
    return f"""
        SELECT {", ".join(keys)}, {_OUTCOME_SQL} AS outcome, count(*)
        FROM suggestions s
        WHERE s.kind = 'completion' AND s.created_ms >= :since
        GROUP BY {positions}
    """


def _add(counts: dict[Any, list[int]], key: Any, outcome: int, n: int) -> None:
    """counts[key] = [accepted in full or in part, shown]."""
    pair = counts.setdefault(key, [0, 0])
    pair[0] += n if outcome in (PARTIAL, ACCEPTED) else 0
    pair[1] += n


def acceptance(conn: sqlite3.Connection, since_ms: int) -> dict[str, Any]:
    """Overall, by language, by local hour and by length bucket, from one grouped query."""
    sql = _outcome_counts_sql(
        f"coalesce(s.language, '{UNKNOWN}')", LOCAL_HOUR_SQL, _length_bucket_sql()
    )
    totals = dict.fromkeys((SHOWN, PARTIAL, ACCEPTED), 0)
    groups: dict[str, dict[str, list[int]]] = {"language": {}, "hour": {}, "length": {}}
    for language, hour, bucket, outcome, n in conn.execute(sql, {"since": since_ms}):
        if outcome is None:
            continue
        totals[outcome] += n
        for name, key in (("language", language), ("hour", hour), ("length", bucket)):
            _add(groups[name], key, outcome, n)
    shown = sum(totals.values())
    overall = rate(totals[ACCEPTED] + totals[PARTIAL], shown)
    overall.update(shown=shown, accepted=totals[ACCEPTED], partially_accepted=totals[PARTIAL])
    length_names = [name for name, _, _ in LENGTH_BUCKETS]
    if UNKNOWN in groups["length"]:
        length_names.append(UNKNOWN)
    return {
        "overall": overall,
        "by_language": {key: rate(*groups["language"][key]) for key in sorted(groups["language"])},
        "by_hour": {key: rate(*groups["hour"][key]) for key in sorted(groups["hour"])},
        "by_length": {key: rate(*groups["length"].get(key, (0, 0))) for key in length_names},
    }


def survival(conn: sqlite3.Connection, since_ms: int) -> dict[str, Any]:
    """Per check delay: how much of the accepted text was still there, and how often ≥ 0.9."""
    sql = """
        SELECT e.check_after_s, count(*), avg(e.similarity), sum(e.similarity >= :survived)
        FROM events e JOIN suggestions s ON s.id = e.suggestion_id
        WHERE e.kind = 'survival' AND e.similarity IS NOT NULL
            AND s.kind = 'completion' AND s.created_ms >= :since
        GROUP BY e.check_after_s
    """
    found = {
        check: (n, mean, survived)
        for check, n, mean, survived in conn.execute(sql, {"since": since_ms, "survived": SURVIVED})
    }
    checks = sorted(set(SURVIVAL_CHECKS) | {check for check in found if check is not None})
    result: dict[str, Any] = {}
    for check in checks:
        n, mean, survived = found.get(check, (0, None, 0))
        result[str(check)] = {
            "n": n,
            "mean_similarity": mean,
            "at_least_0_9": rate(survived or 0, n),
        }
    return result


def rejections(conn: sqlite3.Connection, since_ms: int) -> dict[str, int]:
    """Rejection events of the window's completions, per reason (all four always present)."""
    sql = f"""
        SELECT coalesce(e.reason, '{UNKNOWN}'), count(*)
        FROM events e JOIN suggestions s ON s.id = e.suggestion_id
        WHERE e.kind = 'rejected' AND s.kind = 'completion' AND s.created_ms >= :since
        GROUP BY 1
    """
    counts = dict.fromkeys(REJECT_REASONS, 0)
    counts.update(dict(conn.execute(sql, {"since": since_ms}).fetchall()))
    counts["total"] = sum(counts.values())
    return counts


def gate(conn: sqlite3.Connection, since_ms: int) -> dict[str, Any]:
    """Model calls the acceptance gate avoided (skipped requests over all requests), and the
    generated suggestions it did not show."""
    total, skipped, hidden = conn.execute(
        "SELECT count(*), coalesce(sum(decision = 'skipped'), 0), "
        "coalesce(sum(decision = 'hidden'), 0) FROM requests WHERE time_ms >= :since",
        {"since": since_ms},
    ).fetchone()
    return {
        "calls_avoided": rate(skipped, total),
        "requests": total,
        "skipped": skipped,
        "hidden": hidden,
    }


def daily(conn: sqlite3.Connection, since_ms: int) -> list[dict[str, Any]]:
    """One entry per local day with a shown completion: acceptance and 30 s / 5 min survival.

    Two grouped queries merged by day (a per-day subquery would rescan the survival events once
    for every day).
    """
    shown_sql = _outcome_counts_sql(LOCAL_DAY_SQL)
    survival_sql = f"""
        SELECT {LOCAL_DAY_SQL} AS day, e.check_after_s, avg(e.similarity)
        FROM events e JOIN suggestions s ON s.id = e.suggestion_id
        WHERE e.kind = 'survival' AND e.check_after_s IN (30, 300) AND e.similarity IS NOT NULL
            AND s.kind = 'completion' AND s.created_ms >= :since
        GROUP BY day, e.check_after_s
    """
    params = {"since": since_ms}
    kept = {(day, check): mean for day, check, mean in conn.execute(survival_sql, params)}
    counts: dict[str, list[int]] = {}
    for day, outcome, n in conn.execute(shown_sql, params):
        if outcome is not None:
            _add(counts, day, outcome, n)
    return [
        {
            "day": day,
            "acceptance": rate(*counts[day]),
            "survival_30s": kept.get((day, 30)),
            "survival_300s": kept.get((day, 300)),
        }
        for day in sorted(counts)
    ]


def compute(db: DbLike, since_ms: int | None = None) -> dict[str, Any]:
    """All the figures of `hintwise feedback stats`, as plain JSON-able data.

    `db` is a sqlite-utils Database, a sqlite3 connection, or the path of an existing store.
    """
    since = since_ms if since_ms is not None else 0
    with connection(db) as conn:
        completions = conn.execute(
            "SELECT count(*) FROM suggestions s WHERE s.kind = 'completion' "
            "AND s.created_ms >= :since",
            {"since": since},
        ).fetchone()[0]
        return {
            "since_ms": since_ms,
            "completions": completions,
            "acceptance": acceptance(conn, since),
            "survival": survival(conn, since),
            "rejections": rejections(conn, since),
            "gate": gate(conn, since),
            "daily": daily(conn, since),
        }


def chart(db: DbLike, png_path: str | Path, since_ms: int | None = None) -> Path:
    """Draw daily acceptance and mean 30 s / 5 min survival as a PNG; returns its path.

    Uses matplotlib's object API with the Agg canvas, not pyplot: no display, no global figure
    state, safe to call from any thread of a running server.
    """
    with connection(db) as conn:
        days = daily(conn, since_ms if since_ms is not None else 0)
    figure = _draw(days)
    path = Path(png_path)
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=110)
    return path


def _draw(days: list[dict[str, Any]]) -> Any:
    """Rates on top (0-100 %), how many suggestions each day's rate rests on below."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    figure = Figure(figsize=(9, 5.5), layout="constrained")
    FigureCanvasAgg(figure)
    figure.suptitle("hintwise: acceptance and survival of completions, per day")
    if not days:
        axes = figure.subplots()
        axes.text(0.5, 0.5, "no completions shown yet", ha="center", va="center")
        axes.set_axis_off()
        return figure
    rates_axes, counts_axes = figure.subplots(
        2, 1, sharex=True, gridspec_kw={"height_ratios": [3, 1]}
    )
    dates = [date.fromisoformat(day["day"]) for day in days]
    series = (
        ("acceptance rate", [day["acceptance"]["rate"] for day in days], "o-"),
        ("kept after 30 s (mean similarity)", [day["survival_30s"] for day in days], "s--"),
        ("kept after 5 min (mean similarity)", [day["survival_300s"] for day in days], "^:"),
    )
    for label, values, style in series:
        points = [(d, v * 100) for d, v in zip(dates, values, strict=True) if v is not None]
        if points:
            xs, ys = zip(*_break_gaps(points), strict=True)
            rates_axes.plot(xs, ys, style, label=label)
    rates_axes.set_ylim(0, 102)  # room for the markers of a 100 % day
    rates_axes.set_ylabel("percent")
    rates_axes.grid(alpha=0.3)
    if rates_axes.get_lines():
        # Above the plot, in one row: inside it would hide the very points it explains.
        rates_axes.legend(loc="lower left", bbox_to_anchor=(0, 1.01), ncols=3, frameon=False)
    counts_axes.bar(dates, [day["acceptance"]["n"] for day in days], color="tab:gray")
    counts_axes.set_ylabel("shown (n)")
    counts_axes.set_xlabel("day (local time)")
    _day_ticks(counts_axes, dates)
    return figure


def _break_gaps(points: list[tuple[date, float]]) -> list[tuple[date, float]]:
    """A NaN point the day after each day followed by a gap: matplotlib breaks the line there
    instead of drawing a trend across days nobody used the editor."""
    out: list[tuple[date, float]] = []
    for index, (day, value) in enumerate(points):
        if index and (day - points[index - 1][0]).days > 1:
            out.append((points[index - 1][0] + timedelta(days=1), float("nan")))
        out.append((day, value))
    return out


def _day_ticks(axes: Any, dates: list[date]) -> None:
    """Whole days only: matplotlib's automatic ticks would label hours across a short span."""
    from matplotlib.dates import AutoDateLocator, ConciseDateFormatter, DayLocator

    if not dates:
        return
    span = (max(dates) - min(dates)).days
    locator = DayLocator() if span <= 14 else AutoDateLocator(minticks=4, maxticks=12)
    axes.xaxis.set_major_locator(locator)
    axes.xaxis.set_major_formatter(ConciseDateFormatter(locator))
    margin = timedelta(days=1)  # whole days: date arithmetic drops fractions
    axes.set_xlim(min(dates) - margin, max(dates) + margin)
