"""pygls' protocol, changed where a client's mistake or pygls' own copy of documents would hurt.

Documents: pygls splits lines with `str.splitlines`, which also breaks at form feeds and U+2028
(LSP does not), so its copy goes wrong on such files; it also re-walks the whole document in Python
on every keystroke. hintwise keeps its own copy (code/documents.py); the overrides at the end hand
document notifications straight to hintwise's handlers.

Client mistakes: pygls raises out of its read loop when a message does not fit its method's type
(`position.line` -1, a missing field, `params: null`), so the request is never answered and the
user sees "Error in server: Invalid Params". Here every message is checked first (`_structure`),
and one that is not a valid request or notification becomes a `Refused`: a request gets its error
answer (Invalid Request, Invalid Params, with what was wrong), a notification is only logged, and
nothing is shown to the user: it is the client's bug, not something the user can act on.

Memory: pygls 2.1 files the future of every notification whose handler is a generator (its
didOpen/didChange/didClose, below), a coroutine or a thread function in `_request_futures` under a
made-up id, and removes entries only when it answers a request: one Future with its lock and
condition (about 0.9 kB) per keystroke, forever. `_execute_handler` drops the finished ones.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from typing import Any

import cattrs
from cattrs.v import format_exception
from lsprotocol import types
from pygls.protocol import LanguageServerProtocol, lsp_method
from pygls.protocol.json_rpc import (
    JsonRPCNotification,
    JsonRPCRequestMessage,
    JsonRPCResponseMessage,
)

from hintwise.lsp_server.framing import Dropped

log = logging.getLogger("hintwise")

PARSE_ERROR = -32700
INVALID_REQUEST = -32600
INVALID_PARAMS = -32602
SERVER_NOT_INITIALIZED = -32002


@dataclass(frozen=True)
class Refused:
    """A message that is not a valid request or notification (see the module docstring)."""

    reply: bool  # it carried an id: the client waits for an answer
    id: int | str | None  # the id to answer (None when the id itself is unusable)
    code: int
    message: str
    method: Any = None


def _valid_id(value: Any) -> bool:
    return isinstance(value, int | str) and not isinstance(value, bool)


def _is_response(data: dict) -> bool:
    return "id" in data and "method" not in data


def _is_notification(method: str) -> bool:
    """A method LSP defines as a notification (no answer: it must not carry an id)."""
    entry = types.METHOD_TO_TYPES.get(method)
    return entry is not None and entry[1] is None and not _has_field(entry[0], "id")


def _is_request(method: str) -> bool:
    entry = types.METHOD_TO_TYPES.get(method)
    return entry is not None and _has_field(entry[0], "id")


def _has_field(cls: type, name: str) -> bool:
    return any(field.name == name for field in getattr(cls, "__attrs_attrs__", ()))


def _id_of(message: Any) -> Any:
    """The id of a batch element, decoded (a dict) or structured (an lsprotocol message)."""
    if isinstance(message, dict):
        return message.get("id")
    return getattr(message, "id", None)


def _problem(data: dict) -> tuple[int, str] | None:
    """What makes `data` no request or notification at all, before its params are looked at."""
    if data.get("jsonrpc") != "2.0":
        return INVALID_REQUEST, 'Invalid Request: "jsonrpc" must be "2.0"'
    method = data.get("method")
    if not isinstance(method, str):
        return INVALID_REQUEST, 'Invalid Request: "method" must be a string'
    if "id" in data and not _valid_id(data["id"]):
        return INVALID_REQUEST, 'Invalid Request: "id" must be an integer or a string'
    if "id" in data and _is_notification(method):
        return INVALID_REQUEST, f"Invalid Request: {method} is a notification and takes no id"
    if "id" not in data and _is_request(method):
        return INVALID_REQUEST, f"Invalid Request: {method} is a request and needs an id"
    if data.get("params") is not None and not isinstance(data["params"], dict | list):
        return INVALID_PARAMS, 'Invalid Params: "params" must be an object or an array'
    return None


def _refused(data: dict, code: int, message: str) -> Refused:
    msg_id = data.get("id")
    usable = msg_id if _valid_id(msg_id) else None
    return Refused("id" in data, usable, code, message, data.get("method"))


def _describe(error: Exception) -> str:
    """cattrs' account of what did not fit (`... @ $.params.position`), in one line."""
    if isinstance(error, cattrs.ClassValidationError | cattrs.IterableValidationError):
        return "; ".join(cattrs.transform_error(error, format_exception=_one_error)[:5])
    return f"{type(error).__name__}: {error}"


def _one_error(error: BaseException, expected: type | None) -> str:
    # lsprotocol's range validators say which bound was broken; cattrs' default says only
    # "invalid value".
    if type(error) is ValueError:
        return str(error)
    return format_exception(error, expected)


class HintwiseProtocol(LanguageServerProtocol):
    """Client mistakes answered, never shown; documents to hintwise (see the module docstring)."""

    def receive_body(self, body: bytes | Dropped) -> None:
        """One message body from the stream (framing.serve), or the note of a dropped one."""
        if isinstance(body, Dropped):
            self._answer_error(None, PARSE_ERROR, f"Parse error: {body.reason}")
            return
        try:
            data = json.loads(body)
        except (ValueError, RecursionError) as error:
            log.warning("a message that is not JSON (%s): %.200r", error, body)
            self._answer_error(None, PARSE_ERROR, f"Parse error: {error}")
            return
        try:
            self.handle_message(self._structure(data) if isinstance(data, dict) else data)
        except Exception:  # a bug of ours: the message is lost, the server keeps reading
            log.exception("could not handle a message: %.200r", body)

    def structure_message(self, data: dict[str, Any]):
        """pygls' object hook (its own readers, e.g. websockets, call it for every JSON object,
        nested ones included): objects without "jsonrpc" are left as they are, as pygls does."""
        return self._structure(data) if "jsonrpc" in data else data

    def _structure(self, data: dict[str, Any]):
        """The typed message, or a `Refused` for one that is no valid request or notification.
        JSON-RPC lets `params` be left out: that is read as `null`."""
        if _is_response(data):
            return self._structure_response(data)
        if (problem := _problem(data)) is not None:
            return _refused(data, *problem)
        generic = JsonRPCRequestMessage if "id" in data else JsonRPCNotification
        kind = self.get_message_type(data["method"]) or generic
        try:  # pygls' structure_message without its traceback in the log for each mistake
            message = self._converter.structure({"params": None, **data}, kind)
        except Exception as error:
            return _refused(data, INVALID_PARAMS, f"Invalid Params: {_describe(error)}")
        if isinstance(message, types.ExecuteCommandRequest) and message.params.arguments is None:
            # pygls checks a command's arity only for a list of arguments: without one, a
            # command that takes arguments fails with an internal error instead.
            message.params.arguments = []
        return message

    def _structure_response(self, data: dict[str, Any]):
        """A client's answer to our request. One that does not fit its type (`null` for
        workspace/configuration) reaches the waiting caller as `null`, instead of failing in
        pygls, which leaves the caller waiting and shows the user "Invalid Params"."""
        msg_id = data["id"]
        expected = self._result_types.pop(msg_id, None) if _valid_id(msg_id) else None
        kind = types.ResponseErrorMessage if "error" in data else expected
        try:
            return self._converter.structure(data, kind or JsonRPCResponseMessage)
        except Exception:
            log.warning("an answer of the client does not fit %s: %.200r", kind, data)
            usable = msg_id if _valid_id(msg_id) else ""
            return JsonRPCResponseMessage(id=usable, jsonrpc=self.VERSION, result=None)

    def handle_message(self, message: Any) -> None:
        """pygls' dispatch, after refusing what is no request or notification (batches
        included: LSP has none) and answering requests that come after `shutdown`."""
        if isinstance(message, list):
            self._refuse_batch(message)
        elif isinstance(message, Refused):
            self._refuse(message)
        elif isinstance(message, dict):  # from pygls' readers: an object without "jsonrpc"
            self.handle_message(self._structure(message))
        elif not hasattr(message, "jsonrpc"):  # a JSON value that is no object
            self._refuse(Refused(True, None, INVALID_REQUEST, "Invalid Request: not an object"))
        elif self._shutdown and getattr(message, "method", "exit") != "exit":
            if hasattr(message, "id"):
                self._answer_error(message.id, INVALID_REQUEST, "the server is shutting down")
        elif not self._initialize_seen and not self._before_initialize(message):
            return
        else:
            super().handle_message(message)

    _initialize_seen = False

    def _before_initialize(self, message: Any) -> bool:
        """Whether a message may go on before `initialize` (LSP: requests get -32002, other
        notifications than `exit` are dropped; answers to our requests pass)."""
        method = getattr(message, "method", None)
        if method is None or method == "exit":
            return True
        if method == "initialize":
            self._initialize_seen = True
            return True
        log.warning("%r before initialize: refused", method)
        if hasattr(message, "id"):
            self._answer_error(message.id, SERVER_NOT_INITIALIZED, "Server not initialized")
        return False

    def _refuse_batch(self, items: list) -> None:
        ids = [msg_id for item in items if _valid_id(msg_id := _id_of(item))]
        log.warning("refused a batch of %d messages (LSP has no batches)", len(items))
        for msg_id in ids or [None]:
            self._answer_error(msg_id, INVALID_REQUEST, "Invalid Request: LSP has no batches")

    def _refuse(self, refused: Refused) -> None:
        log.warning("refused %r (id %r): %s", refused.method, refused.id, refused.message)
        if refused.reply:
            self._answer_error(refused.id, refused.code, refused.message)

    def _answer_error(self, msg_id: int | str | None, code: int, message: str) -> None:
        # A dict, not lsprotocol's ResponseErrorMessage, which leaves out an id of None.
        error = {"code": code, "message": message}
        self._send_data({"jsonrpc": self.VERSION, "id": msg_id, "error": error})

    _sweep_at = 64

    def _execute_handler(self, msg_id, handler, callback, args=None, kwargs=None):
        """pygls' own, then the finished futures are dropped whenever their number doubled (see
        the module docstring). Not in a done callback: pygls' shutdown cancels the futures while
        it iterates over them, and a concurrent future runs its callbacks right there."""
        super()._execute_handler(msg_id, handler, callback, args, kwargs)
        futures = self._request_futures
        if len(futures) > self._sweep_at:
            for key, future in list(futures.items()):  # a pool thread may pop meanwhile
                if future.done():
                    futures.pop(key, None)
            self._sweep_at = max(64, 2 * len(futures))

    def _handler(self, method: str):
        return self.fm.features.get(method)

    @lsp_method(types.TEXT_DOCUMENT_DID_OPEN)
    def lsp_text_document__did_open(self, params: types.DidOpenTextDocumentParams):
        if (handler := self._handler(types.TEXT_DOCUMENT_DID_OPEN)) is not None:
            yield handler, (params,), None

    @lsp_method(types.TEXT_DOCUMENT_DID_CHANGE)
    def lsp_text_document__did_change(self, params: types.DidChangeTextDocumentParams):
        if (handler := self._handler(types.TEXT_DOCUMENT_DID_CHANGE)) is not None:
            yield handler, (params,), None

    @lsp_method(types.TEXT_DOCUMENT_DID_CLOSE)
    def lsp_text_document__did_close(self, params: types.DidCloseTextDocumentParams):
        if (handler := self._handler(types.TEXT_DOCUMENT_DID_CLOSE)) is not None:
            yield handler, (params,), None
