"""A client's protocol mistake gets an error answer to its request, a line in the log, and no
message for the user.

Before: a request whose params did not fit its type (position.line -1, no context, hover without
a position, codeAction with `params: null`) was never answered, so the client waited forever, and
each one popped "Error in server: Invalid Params" in the editor; a body that was not JSON got no
-32700 answer either.
"""

from __future__ import annotations

import asyncio

import pytest
from pygls.exceptions import (
    FeatureNotificationError,
    FeatureRequestError,
    JsonRpcException,
    JsonRpcInternalError,
    JsonRpcInvalidParams,
)
from raw_lsp import RawServer, frame, nomodel_env

from hintwise.lsp_server import config
from hintwise.lsp_server.server import HintwiseServer

pytestmark = pytest.mark.timeout(120)

URI = "file:///work/example/a.py"
DOC = {"uri": URI}


def inline(position: dict | None = None, context: dict | None = None, drop: str = "") -> dict:
    params = {
        "textDocument": DOC,
        "position": position or {"line": 0, "character": 0},
        "context": context or {"triggerKind": 1},
    }
    params.pop(drop, None)
    return params


def request(msg_id, method: str, params) -> dict:
    return {"jsonrpc": "2.0", "id": msg_id, "method": method, "params": params}


INLINE = "textDocument/inlineCompletion"
# (request, the error code of its answer; None = a result)
REQUESTS = [
    (request(1, INLINE, inline({"line": -1, "character": 0})), -32602),
    (request(2, INLINE, inline({"line": 2**31, "character": 0})), -32602),
    (request(3, INLINE, inline(drop="context")), -32602),
    (request(4, INLINE, inline(context={"triggerKind": 3})), -32602),
    (request(5, "textDocument/hover", {"textDocument": DOC}), -32602),
    (request(6, "textDocument/codeAction", None), -32602),
    (request("seven", "textDocument/completion", "a string"), -32602),
    (request(8, "no/suchMethod", {}), -32601),
    (request(9, "textDocument/didClose", {"textDocument": DOC}), -32600),  # a notification
    ({"jsonrpc": "1.0", "id": 10, "method": "hintwise/status", "params": {}}, -32600),
    ({"jsonrpc": "2.0", "id": 11, "method": "hintwise/status"}, None),  # params may be left out
    (request(12, "workspace/executeCommand", {"command": "hintwise.accept"}), -32602),
    (request(13, "workspace/executeCommand", {"arguments": []}), -32602),
]
# Requests whose id cannot be used: answered with id null.
BAD_IDS = [request(None, "hintwise/status", {}), request(1.5, "hintwise/status", {})]
BAD_IDS += [request(True, "hintwise/status", {}), request({"a": 1}, "hintwise/status", {})]
NOTIFICATIONS = [
    {"jsonrpc": "2.0", "method": "textDocument/didOpen", "params": {"textDocument": DOC}},
    {"jsonrpc": "2.0", "method": "textDocument/didChange", "params": None},
    {"jsonrpc": "2.0", "method": "$/cancelRequest", "params": {}},
    {"jsonrpc": "2.0", "method": "textDocument/didSave"},
    {"jsonrpc": "2.0", "method": "textDocument/hover", "params": {"textDocument": DOC}},
    {"jsonrpc": "2.0", "method": "initialized", "params": 3},
]


@pytest.fixture
def server(tmp_path):
    server = RawServer(nomodel_env(tmp_path), tmp_path)
    server.initialize()
    server.send(
        {
            "jsonrpc": "2.0",
            "method": "textDocument/didOpen",
            "params": {
                "textDocument": {"uri": URI, "languageId": "python", "version": 1, "text": "x\n"}
            },
        }
    )
    yield server
    server.close()


def test_every_request_is_answered_with_its_error_and_nothing_is_shown(server):
    for message, _ in REQUESTS:
        server.send(message)
    for message in NOTIFICATIONS + BAD_IDS:
        server.send(message)
    server.write(frame(b'{"jsonrpc": "2.0", "id": 99, "method": '))  # not JSON
    server.send([request(20, "hintwise/status", {}), NOTIFICATIONS[0]])  # a batch
    server.send(5)  # JSON, but no message

    server.request(21, "hintwise/status", {})
    server.drain()
    unanswered = [m["id"] for m, _ in REQUESTS if not server.answers(m["id"])]
    assert unanswered == []
    for message, code in REQUESTS:
        (answer,) = server.answers(message["id"])
        assert answer.get("error", {}).get("code") == code, (message, answer)
    assert [a["error"]["code"] for a in server.answers(20)] == [-32600]
    nulls = sorted(a["error"]["code"] for a in server.answers(None))
    assert nulls == [-32700] + [-32600] * (len(BAD_IDS) + 1)
    assert server.popups() == []
    assert server.popups(kind=2) == []
    log = server.log_file.read_text()
    assert "Position.line should be in range" in log  # the detail is in the log
    assert "Error in server" not in log


def test_a_request_after_shutdown_is_answered(server):
    server.request("bye", "shutdown", None)
    answer = server.request(30, "hintwise/status", {})
    assert answer["error"]["code"] == -32600


async def test_a_failing_notification_is_shown_once_and_a_client_mistake_never(tmp_path):
    """pygls showed "Error in server: ..." for every failure outside a request: one per bad
    message, 1,356 in one fuzz run. Now a handler's failure shows once per distinct text."""
    settings, _ = config.apply(config.Settings(), {"data_dir": str(tmp_path)})
    server = HintwiseServer(settings)
    server.loop = asyncio.get_running_loop()
    shown: list[str] = []
    server.window_show_message = lambda params: shown.append(params.message)  # type: ignore
    for _ in range(3):
        server.report_server_error(JsonRpcInternalError("boom"), FeatureNotificationError)
        server.report_server_error(JsonRpcInvalidParams(), JsonRpcException)
        server.report_server_error(JsonRpcInvalidParams(), FeatureRequestError)
    assert shown == ["hintwise: internal error: boom"]
    server.stop()


def test_a_request_before_initialize_is_refused_and_the_session_then_works(tmp_path):
    """LSP: before `initialize`, requests get -32002 and notifications (but exit) are dropped."""
    server = RawServer(nomodel_env(tmp_path), tmp_path)
    try:
        early = server.request(1, "hintwise/status", {})
        assert early["error"]["code"] == -32002
        server.send(
            {"jsonrpc": "2.0", "method": "textDocument/didOpen", "params": {"textDocument": DOC}}
        )
        server.initialize()
        assert "result" in server.request(2, "hintwise/status", {})
        assert server.popups() == []
    finally:
        server.close()
