"""A client that sends malformed or out-of-order messages about suggestions: unknown ids, missing
or mistyped fields, accept twice, reject or show after accept, partial accept after a full one.
None of it may break the server (it keeps answering and completing) or corrupt the feedback
store (one outcome per suggestion, no rows for ids it never gave, a sound SQLite file).

Editor plugins are written by many people; a bug in one must cost nothing but its own message."""

from __future__ import annotations

import sqlite3

import pytest
from lsp_session import EXAMPLE, advance, inline, open_document, session, status, wait_ready
from lsprotocol import types

pytestmark = [pytest.mark.model, pytest.mark.timeout(180)]

URI = "file:///work/example/primes.py"
LINE, COLUMN = 14, 12

MALFORMED_NOTIFICATIONS = [
    ("hintwise/didShow", {"id": "no-such-suggestion"}),
    ("hintwise/didShow", {}),
    ("hintwise/didShow", {"id": 42}),
    ("hintwise/didShow", None),
    ("hintwise/didShow", [1, 2, 3]),
    ("hintwise/didReject", {"id": "no-such-suggestion"}),
    ("hintwise/didReject", {"id": None}),
    ("hintwise/didPartiallyAccept", {"id": "no-such-suggestion", "acceptedLength": 3}),
    ("hintwise/didPartiallyAccept", {"id": "no-such-suggestion"}),
    ("hintwise/didPartiallyAccept", {"acceptedLength": "three"}),
    ("hintwise/didMoveCursor", {"textDocument": {"uri": "file:///nowhere.py"}}),
    ("hintwise/didMoveCursor", {"position": {"line": -1, "character": "x"}}),
    ("hintwise/noSuchNotification", {"id": "x"}),
]


async def _execute(client, command: str, arguments: list) -> tuple[object, str | None]:
    """The command's answer, or the error message it gave (a protocol error, not a crash)."""
    try:
        answer = await client.workspace_execute_command_async(
            types.ExecuteCommandParams(command=command, arguments=arguments)
        )
    except Exception as error:  # JsonRpcInvalidParams and friends
        return None, str(error)
    return answer, None


def _events(store) -> list[tuple]:
    with sqlite3.connect(store) as db:
        return db.execute(
            "SELECT suggestion_id, kind, reason, accepted_chars FROM events ORDER BY id"
        ).fetchall()


async def test_malformed_and_out_of_order_messages_change_nothing(clock_env, tmp_path):
    async with session(clock_env) as client:
        open_document(client, URI, EXAMPLE)
        await wait_ready(client)
        item = (await inline(client, URI, LINE, COLUMN)).items[0]
        suggestion_id = item.command.arguments[0]

        for method, params in MALFORMED_NOTIFICATIONS:
            client.protocol.notify(method, params)
        # Out of order: accepted twice, then shown, partly accepted and rejected after that.
        first, _ = await _execute(client, "hintwise.accept", [suggestion_id])
        second, _ = await _execute(client, "hintwise.accept", [suggestion_id])
        client.protocol.notify("hintwise/didShow", {"id": suggestion_id})
        client.protocol.notify(
            "hintwise/didPartiallyAccept", {"id": suggestion_id, "acceptedLength": 2}
        )
        client.protocol.notify("hintwise/didReject", {"id": suggestion_id})
        # Commands with unknown ids and with the wrong arguments.
        unknown, _ = await _execute(client, "hintwise.accept", ["no-such-suggestion"])
        errors = [
            (await _execute(client, "hintwise.accept", arguments))[1]
            for arguments in ([], [42], [{"id": suggestion_id}], [None])
        ]
        await advance(client, 30)  # let every timer (seen, timeout, survival) that exists fire

        # The server still answers and still completes.
        after = await status(client)
        assert after.state == "ready"
        again = await inline(client, URI, LINE, COLUMN)
        assert again.items and again.items[0].insert_text
        await advance(client, 0)

    assert first == {"accepted": True, "id": suggestion_id}
    assert second == {"accepted": True, "id": suggestion_id}
    assert unknown["accepted"] is False
    # A wrong argument is a clear protocol error for that one request, or a plain refusal.
    for message in errors:
        assert message is None or "Invalid" in message or "argument" in message.lower()

    store = tmp_path / "telemetry.db"
    with sqlite3.connect(store) as db:
        assert db.execute("PRAGMA integrity_check").fetchone() == ("ok",)
        known = {row[0] for row in db.execute("SELECT id FROM suggestions")}
    events = _events(store)
    assert {row[0] for row in events} <= known, "an event for an id the server never gave"
    mine = [row[1:] for row in events if row[0] == suggestion_id]
    kinds = [kind for kind, *_ in mine]
    assert kinds.count("accepted") == 1, mine
    assert "rejected" not in kinds and "partially_accepted" not in kinds, mine
    assert ("accepted", None, len(item.insert_text)) in mine
