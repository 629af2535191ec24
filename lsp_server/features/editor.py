"""Commands the editor plugins use besides completion: `hintwise.stats` (feedback figures, today's
acceptance rate and a chart) and `hintwise.exportFeedback` (DPO / KTO / events JSONL)."""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path

from hintwise.lsp_server import editor_stats
from hintwise.lsp_server.server import HintwiseServer
from hintwise.telemetry import default_path

log = logging.getLogger("hintwise")

STATS_COMMAND = "hintwise.stats"
EXPORT_COMMAND = "hintwise.exportFeedback"
FLUSH_TIMEOUT_S = 5.0


def _options(args: tuple) -> dict:
    """Commands take one JSON object; a missing or malformed one means the defaults."""
    return args[0] if args and isinstance(args[0], dict) else {}


def _store(ls: HintwiseServer) -> Path:
    return default_path(ls.settings.data_path)


def register(server: HintwiseServer) -> None:
    @server.command(STATS_COMMAND)
    async def stats(ls: HintwiseServer, *args) -> dict:
        """`{chart?: bool}` → figures, `text`, `today` (acceptance today) and the chart's path."""
        options = _options(args)
        chart_path = ls.settings.data_path / "feedback-chart.png" if options.get("chart") else None
        await asyncio.to_thread(ls.writer.flush, FLUSH_TIMEOUT_S)
        try:
            return await asyncio.to_thread(editor_stats.stats, _store(ls), chart_path)
        except Exception as error:  # a corrupt store: say so, keep serving
            log.exception("hintwise.stats failed")
            return {"store": str(_store(ls)), "error": str(error)}

    @server.command(EXPORT_COMMAND)
    async def export(ls: HintwiseServer, *args) -> dict:
        """`{format: "dpo" | "kto" | "events", path}` → `{path, written, skipped}` or `{error}`."""
        options = _options(args)
        fmt = str(options.get("format") or "dpo")
        default = ls.settings.data_path / f"hintwise-{fmt}.jsonl"
        out = Path(str(options.get("path") or default)).expanduser()
        await asyncio.to_thread(ls.writer.flush, FLUSH_TIMEOUT_S)
        try:
            return await asyncio.to_thread(editor_stats.export, _store(ls), fmt, out)
        except Exception as error:
            log.warning("hintwise.exportFeedback failed: %s", error)
            return {"error": str(error)}
