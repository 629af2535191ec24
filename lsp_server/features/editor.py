"""Commands the editor plugins use besides completion: `hintwise.stats` (feedback figures,
today's acceptance rate and a chart) and `hintwise.exportFeedback` (DPO / KTO / events JSONL)."""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path
from typing import Any

from hintwise.lsp_server.features import protocol
from hintwise.lsp_server.feedback import reports
from hintwise.lsp_server.server import HintwiseServer

log = logging.getLogger("hintwise")

FLUSH_TIMEOUT_S = 5.0


async def stats(ls: HintwiseServer, *args: Any) -> dict:
    """`{chart?: bool}` → figures, `text`, `today` (acceptance today) and the chart's path."""
    options = protocol.options(args)
    chart_path = ls.settings.data_path / "feedback-chart.png" if options.get("chart") else None
    store = ls.feedback.path
    await asyncio.to_thread(ls.feedback.flush, FLUSH_TIMEOUT_S)
    try:
        return await asyncio.to_thread(reports.stats, store, chart_path)
    except Exception as error:  # a corrupt store: say so, keep serving
        log.exception("hintwise.stats failed")
        return {"store": str(store), "error": str(error)}


async def export(ls: HintwiseServer, *args: Any) -> dict:
    """`{format: "dpo" | "kto" | "events", path}` → `{path, written, skipped}` or `{error}`."""
    options = protocol.options(args)
    fmt = str(options.get("format") or "dpo")
    default = ls.settings.data_path / f"hintwise-{fmt}.jsonl"
    out = Path(str(options.get("path") or default)).expanduser()
    await asyncio.to_thread(ls.feedback.flush, FLUSH_TIMEOUT_S)
    try:
        return await asyncio.to_thread(reports.export, ls.feedback.path, fmt, out)
    except Exception as error:
        log.warning("hintwise.exportFeedback failed: %s", error)
        return {"error": str(error)}


def register(server: HintwiseServer) -> None:
    server.command(protocol.STATS)(stats)
    server.command(protocol.EXPORT)(export)
