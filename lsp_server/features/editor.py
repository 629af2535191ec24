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
    """`{format: "dpo" | "kto" | "events", path?, replace?, confirmed?}` → `{path, written,
    skipped}` or `{error}` (see `export_target` for where it may write)."""
    options = protocol.options(args)
    fmt = str(options.get("format") or "dpo")
    try:
        out = export_target(ls, fmt, options)
    except ValueError as error:
        log.warning("hintwise.exportFeedback refused: %s", error)
        return {"error": str(error)}
    await asyncio.to_thread(ls.feedback.flush, FLUSH_TIMEOUT_S)
    try:
        return await asyncio.to_thread(reports.export, ls.feedback.path, fmt, out)
    except Exception as error:
        log.warning("hintwise.exportFeedback failed: %s", error)
        return {"error": str(error)}


def export_target(ls: HintwiseServer, fmt: str, options: dict) -> Path:
    """Where an export may be written; ValueError saying why not.

    A client's command must not make the server overwrite the user's files or the store
    itself: the path is absolute, a `.jsonl` file, never one of the store's files, inside the
    workspace or the data directory unless the user chose it (`confirmed`, e.g. in a save
    dialog), and an existing file is replaced only with `replace`. Without a path it goes to
    the data directory."""
    given = options.get("path")
    if not given:
        return ls.settings.data_path / f"hintwise-{fmt}.jsonl"
    if not isinstance(given, str) or "\x00" in given:
        raise ValueError("path must be a file path")
    out = Path(given).expanduser()
    if not out.is_absolute():
        raise ValueError(f"path must be absolute, not {given!r}")
    store = ls.feedback.path.resolve()
    resolved = out.resolve()
    if resolved.parent == store.parent and resolved.name.startswith(store.name):
        raise ValueError(f"{out} is the feedback store itself")
    if out.suffix != ".jsonl":
        raise ValueError(f"an export is a .jsonl file, not {out.name!r}")
    data = ls.settings.data_path.resolve()
    ours = ls.in_workspace(out) or resolved.is_relative_to(data)
    if not ours and options.get("confirmed") is not True:
        raise ValueError(f"{out} is outside the workspace and the data directory {data}")
    if not ours and not resolved.parent.is_dir():
        raise ValueError(f"{out.parent} is not a folder")  # folders are made only in ours
    if resolved.exists() and options.get("replace") is not True:
        raise ValueError(f"{out} exists; it is replaced only when asked to (replace: true)")
    return out


def register(server: HintwiseServer) -> None:
    server.command(protocol.STATS)(stats)
    server.command(protocol.EXPORT)(export)
