"""Feedback figures and exports for the editor plugins' commands (`hintwise.stats`,
`hintwise.exportFeedback`): the same figures as `hintwise feedback stats`, read from the running
server's store, as plain data a status bar or a panel can show."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Any

from hintwise.telemetry.export import export_detailed
from hintwise.telemetry.report import render
from hintwise.telemetry.stats import chart, compute

FORMATS = ("dpo", "kto", "events")


def start_of_today_ms(now: datetime | None = None) -> int:
    """Local midnight, as the epoch milliseconds the store's `since` filters take."""
    now = now or datetime.now().astimezone()
    midnight = now.replace(hour=0, minute=0, second=0, microsecond=0)
    return int(midnight.timestamp() * 1000)


def stats(store: Path, chart_path: Path | None) -> dict[str, Any]:
    """All-time figures with their text report, today's acceptance, and the chart if asked for.

    A store that does not exist yet (nothing recorded) gives empty figures, not an error."""
    if not store.exists():
        empty = {"rate": None, "n": 0, "count": 0}
        return {"store": str(store), "exists": False, "today": empty, "text": "", "chart": None}
    figures = compute(store)
    today = compute(store, start_of_today_ms())["acceptance"]["overall"]
    written = chart(store, chart_path) if chart_path is not None else None
    return {
        "store": str(store),
        "exists": True,
        "today": today,
        "figures": figures,
        "text": render(figures),
        "chart": str(written) if written is not None else None,
    }


def export(store: Path, fmt: str, out: Path) -> dict[str, Any]:
    """Write one export format to `out` (JSON Lines); what was written and what was skipped."""
    if fmt not in FORMATS:
        raise ValueError(f"format must be one of {', '.join(FORMATS)}, not {fmt!r}")
    if not store.exists():
        raise ValueError(f"no feedback recorded yet ({store} does not exist)")
    out.parent.mkdir(parents=True, exist_ok=True)
    result = export_detailed(store, fmt, out)
    return {"path": str(out), "written": result.written, "skipped": result.skipped}
