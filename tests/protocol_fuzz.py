"""A seeded generator of LSP messages as a broken or hostile client sends them: valid messages of
every kind hintwise handles, then mutated (wrong types, missing fields, nulls, huge and negative
numbers, lone surrogates, unknown methods, notifications with ids, requests without ids, ids of
the wrong type, batches, bodies that are not JSON).

`expected_answers` says, for what was sent, which answers JSON-RPC requires: one per request
with a usable id, and one with id null per message whose id (or whole body) could not be read.
"""

from __future__ import annotations

import copy
import json
import random
from typing import Any

URIS = ["file:///fuzz/a.py", "file:///fuzz/b.py", "file:///fuzz/c%20d.py"]
TEXT = "import os\n\n\ndef area(width, height):\n    return width * \n\n# a comment\nx = [1, 2\n"
UNKNOWN_METHODS = ["no/such", "textDocument/noSuch", "$/noSuch", "hintwise/noSuch", ""]
HUGE = [-1, -(2**31), 2**31, 2**53, 2**64, 10**30, 1.5, 1e308, float("inf"), float("nan")]
WEIRD_IDS: list[Any] = [None, 1.5, True, False, {}, [], {"id": 1}]
SURROGATES = ["\ud800", "\udfff", "a\ud83dz", "\udc00\ud800"]


def _position(rng: random.Random) -> dict:
    return {"line": rng.randrange(0, 10), "character": rng.randrange(0, 12)}


def _range(rng: random.Random) -> dict:
    start, end = sorted([_position(rng), _position(rng)], key=lambda p: (p["line"], p["character"]))
    return {"start": start, "end": end}


def _command(rng: random.Random, uri: str) -> dict:
    name, arguments = rng.choice(
        [
            ("hintwise.accept", ["no-such-suggestion"]),
            ("hintwise.stats", [{}]),
            ("hintwise.review", [{"uri": uri}]),
            ("hintwise.explain", [{"uri": uri, "line": 4, "message": "SyntaxError"}]),
            ("hintwise.explainTraceback", [{"text": "Traceback:\n  File 'a.py'\nValueError"}]),
            ("hintwise.rateExplanation", [{"id": "e1", "helpful": True}]),
            ("hintwise.dismissComment", [{"id": "c1"}]),
            ("hintwise.applyFix", [{"id": "f1"}]),
            ("hintwise.exportFeedback", [{"format": "dpo", "path": "export/out.jsonl"}]),
        ]
    )
    return {"command": name, "arguments": arguments}


def _params(method: str, rng: random.Random) -> Any:  # noqa: C901 - one case per method
    uri = rng.choice(URIS)
    document = {"uri": uri}
    if method == "textDocument/didOpen":
        item = {"uri": uri, "languageId": "python", "version": 1, "text": TEXT}
        return {"textDocument": item}
    if method == "textDocument/didChange":
        change = {"range": _range(rng), "text": rng.choice(["", "x", "\n", "    return 1\n"])}
        if rng.random() < 0.2:
            change = {"text": TEXT}
        version = {"uri": uri, "version": rng.randrange(2, 1000)}
        return {"textDocument": version, "contentChanges": [change]}
    if method == "textDocument/inlineCompletion":
        context = {"triggerKind": rng.choice([1, 2])}
        return {"textDocument": document, "position": _position(rng), "context": context}
    if method in ("textDocument/completion", "textDocument/hover"):
        return {"textDocument": document, "position": _position(rng)}
    if method == "textDocument/codeAction":
        diagnostic = {"range": _range(rng), "message": "undefined name 'y'", "source": "pyflakes"}
        context = {"diagnostics": [diagnostic]}
        return {"textDocument": document, "range": _range(rng), "context": context}
    if method == "workspace/executeCommand":
        return _command(rng, uri)
    if method in ("hintwise/didMoveCursor",):
        return {"textDocument": document, "position": _position(rng)}
    if method == "hintwise/didPublishDiagnostics":
        return {"uri": uri, "diagnostics": [{"range": _range(rng), "message": "E1"}]}
    if method == "hintwise/didPartiallyAccept":
        return {"id": "no-such-suggestion", "acceptedLength": rng.randrange(0, 9)}
    if method == "$/cancelRequest":
        return {"id": rng.randrange(1, 3000)}
    if method == "workspace/didChangeConfiguration":
        return {"settings": {"hintwise": {"completion": {"max_lines": 4}}}}
    if method in ("hintwise/didShow", "hintwise/didReject"):
        return {"id": "no-such-suggestion"}
    if method in ("textDocument/didClose", "textDocument/didSave"):
        return {"textDocument": document}
    return {}


REQUESTS = [
    "textDocument/inlineCompletion",
    "textDocument/completion",
    "textDocument/hover",
    "textDocument/codeAction",
    "workspace/executeCommand",
    "hintwise/status",
]
NOTIFICATIONS = [
    "textDocument/didOpen",
    "textDocument/didChange",
    "textDocument/didChange",
    "textDocument/didClose",
    "textDocument/didSave",
    "hintwise/didShow",
    "hintwise/didReject",
    "hintwise/didPartiallyAccept",
    "hintwise/didMoveCursor",
    "hintwise/didPublishDiagnostics",
    "$/cancelRequest",
]


def _paths(node: Any, path: tuple = ()) -> list[tuple]:
    """Every place in a JSON value (dict keys and list indices), the root excluded."""
    if not isinstance(node, dict | list):
        return []
    found = []
    for key, child in node.items() if isinstance(node, dict) else enumerate(node):
        found.append((*path, key))
        found += _paths(child, (*path, key))
    return found


def _get(node: Any, path: tuple) -> Any:
    for key in path:
        node = node[key]
    return node


class Fuzzer:
    """Messages from one seed; ids are unique (fresh integers or strings) unless made unusable."""

    def __init__(self, seed: int, with_settings: bool = False):
        self.rng = random.Random(seed)
        self.next_id = 1
        self.notifications = NOTIFICATIONS + (
            ["workspace/didChangeConfiguration"] if with_settings else []
        )

    def fresh_id(self) -> int | str:
        self.next_id += 1
        return self.next_id if self.rng.random() < 0.8 else f"r{self.next_id}"

    def valid(self) -> dict:
        rng = self.rng
        if rng.random() < 0.45:
            method = rng.choice(REQUESTS)
            return {"jsonrpc": "2.0", "id": self.fresh_id(), "method": method,
                    "params": _params(method, rng)}  # fmt: skip
        method = rng.choice(self.notifications)
        return {"jsonrpc": "2.0", "method": method, "params": _params(method, rng)}

    def message(self) -> Any:
        """A valid message (a quarter of them) or a mutated one; bytes for a broken body."""
        rng = self.rng
        message: Any = self.valid()
        if rng.random() < 0.25:
            return message
        for _ in range(rng.choice([1, 1, 2, 3])):
            message = self.mutate(message)
        if rng.random() < 0.03:
            text = json.dumps(message)
            return text[: rng.randrange(0, max(1, len(text)))].encode()
        return message

    def mutate(self, message: Any) -> Any:  # noqa: C901 - one case per kind of mistake
        rng = self.rng
        kind = rng.randrange(12)
        if kind == 0 and rng.random() < 0.3:
            return [message, *(self.valid() for _ in range(rng.randrange(0, 3)))]
        if not isinstance(message, dict):
            return message
        message = copy.deepcopy(message)
        # The id is changed by kinds 7 and 8 only, which keep usable ids unique.
        places = [path for path in _paths(message) if path != ("id",)]
        if kind == 1 and places:  # a field left out
            path = rng.choice(places)
            del _get(message, path[:-1])[path[-1]]
        elif kind == 2 and places:  # a null
            path = rng.choice(places)
            _get(message, path[:-1])[path[-1]] = None
        elif kind == 3:  # a number far out of range
            numbers = [p for p in places if isinstance(_get(message, p), int | float)]
            if numbers:
                path = rng.choice(numbers)
                _get(message, path[:-1])[path[-1]] = rng.choice(HUGE)
        elif kind == 4:  # a lone surrogate in a string
            strings = [p for p in places if isinstance(_get(message, p), str)]
            if strings:
                path = rng.choice(strings)
                value = _get(message, path)
                cut = rng.randrange(0, len(value) + 1)
                _get(message, path[:-1])[path[-1]] = (
                    value[:cut] + rng.choice(SURROGATES) + value[cut:]
                )
        elif kind == 5 and places:  # the wrong type
            path = rng.choice(places)
            _get(message, path[:-1])[path[-1]] = rng.choice(["x", 7, [], {}, True, [1, "a"]])
        elif kind == 6:
            message["method"] = rng.choice(UNKNOWN_METHODS)
        elif kind == 7:  # a notification with an id, a request without one
            if "id" in message:
                del message["id"]
            else:
                message["id"] = self.fresh_id()
        elif kind == 8:
            message["id"] = rng.choice(WEIRD_IDS)
        elif kind == 9:
            message["params"] = rng.choice(["text", 3, [], [1, 2], None, True])
        elif kind == 10:
            message["jsonrpc"] = rng.choice(["1.0", 2, None, "2.0 "])
        elif kind == 11:
            message.pop("params", None)
        return message


def valid_id(value: Any) -> bool:
    return isinstance(value, int | str) and not isinstance(value, bool)


def expected_answers(message: Any) -> tuple[list, int]:
    """(ids that must each be answered once, number of answers with id null) for one message."""
    if isinstance(message, bytes):
        return [], 1
    if isinstance(message, list):
        ids = [item.get("id") for item in message if isinstance(item, dict)]
        ids = [msg_id for msg_id in ids if valid_id(msg_id)]
        return ids, 0 if ids else 1
    if not isinstance(message, dict):
        return [], 1
    if "method" not in message or "id" not in message:
        return [], 0
    return ([message["id"]], 0) if valid_id(message["id"]) else ([], 1)


def encode(message: Any) -> bytes:
    """The body as the client sends it (lone surrogates escaped, as JSON allows)."""
    return message if isinstance(message, bytes) else json.dumps(message).encode()
