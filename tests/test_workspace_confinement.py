"""A client's command may make the server read only workspace files (issue 15): `hintwise.explain`
with a `file:` URI outside the workspace used to read that file and echo it into the answer and
the feedback store."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest
from lsp_session import session, wait_ready
from lsprotocol import types

pytestmark = [pytest.mark.model, pytest.mark.timeout(180)]

SECRET = "secret-host-name-4711"


async def _execute(client, command: str, argument: object) -> object:
    return await client.workspace_execute_command_async(
        types.ExecuteCommandParams(command=command, arguments=[argument])
    )


async def test_explain_reads_only_workspace_files(clock_env, tmp_path: Path):
    workspace = tmp_path / "ws"
    workspace.mkdir()
    inside = workspace / "mean.py"
    inside.write_text("def mean(values):\n    return sum(values) / len(values)\n")
    outside = tmp_path / "hostname.py"
    outside.write_text(f"name = '{SECRET}'\n")
    async with session(clock_env, root=workspace) as client:
        await wait_ready(client)
        error = None
        try:
            await _execute(
                client,
                "hintwise.explain",
                {"uri": outside.as_uri(), "line": 0, "message": "NameError", "show": False},
            )
        except Exception as raised:  # a JSON-RPC error answer
            error = str(raised)
        frames = (
            f'Traceback (most recent call last):\n  File "{outside}", line 1, in <module>\n'
            f"    name\nNameError: name\n"
        )
        traceback_error = None
        try:
            await _execute(client, "hintwise.explainTraceback", {"text": frames, "show": False})
        except Exception as raised:
            traceback_error = str(raised)
        answer = await _execute(
            client,
            "hintwise.explain",
            {"uri": inside.as_uri(), "line": 1, "message": "ZeroDivisionError", "show": False},
        )
    assert error is not None and "workspace" in error and SECRET not in error
    assert traceback_error is not None and SECRET not in traceback_error
    assert "mean" in answer["markdown"]
    with sqlite3.connect(Path(clock_env["HINTWISE_DATA_DIR"]) / "telemetry.db") as db:
        stored = " ".join(str(row) for row in db.execute("select * from suggestions"))
    assert SECRET not in stored
