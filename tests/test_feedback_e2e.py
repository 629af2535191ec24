"""Outcomes recorded end to end: `hintwise serve` with the real model, a pytest-lsp client, the
real SQLite store, and a manual clock moved by the test (no sleeping through timeouts)."""

from __future__ import annotations

import pytest
import sqlite_utils
from lsp_session import EXAMPLE, advance, inline, insert, open_document, session, wait_ready
from lsprotocol import types

pytestmark = [pytest.mark.model, pytest.mark.timeout(180)]

URI = "file:///work/example/primes.py"
LINE, COLUMN = 14, 12


def events(tmp_path, suggestion_id: str) -> list[dict]:
    db = sqlite_utils.Database(tmp_path / "telemetry.db")
    return list(
        db.query(
            "select kind, reason, accepted_chars, check_after_s, similarity, text from events "
            "where suggestion_id = ? order by id",
            [suggestion_id],
        )
    )


def suggestion(tmp_path, suggestion_id: str) -> dict:
    db = sqlite_utils.Database(tmp_path / "telemetry.db")
    return db["suggestions"].get(suggestion_id)


async def first_suggestion(client):
    open_document(client, URI, EXAMPLE)
    await wait_ready(client)
    result = await inline(client, URI, LINE, COLUMN)
    item = result.items[0]  # the suggestion; alternatives follow it
    return item, item.command.arguments[0]


async def test_accepted_then_edited_gives_decreasing_survival(clock_env, tmp_path):
    async with session(clock_env) as client:
        item, suggestion_id = await first_suggestion(client)
        # The editor inserts the text, then runs the item's command.
        insert(client, URI, 2, LINE, COLUMN, item.insert_text)
        await client.workspace_execute_command_async(
            types.ExecuteCommandParams(command="hintwise.accept", arguments=[suggestion_id])
        )
        await advance(client, 31)
        # The user rewrites most of the accepted line before the 2-minute check.
        here = types.Position(line=LINE, character=COLUMN)
        gone = types.Position(line=LINE, character=COLUMN + len(item.insert_text))
        client.text_document_did_change(
            types.DidChangeTextDocumentParams(
                text_document=types.VersionedTextDocumentIdentifier(uri=URI, version=3),
                content_changes=[
                    types.TextDocumentContentChangePartial(
                        range=types.Range(start=here, end=gone), text="continue"
                    )
                ],
            )
        )
        await advance(client, 300)
        row = suggestion(tmp_path, suggestion_id)
        found = events(tmp_path, suggestion_id)
    assert row["text"] == item.insert_text
    assert row["language"] == "python" and row["file"].endswith("primes.py")
    assert row["prompt"].startswith("<bos>") and row["prompt"].endswith(" " * 12)
    assert row["model"] == "gemma-3-270m-q4_k_m.gguf"  # HINTWISE_MODEL names the file
    kinds = [event["kind"] for event in found]
    assert kinds[:2] == ["shown", "accepted"]
    survival = {e["check_after_s"]: e["similarity"] for e in found if e["kind"] == "survival"}
    assert set(survival) == {30, 120, 300}
    assert survival[30] == 1.0
    assert survival[120] < 0.8 and survival[300] == survival[120]
    assert "rejected" not in kinds


async def test_rejections_by_timeout_supersede_divergence_and_explicit(clock_env, tmp_path):
    async with session(clock_env) as client:
        _, first = await first_suggestion(client)
        await advance(client, 11)  # not accepted within 10 s
        second = (await inline(client, URI, LINE, COLUMN)).items[0].command.arguments[0]
        other = await inline(client, URI, 8, 8)  # a request elsewhere supersedes it
        assert other.items is not None
        third = (await inline(client, URI, LINE, COLUMN)).items[0].command.arguments[0]
        insert(client, URI, 2, LINE, COLUMN, "z")  # typing that diverges from `return False`
        fourth = (await inline(client, URI, LINE, COLUMN + 1)).items
        await advance(client, 0)
        reasons = {
            name: [e["reason"] for e in events(tmp_path, sid) if e["kind"] == "rejected"]
            for name, sid in [("first", first), ("second", second), ("third", third)]
        }
        if fourth:
            client.protocol.notify("hintwise/didReject", {"id": fourth[0].command.arguments[0]})
            await advance(client, 0)
            explicit = [e["reason"] for e in events(tmp_path, fourth[0].command.arguments[0])]
            assert "explicit" in explicit
    assert reasons == {"first": ["timeout"], "second": ["superseded"], "third": ["diverged"]}


async def test_partial_acceptance_by_notification_and_by_an_inserted_chunk(clock_env, tmp_path):
    async with session(clock_env) as client:
        _, suggestion_id = await first_suggestion(client)
        client.protocol.notify(
            "hintwise/didPartiallyAccept", {"id": suggestion_id, "acceptedLength": 6}
        )
        await advance(client, 0)
        by_notification = events(tmp_path, suggestion_id)
        # The same again, the way an editor's accept-word shows up: one edit with a chunk of it.
        client.text_document_did_close(
            types.DidCloseTextDocumentParams(text_document=types.TextDocumentIdentifier(uri=URI))
        )
        open_document(client, URI, EXAMPLE)
        again = (await inline(client, URI, LINE, COLUMN)).items[0]
        chunk = again.insert_text[:7]
        insert(client, URI, 2, LINE, COLUMN, chunk)
        # our plugins also report it: the same acceptance must not be counted twice
        client.protocol.notify(
            "hintwise/didPartiallyAccept",
            {"id": again.command.arguments[0], "acceptedLength": len(chunk)},
        )
        await advance(client, 0)
        by_edit = events(tmp_path, again.command.arguments[0])
    assert [e["kind"] for e in by_notification] == ["shown", "partially_accepted"]
    assert by_notification[1]["accepted_chars"] == 6
    assert [e["kind"] for e in by_edit].count("partially_accepted") == 1
    assert by_edit[-1]["kind"] == "partially_accepted"
    assert by_edit[-1]["accepted_chars"] == len(chunk)


async def test_the_users_own_line_is_captured_after_a_rejection(clock_env, tmp_path):
    async with session(clock_env) as client:
        _, suggestion_id = await first_suggestion(client)
        client.protocol.notify("hintwise/didReject", {"id": suggestion_id})
        version = 2
        for index, char in enumerate("break"):
            insert(client, URI, version, LINE, COLUMN + index, char)
            version += 1
        # Moving on: an edit on another line.
        insert(client, URI, version, 2, 0, "# primes\n")
        await advance(client, 0)
        found = events(tmp_path, suggestion_id)
    assert [e["kind"] for e in found] == ["shown", "rejected", "replacement"]
    assert found[1]["reason"] == "explicit"
    assert found[2]["text"] == "break"


async def test_a_broken_store_is_reported_once_and_completions_go_on(clock_env, tmp_path):
    garbage = b"this is not a database\x00" * 200
    (tmp_path / "telemetry.db").write_bytes(garbage)
    async with session(clock_env) as client:
        open_document(client, URI, EXAMPLE)
        await wait_ready(client)
        for _ in range(3):
            result = await inline(client, URI, LINE, COLUMN)
            assert result.items  # completions are served without telemetry
        await advance(client, 0)
        status = await client.protocol.send_request_async("hintwise/status", {})
        warnings = [m.message for m in client.messages if "feedback" in m.message]
    assert status.telemetry.ok is False
    assert len(warnings) == 1 and "telemetry.db" in warnings[0]
    assert (tmp_path / "telemetry.db").read_bytes() == garbage  # not overwritten


async def test_a_lone_surrogate_in_a_document_or_uri_keeps_the_store_recording(clock_env, tmp_path):
    """Issue 15: `"\\ud800"` is valid JSON; in a document or a URI it used to turn the store off
    for the session, and after an edit on its line completions there failed with -32603."""
    uri = "file:///work/example/pr\ud800imes.py"
    text = "# caf\ud800 notes\n" + EXAMPLE
    async with session(clock_env) as client:
        open_document(client, uri, text)
        await wait_ready(client)
        first = await inline(client, uri, LINE + 1, COLUMN)
        insert(client, uri, 2, 0, 6, "\ud800x")  # an edit on the line with the surrogate
        there = await inline(client, uri, 0, 8)
        again = await inline(client, uri, LINE + 1, COLUMN)
        await advance(client, 0)
        status = await client.protocol.send_request_async("hintwise/status", {})
    assert first.items and again.items
    assert isinstance(there, types.InlineCompletionList)  # answered, not an internal error
    assert status.telemetry.ok is True
    db = sqlite_utils.Database(tmp_path / "telemetry.db")
    stored = list(db.query("select id, file from suggestions"))
    assert stored and all("\ufffd" in (row["file"] or "\ufffd") for row in stored)
    assert db["events"].count >= 1


async def test_one_suggestion_one_final_outcome_through_the_server(clock_env, tmp_path):
    """Issue 15: `didShow` ×5 stored five `seen`; `didReject` then `hintwise.accept` answered
    accepted and stored both."""
    async with session(clock_env) as client:
        _, suggestion_id = await first_suggestion(client)
        for _ in range(5):
            client.protocol.notify("hintwise/didShow", {"id": suggestion_id})
        await advance(client, 1)
        client.protocol.notify("hintwise/didReject", {"id": suggestion_id})
        answer = await client.workspace_execute_command_async(
            types.ExecuteCommandParams(command="hintwise.accept", arguments=[suggestion_id])
        )
        await advance(client, 0)
    assert answer["accepted"] is False and "rejected" in answer["reason"]
    assert [e["kind"] for e in events(tmp_path, suggestion_id)] == ["shown", "seen", "rejected"]
