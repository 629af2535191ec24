"""On-save review and explanations end to end: `hintwise serve` over stdio with the real model."""

from __future__ import annotations

import asyncio
import io
import json
import sqlite3
import statistics
import time
from pathlib import Path

import pytest
from lsp_session import EXAMPLE, inline, insert, open_document, session, status, wait_ready
from lsprotocol import types

pytestmark = pytest.mark.model

BUGGY = """def name_length(user):
    if user is None:
        return len(user.name)
    return 0
def largest(values):
    best = values[0]
    for v in values:
        if v < best:
            best = v
    return best


def mean(values):
    total = 0
    for v in values:
        total += v
    return total / (len(values) - 1)


def last(items):
    return items[len(items)]


def clamp(x, low, high):
    if x < low:
        return high
    if x > high:
        return low
    return x


def main():
    print(mean([1, 2, 3]) + last([1]) + clamp(5, 0, 3))
"""


async def expect_diagnostics(client) -> asyncio.Task:
    """A task that completes with the next publishDiagnostics (registered before returning)."""
    task = asyncio.ensure_future(
        client.wait_for_notification(types.TEXT_DOCUMENT_PUBLISH_DIAGNOSTICS)
    )
    await asyncio.sleep(0)
    return task


def save(client, uri: str) -> None:
    client.text_document_did_save(
        types.DidSaveTextDocumentParams(text_document=types.TextDocumentIdentifier(uri=uri))
    )


def decode_code_actions(client) -> None:
    """lsprotocol 2025's client decodes a CodeAction that carries a command as a bare Command
    (NOTES.md); tell the client's converter how to tell them apart."""
    converter = client.protocol._converter

    def structure(obj, _):
        is_action = isinstance(obj, dict) and not isinstance(obj.get("command"), str)
        return converter.structure(obj, types.CodeAction if is_action else types.Command)

    converter.register_structure_hook(types.Command | types.CodeAction, structure)


def run_of(action) -> types.Command:
    return action if isinstance(action, types.Command) else action.command


async def command(client, name: str, argument) -> object:
    return await client.workspace_execute_command_async(
        types.ExecuteCommandParams(command=name, arguments=[argument])
    )


async def timed_completion(client, uri: str, version: int, line: int, column: int) -> float:
    """Type one character at the end of `line` and time the inline completion there."""
    insert(client, uri, version, line, column, " ")
    started = time.perf_counter()
    await inline(client, uri, line, column + 1)
    elapsed = time.perf_counter() - started
    last = (await status(client)).completions.last
    print("completion", round(elapsed * 1000), last and last.reason, last and last.tokens)
    return elapsed


async def test_completion_keeps_its_latency_during_a_review(clock_env, tmp_path: Path):
    buggy, other = tmp_path / "stats.py", tmp_path / "primes.py"
    buggy.write_text(BUGGY)
    other.write_text(EXAMPLE)
    async with session(clock_env) as client:
        await wait_ready(client)
        open_document(client, buggy.as_uri(), BUGGY)
        open_document(client, other.as_uri(), EXAMPLE)
        lines = EXAMPLE.split("\n")
        line = next(i for i, text in enumerate(lines) if text.strip().startswith("return"))
        column, version = len(lines[line]), 1
        for _ in range(2):  # warm the completion prompt
            await inline(client, other.as_uri(), line, column)
        baseline = []
        for _ in range(5):
            version += 1
            baseline.append(await timed_completion(client, other.as_uri(), version, line, column))
            column += 1
        published = await expect_diagnostics(client)
        save(client, buggy.as_uri())
        await asyncio.sleep(1.5)  # the review is evaluating its prompt or generating
        during = []
        for _ in range(5):
            version += 1
            during.append(await timed_completion(client, other.as_uri(), version, line, column))
            column += 1
            assert not published.done(), "the review finished too early to overlap"
        params = await asyncio.wait_for(published, 240)
        assert params.uri == buggy.as_uri()
        assert all(d.source == "hintwise" for d in params.diagnostics)
        base, busy = statistics.median(baseline), statistics.median(during)
        print(f"completion p50 alone {base * 1000:.0f} ms, during a review {busy * 1000:.0f} ms")
        assert busy <= base * 1.5 + 0.15, (baseline, during)


async def test_review_command_actions_and_feedback(clock_env, tmp_path: Path):
    buggy = tmp_path / "stats.py"
    buggy.write_text(BUGGY)
    uri = buggy.as_uri()
    async with session(clock_env) as client:
        await wait_ready(client)
        decode_code_actions(client)
        edits: list[str] = []

        @client.feature(types.WORKSPACE_APPLY_EDIT)
        def apply_edit(params: types.ApplyWorkspaceEditParams):
            edits.extend(edit.new_text for edit in params.edit.changes[uri])
            return types.ApplyWorkspaceEditResult(applied=True)

        open_document(client, uri, BUGGY)
        published = await expect_diagnostics(client)
        answer = await command(client, "hintwise.review", {"uri": uri})
        params = await asyncio.wait_for(published, 30)
        assert answer["comments"] == len(params.diagnostics)
        lines = BUGGY.split("\n")
        for item in params.diagnostics:
            assert item.source == "hintwise"
            assert lines[item.range.start.line].strip(), "a comment on a blank line"

        # Explain this error, on a diagnostic from another server.
        foreign = types.Diagnostic(
            range=types.Range(
                start=types.Position(line=20, character=11),
                end=types.Position(line=20, character=28),
            ),
            message="IndexError: list index out of range",
            source="pyright",
        )
        actions = await client.text_document_code_action_async(
            types.CodeActionParams(
                text_document=types.TextDocumentIdentifier(uri=uri),
                range=foreign.range,
                context=types.CodeActionContext(diagnostics=[foreign, *params.diagnostics[:1]]),
            )
        )
        titles = [action.title for action in actions]
        assert "Explain this error (hintwise)" in titles
        if params.diagnostics:
            assert "Dismiss" in titles and "Explain in detail" in titles
        explain_action = next(a for a in actions if a.title.startswith("Explain this error"))
        argument = dict(run_of(explain_action).arguments[0])
        argument["show"] = False
        explanation = await command(client, "hintwise.explain", argument)
        assert explanation["markdown"].startswith("**pyright: IndexError")
        assert explanation["culprit"]["uri"] == uri
        assert 19 <= explanation["culprit"]["line"] <= 20  # inside `last`, the function shown
        assert "error: pyright: IndexError: list index out of range" in explanation["facts"]

        # Hover on the explained line shows the explanation.
        hover = await client.text_document_hover_async(
            types.HoverParams(
                text_document=types.TextDocumentIdentifier(uri=uri),
                position=types.Position(line=20, character=12),
            )
        )
        assert hover is not None and hover.contents.value == explanation["markdown"]

        # A traceback, shown by the server itself (this client has no showDocument: showMessage).
        traceback = (
            "Traceback (most recent call last):\n"
            f'  File "{buggy}", line 21, in last\n'
            "    return items[len(items)]\n"
            "IndexError: list index out of range\n"
        )
        shown_before = len(client.messages)
        answer = await command(client, "hintwise.explainTraceback", {"text": traceback})
        assert answer["culprit"]["uri"] == uri and 19 <= answer["culprit"]["line"] <= 20
        assert "in function `last` (lines 20-21)" in answer["facts"]
        for _ in range(50):
            if len(client.messages) > shown_before:
                break
            await asyncio.sleep(0.1)
        assert client.messages[-1].message == answer["markdown"]

        rated = await command(
            client, "hintwise.rateExplanation", {"id": explanation["id"], "helpful": True}
        )
        assert rated["rated"]
        unknown = await command(
            client, "hintwise.rateExplanation", {"id": "nope", "helpful": False}
        )
        assert not unknown["rated"]

        # Apply fix: the model finds `user is not None` far likelier in name_length.
        even = next(d for d in params.diagnostics if d.range.start.line == 1)
        assert even.data["fix"] and even.severity == types.DiagnosticSeverity.Warning
        fix_actions = await client.text_document_code_action_async(
            types.CodeActionParams(
                text_document=types.TextDocumentIdentifier(uri=uri),
                range=even.range,
                context=types.CodeActionContext(diagnostics=[even]),
            )
        )
        apply = next(a for a in fix_actions if a.title == "Apply fix")
        applied = await command(client, run_of(apply).command, run_of(apply).arguments[0])
        assert applied == {"applied": True, "id": even.data["id"]}
        assert "    if user is not None:\n" in edits[-1]
        fixed_id = even.data["id"]

        others = [d for d in params.diagnostics if d.data["id"] != fixed_id]
        dismissed_id = None
        if others:
            dismissed_id = others[0].data["id"]
            republished = await expect_diagnostics(client)
            result = await command(client, "hintwise.dismissComment", {"id": dismissed_id})
            assert result["dismissed"]
            after = await asyncio.wait_for(republished, 10)
            assert dismissed_id not in [d.data["id"] for d in after.diagnostics]

        # Bad input: wrong shapes get a clear JSON-RPC error, the server keeps serving.
        for name, bad in [
            ("hintwise.explain", {"uri": uri}),
            ("hintwise.explain", "not an object"),
            ("hintwise.review", {"uri": "file:///nowhere/missing.py"}),
            ("hintwise.explainTraceback", {"text": "no frames here"}),
            ("hintwise.explainTraceback", {"text": 'File "/elsewhere/x.py", line 3, in f\nE'}),
            ("hintwise.rateExplanation", {"id": explanation["id"], "helpful": "yes"}),
        ]:
            with pytest.raises(Exception) as error:
                await command(client, name, bad)
            assert "hintwise" not in str(error.value).lower() or str(error.value)
        await command(client, "hintwise.dismissComment", {"id": "unknown"})

    # Every outcome is in the feedback store.
    with sqlite3.connect(Path(clock_env["HINTWISE_DATA_DIR"]) / "telemetry.db") as db:
        kinds = dict(db.execute("SELECT id, kind FROM suggestions").fetchall())
        events = db.execute("SELECT suggestion_id, kind, value FROM events").fetchall()
    assert kinds[explanation["id"]] == "explanation"
    assert (explanation["id"], "rated", 1.0) in events
    assert (explanation["id"], "accepted", None) in events
    assert kinds[fixed_id] == "review"
    assert (fixed_id, "applied", None) in events and (fixed_id, "accepted", None) in events
    if dismissed_id:
        assert kinds[dismissed_id] == "review"
        assert (dismissed_id, "dismissed", None) in events
        assert (dismissed_id, "rejected", None) in events
    detail = json.loads(
        sqlite3.connect(Path(clock_env["HINTWISE_DATA_DIR"]) / "telemetry.db")
        .execute("SELECT detail FROM suggestions WHERE id = ?", (explanation["id"],))
        .fetchone()[0]
    )
    assert detail["facts"] == explanation["facts"]
    # ... and in the preference export (KTO rows: the prompt the model saw → its answer).
    from hintwise.telemetry.export import export

    out = io.StringIO()
    export(Path(clock_env["HINTWISE_DATA_DIR"]) / "telemetry.db", "kto", out)
    rows = [json.loads(line) for line in out.getvalue().splitlines()]
    labelled = {row["completion"]: row["label"] for row in rows}
    assert labelled[explanation["markdown"]] is True
    assert any(row["prompt"].startswith("You review python code") for row in rows)


async def test_review_is_cancelled_when_the_file_changes(clock_env, tmp_path: Path):
    buggy = tmp_path / "stats.py"
    buggy.write_text(BUGGY)
    uri = buggy.as_uri()
    async with session(clock_env) as client:
        await wait_ready(client)
        open_document(client, uri, BUGGY)
        save(client, uri)
        await asyncio.sleep(1.0)
        insert(client, uri, 2, 0, 0, "# edited\n")  # cancels the review under way
        buggy.unlink()  # deleted between the save and the review: the open buffer is reviewed
        published = await expect_diagnostics(client)
        save(client, uri)
        params = await asyncio.wait_for(published, 240)
        # The first publication is the second review's, for the edited version.
        assert params.version == 2

        # A huge file: a clear answer, no crash, and the server still serves.
        huge = tmp_path / "huge.py"
        open_document(client, huge.as_uri(), "x = 1\n" * 200_000)
        answer = await command(client, "hintwise.review", {"uri": huge.as_uri()})
        assert answer["comments"] == 0 and "too large" in answer["error"]
        # An unparseable file still gets its functions reviewed.
        broken = tmp_path / "broken.py"
        open_document(client, broken.as_uri(), "def f(:\n    return )\n\ndef g(a):\n    return a\n")
        answer = await command(client, "hintwise.review", {"uri": broken.as_uri()})
        assert "error" not in answer
        assert (await status(client)).state == "ready"
