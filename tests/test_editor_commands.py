"""The commands the editor plugins add (lsp_server/features/editor.py): `hintwise.stats` and
`hintwise.exportFeedback`, over stdio against the real server, model and store."""

from __future__ import annotations

import json

import pytest
from lsp_session import EXAMPLE, advance, inline, open_document, session, wait_ready
from lsprotocol import types

pytestmark = [pytest.mark.model, pytest.mark.timeout(180)]

URI = "file:///work/example/primes.py"


async def _execute(client, command: str, argument: object) -> object:
    return await client.workspace_execute_command_async(
        types.ExecuteCommandParams(command=command, arguments=[argument])
    )


async def test_stats_and_export_read_the_running_servers_store(clock_env, tmp_path):
    async with session(clock_env) as client:
        open_document(client, URI, EXAMPLE)
        await wait_ready(client)
        empty = await _execute(client, "hintwise.stats", {})
        item = (await inline(client, URI, 14, 12)).items[0]
        await _execute(client, "hintwise.accept", item.command.arguments[0])
        await advance(client, 0)
        stats = await _execute(client, "hintwise.stats", {"chart": True})
        kto = tmp_path / "out" / "kto.jsonl"
        exported = await _execute(
            client, "hintwise.exportFeedback", {"format": "kto", "path": str(kto)}
        )
        bad = await _execute(client, "hintwise.exportFeedback", {"format": "csv"})
        malformed = await _execute(client, "hintwise.stats", "not an object")

    assert empty["today"]["n"] == 0
    assert stats["store"] == str(tmp_path / "telemetry.db")
    assert stats["today"]["accepted"] == 1 and stats["today"]["shown"] == 1
    assert stats["figures"]["completions"] == 1
    assert stats["text"].startswith("Completions: 1 generated, 1 shown")
    assert (tmp_path / "feedback-chart.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert stats["chart"] == str(tmp_path / "feedback-chart.png")
    rows = [json.loads(line) for line in kto.read_text().splitlines()]
    assert exported == {"path": str(kto), "written": len(rows), "skipped": 0}
    assert rows and rows[0]["label"] is True and rows[0]["completion"] == item.insert_text
    assert "format must be one of" in bad["error"]
    assert malformed["store"] == stats["store"]  # a malformed argument means the defaults
