"""The review's static checks through `hintwise serve` over stdio, with the real SQLite store:
comments from ruff, none on lines another server flagged, and a kind of comment dismissed
twice on a kind of code is gone at the next review, and in the next session (read back from
the store), while another kind stays.

The documents hold module-level code only (no function or class): the model reviews units, so
none of this waits for it; the model path is absent on purpose.
"""

from __future__ import annotations

import asyncio
import os
import sqlite3
from pathlib import Path

from lsp_session import open_document, session
from lsprotocol import types
from test_review_e2e import command, expect_diagnostics

UNDEFINED = "first = first_missing()\nsecond = second_missing()\nif first == None:\n    print(1)\n"


def environment(data: Path) -> dict[str, str]:
    env = {key: value for key, value in os.environ.items() if not key.startswith("HINTWISE_")}
    env["HINTWISE_DATA_DIR"] = str(data)
    env["HINTWISE_MODEL"] = str(data / "absent.gguf")
    return env


async def review(client, uri: str) -> list[types.Diagnostic]:
    published = await expect_diagnostics(client)
    answer = await command(client, "hintwise.review", {"uri": uri})
    params = await asyncio.wait_for(published, 30)
    assert answer["comments"] == len(params.diagnostics), answer
    return params.diagnostics


def codes(diagnostics: list[types.Diagnostic]) -> list[tuple[int, str]]:
    return sorted((d.range.start.line, str(d.code)) for d in diagnostics)


async def test_a_kind_dismissed_twice_is_not_shown_again(tmp_path: Path):
    data = tmp_path / "data"
    path = tmp_path / "setup.py"
    path.write_text(UNDEFINED)
    uri = path.as_uri()
    async with session(environment(data)) as client:
        open_document(client, uri, UNDEFINED)
        first = await review(client, uri)
        assert codes(first) == [(0, "ruff:F821"), (1, "ruff:F821"), (2, "ruff:E711")]
        e711 = next(d for d in first if d.code == "ruff:E711")
        assert e711.source == "hintwise" and e711.severity == types.DiagnosticSeverity.Information
        assert e711.data["fix"] is True  # ruff's own fix: `first is None`
        for item in first[:2]:
            published = await expect_diagnostics(client)
            result = await command(client, "hintwise.dismissComment", {"id": item.data["id"]})
            assert result["dismissed"]
            await asyncio.wait_for(published, 10)
        # A new undefined name (a new comment of the dismissed kind); two of them at most, so
        # the filter for names made at run time (three or more) is not what hides it.
        text = UNDEFINED.replace("first_missing", "renamed_missing")
        client.text_document_did_change(
            types.DidChangeTextDocumentParams(
                text_document=types.VersionedTextDocumentIdentifier(uri=uri, version=2),
                content_changes=[types.TextDocumentContentChangeWholeDocument(text=text)],
            )
        )
        assert codes(await review(client, uri)) == [(2, "ruff:E711")]

    with sqlite3.connect(data / "telemetry.db") as db:
        rows = db.execute(
            "SELECT s.category, json_extract(s.detail, '$.code_kind'), e.kind FROM events e "
            "JOIN suggestions s ON s.id = e.suggestion_id WHERE e.kind = 'dismissed'"
        ).fetchall()
    assert rows == [("ruff:F821", "assignment", "dismissed")] * 2

    other = tmp_path / "other.py"
    text = "value = other_missing()\nprint(value == None)\n"
    other.write_text(text)
    async with session(environment(data)) as client:  # a new server: counts from the store
        open_document(client, other.as_uri(), text)
        assert codes(await review(client, other.as_uri())) == [(1, "ruff:E711")]


async def test_no_static_comment_where_another_server_has_a_diagnostic(tmp_path: Path):
    text = "value = None\nif value == None:\n    print(missing)\n"
    path = tmp_path / "flagged.py"
    path.write_text(text)
    uri = path.as_uri()
    theirs = {
        "range": {"start": {"line": 1, "character": 3}, "end": {"line": 1, "character": 16}},
        "message": "Comparison to `None` should be `cond is None`",
        "source": "Ruff",
        "code": "E711",
    }
    async with session(environment(tmp_path / "data")) as client:
        open_document(client, uri, text)
        assert codes(await review(client, uri)) == [(1, "ruff:E711"), (2, "ruff:F821")]
        # Our editor plugins forward the other servers' diagnostics.
        client.protocol.notify(
            "hintwise/didPublishDiagnostics", {"uri": uri, "diagnostics": [theirs]}
        )
        assert codes(await review(client, uri)) == [(2, "ruff:F821")]
        # Any client: the diagnostics of a code-action request are other servers' too.
        pyright = types.Diagnostic(
            range=types.Range(
                start=types.Position(line=2, character=10), end=types.Position(line=2, character=17)
            ),
            message='"missing" is not defined',
            source="Pylance",
        )
        await client.text_document_code_action_async(
            types.CodeActionParams(
                text_document=types.TextDocumentIdentifier(uri=uri),
                range=pyright.range,
                context=types.CodeActionContext(diagnostics=[pyright]),
            )
        )
        assert codes(await review(client, uri)) == []
