"""What the editor tells us about a suggestion: accept (the `hintwise.accept` command on every
item), and our plugins' notifications `hintwise/didShow`, `hintwise/didPartiallyAccept` and
`hintwise/didReject`."""

from __future__ import annotations

import os
from typing import Any

from pygls.exceptions import JsonRpcInvalidParams

from hintwise.lsp_server.clock import ManualClock
from hintwise.lsp_server.features import protocol
from hintwise.lsp_server.server import HintwiseServer


async def accept(ls: HintwiseServer, suggestion_id: str, *details: Any) -> dict:
    """`[id]`, or `[id, {gate, pre}]` as attached to the items (the scores are ignored)."""
    if len(details) > 1 or not isinstance(suggestion_id, str):
        raise JsonRpcInvalidParams(
            f"invalid arguments: {protocol.ACCEPT} takes [id] or [id, {{gate}}]"
        )
    if not ls.feedback.completions.accepted(suggestion_id):
        if ls.feedback.completions.outcome(suggestion_id) == "rejected":
            return {"accepted": False, "reason": "the suggestion was rejected explicitly"}
        return {"accepted": False, "reason": "unknown or expired suggestion id"}
    await ls.persisted()
    return {"accepted": True, "id": suggestion_id}


def did_show(ls: HintwiseServer, params: Any) -> None:
    suggestion_id = protocol.value_of(params, "id", "suggestionId")
    if isinstance(suggestion_id, str):
        ls.feedback.completions.did_show(suggestion_id)


def did_partially_accept(ls: HintwiseServer, params: Any) -> None:
    suggestion_id = protocol.value_of(params, "id", "suggestionId")
    length = protocol.value_of(params, "acceptedLength", "accepted_length", "acceptedChars")
    if isinstance(suggestion_id, str) and isinstance(length, int):
        ls.feedback.completions.partially_accepted(suggestion_id, length)


def did_reject(ls: HintwiseServer, params: Any) -> None:
    suggestion_id = protocol.value_of(params, "id", "suggestionId")
    if isinstance(suggestion_id, str):
        ls.feedback.completions.rejected(suggestion_id, "explicit")


def advance_clock(ls: HintwiseServer, params: Any) -> dict:
    """Tests only (HINTWISE_TEST_CLOCK=1): move the manual clock and flush the store."""
    seconds = float(protocol.value_of(params, "seconds") or 0)
    ran = ls.clock.advance(seconds) if isinstance(ls.clock, ManualClock) else 0
    ls.feedback.flush(timeout=5.0)
    return {"timers": ran}


def register(server: HintwiseServer) -> None:
    server.command(protocol.ACCEPT)(accept)
    server.feature(protocol.DID_SHOW)(did_show)
    server.feature(protocol.DID_PARTIALLY_ACCEPT)(did_partially_accept)
    server.feature(protocol.DID_REJECT)(did_reject)
    if os.environ.get("HINTWISE_TEST_CLOCK") == "1":
        server.feature(protocol.ADVANCE_CLOCK)(advance_clock)
