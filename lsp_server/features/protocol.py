"""What hintwise adds to LSP: its command and notification names, and how their arguments are
read (a client's mistake is an InvalidParams answer, never a crash)."""

from __future__ import annotations

from typing import Any

from pygls.exceptions import JsonRpcInvalidParams

# Commands (workspace/executeCommand); each takes one JSON object unless said otherwise.
ACCEPT = "hintwise.accept"  # [id] or [id, {gate, pre}]: the client accepted a suggestion
REVIEW = "hintwise.review"  # {uri}: review the whole document now
APPLY_FIX = "hintwise.applyFix"  # {id}: a review comment's or an explanation's fix
DISMISS = "hintwise.dismissComment"  # {id}
EXPLAIN = "hintwise.explain"  # {uri, diagnostic} or {uri, line, message}
EXPLAIN_TRACEBACK = "hintwise.explainTraceback"  # {text}
RATE = "hintwise.rateExplanation"  # {id, helpful}
STATS = "hintwise.stats"  # {chart?}
EXPORT = "hintwise.exportFeedback"  # {format, path}

# Requests and notifications of hintwise's own editor plugins.
STATUS = "hintwise/status"
DID_SHOW = "hintwise/didShow"
DID_PARTIALLY_ACCEPT = "hintwise/didPartiallyAccept"
DID_REJECT = "hintwise/didReject"
DID_MOVE_CURSOR = "hintwise/didMoveCursor"
DID_PUBLISH_DIAGNOSTICS = "hintwise/didPublishDiagnostics"
ADVANCE_CLOCK = "hintwise/_test/advanceClock"  # tests only (HINTWISE_TEST_CLOCK=1)

SOURCE = "hintwise"  # the `source` of hintwise's diagnostics


def command_object(args: tuple, *required: str) -> dict:
    """The one JSON object a hintwise command takes, with its required keys checked."""
    value = args[0] if len(args) == 1 else None
    if not isinstance(value, dict):
        raise JsonRpcInvalidParams("expected one JSON object as the command's argument")
    missing = [key for key in required if key not in value]
    if missing:
        raise JsonRpcInvalidParams(f"missing {', '.join(missing)} in the command's argument")
    return value


def options(args: tuple) -> dict:
    """A command's optional JSON object; a missing or malformed one means the defaults."""
    return args[0] if args and isinstance(args[0], dict) else {}


def value_of(params: Any, *names: str) -> Any:
    """A value from a notification's params, whatever the client's spelling."""
    for name in names:
        value = getattr(params, name, None)
        if value is None and isinstance(params, dict):
            value = params.get(name)
        if value is not None:
            return value
    return None


def cursor_place(params: Any) -> tuple[str, int, int] | None:
    """(uri, line, character) from `{"textDocument": {"uri"}, "position": {"line",
    "character"}}`, or None when the params do not say that (bad input is ignored)."""
    uri = value_of(value_of(params, "textDocument"), "uri") or value_of(
        value_of(params, "text_document"), "uri"
    )
    position = value_of(params, "position")
    line, character = value_of(position, "line"), value_of(position, "character")
    if not isinstance(uri, str) or not isinstance(line, int) or not isinstance(character, int):
        return None
    return uri, max(0, line), max(0, character)


def foreign_lines(items: Any) -> list[int]:
    """0-based start lines of diagnostics from other sources (dicts or lsprotocol objects)."""
    lines = []
    for item in items:
        if value_of(item, "source") == SOURCE:
            continue
        line = value_of(value_of(value_of(item, "range"), "start"), "line")
        if isinstance(line, int):
            lines.append(line)
    return lines
