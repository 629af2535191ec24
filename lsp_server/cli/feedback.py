"""`hintwise feedback …`: read the local feedback store back (stats, export, recent, purge).

The figures and exports are computed by `telemetry` (plain functions over the database); this
module only finds the store, parses options and prints.
"""

from __future__ import annotations

import json
import sys
from datetime import datetime
from pathlib import Path

import click

from hintwise.lsp_server import config
from hintwise.telemetry import default_path, open_db, purge
from hintwise.telemetry.export import export_detailed
from hintwise.telemetry.report import render
from hintwise.telemetry.stats import chart, compute
from hintwise.telemetry.store import to_epoch_ms


def _store(must_exist: bool = True) -> Path:
    settings = config.from_environment()
    path = default_path(settings.data_path)
    if must_exist and not path.exists():
        raise click.ClickException(
            f"no feedback store yet at {path}: it is created when the language server shows "
            "its first suggestion (telemetry.enabled)."
        )
    return path


def _since(value: str | None) -> int | None:
    if value is None:
        return None
    try:
        return to_epoch_ms(value)
    except ValueError as error:
        raise click.BadParameter(f"{error} (expected a date like 2026-11-01)") from None


@click.group()
def feedback() -> None:
    """Your suggestions and what you did with them (stored only on this machine)."""


@feedback.command()
def path() -> None:
    """Print where the feedback store is."""
    click.echo(_store(must_exist=False))


@feedback.command()
@click.option("--json", "as_json", is_flag=True, help="Print the figures as JSON.")
@click.option("--since", help="Only suggestions made on or after this date (YYYY-MM-DD).")
@click.option(
    "--chart",
    "chart_path",
    type=click.Path(dir_okay=False, path_type=Path),
    default=Path("hintwise-feedback.png"),
    show_default=True,
    help="Where to write the PNG chart of acceptance and survival over time.",
)
def stats(as_json: bool, since: str | None, chart_path: Path) -> None:
    """Acceptance (overall, by language, hour and length), survival, rejections, gate savings."""
    store = _store()
    since_ms = _since(since)
    figures = compute(store, since_ms)
    written = chart(store, chart_path, since_ms)
    if as_json:
        click.echo(json.dumps({**figures, "chart": str(written)}, indent=2))
    else:
        click.echo(render(figures) + f"Chart: {written}")


@feedback.command()
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["dpo", "kto", "events"]),
    required=True,
    help="dpo: prompt/chosen/rejected pairs; kto: prompt/completion/label rows; events: all.",
)
@click.option(
    "--out",
    type=click.Path(dir_okay=False, path_type=Path),
    required=True,
    help="The JSONL file to write ('-' for standard output).",
)
@click.option("--since", help="Only suggestions made on or after this date (YYYY-MM-DD).")
@click.option("--language", help="Only suggestions in this language (an LSP languageId).")
@click.option(
    "--min-survival",
    type=click.FloatRange(0, 1),
    help="An accepted suggestion counts as good only if this share of it survived.",
)
def export(
    fmt: str, out: Path, since: str | None, language: str | None, min_survival: float | None
) -> None:
    """Preference data for tuning a model on your own choices (TRL's DPO and KTO formats)."""
    store = _store()
    target = sys.stdout if str(out) == "-" else out
    result = export_detailed(store, fmt, target, _since(since), language, min_survival)
    summary = f"{result.written} {fmt} rows"
    if str(out) != "-":
        summary += f" written to {out}"
    if result.skipped:
        summary += f"; {result.skipped} skipped ({dict(result.reasons)})"
    click.echo(summary, err=True)


@feedback.command()
@click.option("-n", "count", type=int, default=10, show_default=True)
def recent(count: int) -> None:
    """The most recent suggestions with their outcome."""
    db = open_db(_store(), create=False)
    rows = db.query(
        """
        SELECT s.id, s.created, s.language, s.text,
            (SELECT group_concat(kind || coalesce(':' || reason, ''), ' ')
             FROM events e WHERE e.suggestion_id = s.id) AS outcome
        FROM suggestions s ORDER BY s.created_ms DESC LIMIT :count
        """,
        {"count": count},
    )
    for row in rows:
        text = (row["text"] or "").replace("\n", "⏎")
        click.echo(f"{row['created'][:19]}  {row['language'] or '?':<10} {text[:60]!r}")
        click.echo(f"    {row['outcome'] or 'no events'}")


@feedback.command(name="purge")
@click.option("--before", help="Delete suggestions made before this date (YYYY-MM-DD).")
@click.option("--all", "everything", is_flag=True, help="Delete every suggestion.")
def purge_command(before: str | None, everything: bool) -> None:
    """Delete recorded suggestions and their outcomes."""
    if not before and not everything:
        raise click.UsageError("say what to delete: --before DATE or --all")
    cutoff = datetime.now().astimezone() if everything else before
    try:
        removed = purge(_store(), before=cutoff)
    except ValueError as error:
        raise click.BadParameter(str(error)) from None
    click.echo(
        f"deleted {removed.suggestions} suggestions, {removed.events} events, "
        f"{removed.requests} requests"
    )
