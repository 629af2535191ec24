"""What the editor tells us about a suggestion: accept (command), and our plugins' notifications
`hintwise/didShow`, `hintwise/didPartiallyAccept`, `hintwise/didReject`."""

from __future__ import annotations

import os

from pygls.exceptions import JsonRpcInvalidParams

from hintwise.lsp_server.clock import ManualClock
from hintwise.lsp_server.server import HintwiseServer

ACCEPT_COMMAND = "hintwise.accept"


def _field(params, *names: str):
    """A value from a notification's params, whatever the client's spelling."""
    for name in names:
        value = getattr(params, name, None)
        if value is None and isinstance(params, dict):
            value = params.get(name)
        if value is not None:
            return value
    return None


def register(server: HintwiseServer) -> None:
    @server.command(ACCEPT_COMMAND)
    def accept(ls: HintwiseServer, suggestion_id: str, *details) -> dict:
        """`[id]`, or `[id, {gate, pre}]` as attached to the items (the scores are ignored)."""
        if len(details) > 1 or not isinstance(suggestion_id, str):
            raise JsonRpcInvalidParams(
                f"invalid arguments: {ACCEPT_COMMAND} takes [id] or [id, {{gate}}]"
            )
        if ls.feedback is None or not ls.feedback.accepted(suggestion_id):
            return {"accepted": False, "reason": "unknown or expired suggestion id"}
        return {"accepted": True, "id": suggestion_id}

    @server.feature("hintwise/didShow")
    def did_show(ls: HintwiseServer, params) -> None:
        suggestion_id = _field(params, "id", "suggestionId")
        if ls.feedback is not None and isinstance(suggestion_id, str):
            ls.feedback.did_show(suggestion_id)

    @server.feature("hintwise/didPartiallyAccept")
    def did_partially_accept(ls: HintwiseServer, params) -> None:
        suggestion_id = _field(params, "id", "suggestionId")
        length = _field(params, "acceptedLength", "accepted_length", "acceptedChars")
        if ls.feedback is not None and isinstance(suggestion_id, str) and isinstance(length, int):
            ls.feedback.partially_accepted(suggestion_id, length)

    @server.feature("hintwise/didReject")
    def did_reject(ls: HintwiseServer, params) -> None:
        suggestion_id = _field(params, "id", "suggestionId")
        if ls.feedback is not None and isinstance(suggestion_id, str):
            ls.feedback.rejected(suggestion_id, "explicit")

    if os.environ.get("HINTWISE_TEST_CLOCK") == "1":

        @server.feature("hintwise/_test/advanceClock")
        def advance_clock(ls: HintwiseServer, params) -> dict:
            """Tests only (HINTWISE_TEST_CLOCK=1): move the manual clock and flush the store."""
            seconds = float(_field(params, "seconds") or 0)
            ran = ls.clock.advance(seconds) if isinstance(ls.clock, ManualClock) else 0
            ls.writer.flush(timeout=5.0)
            return {"timers": ran}
