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


async def test_an_export_never_overwrites_the_store_or_a_file_it_was_not_asked_to(
    clock_env, tmp_path
):
    """Issue 15: `hintwise.exportFeedback` wrote wherever the client said: over the store
    itself (300 suggestions gone after a restart), relative paths against the server's working
    directory, existing files replaced."""
    outside = tmp_path.parent / f"{tmp_path.name}-outside"
    outside.mkdir()
    mine = outside / "notes.jsonl"
    mine.write_text("keep me\n")
    async with session(clock_env) as client:
        open_document(client, URI, EXAMPLE)
        await wait_ready(client)
        item = (await inline(client, URI, 14, 12)).items[0]
        await _execute(client, "hintwise.accept", item.command.arguments[0])
        await advance(client, 0)

        async def export(**options):
            return await _execute(client, "hintwise.exportFeedback", {"format": "kto", **options})

        answers = {
            "store": await export(path=str(tmp_path / "telemetry.db")),
            "wal": await export(path=str(tmp_path / "telemetry.db-wal.jsonl")),
            "relative": await export(path="kto.jsonl"),
            "not jsonl": await export(path=str(tmp_path / "x.py")),
            "outside": await export(path=str(outside / "new.jsonl")),
            "existing": await export(path=str(mine), confirmed=True),
        }
        chosen = await export(path=str(outside / "new.jsonl"), confirmed=True)
        replaced = await export(path=str(mine), confirmed=True, replace=True)
        default = await export()
        status = await client.protocol.send_request_async("hintwise/status", {})
    for case, answer in answers.items():
        assert "error" in answer and "written" not in answer, case
    assert "store" in answers["store"]["error"] and "absolute" in answers["relative"]["error"]
    assert "exists" in answers["existing"]["error"]
    assert chosen["written"] == replaced["written"] == default["written"] >= 1
    assert mine.read_text() != "keep me\n" and (tmp_path / "hintwise-kto.jsonl").exists()
    assert status.telemetry.ok is True
    import sqlite3

    with sqlite3.connect(tmp_path / "telemetry.db") as db:  # still a database, still recording
        assert db.execute("select count(*) from suggestions").fetchone()[0] >= 1
