"""Seeded protocol fuzzing of a real `hintwise serve` (tests/protocol_fuzz.py makes the messages).

What must hold, whatever a client sends: the server does not die, every request with an id is
answered exactly once (and each message whose id or body cannot be read, once with id null), no
error pops up for the user, and at the end it still answers a completion and hintwise/status.
HINTWISE_FUZZ_MESSAGES and HINTWISE_FUZZ_SEED run it longer or with another seed.
"""

from __future__ import annotations

import collections
import json
import os
import time

import pytest
from protocol_fuzz import Fuzzer, encode, expected_answers
from raw_lsp import RawServer, frame, nomodel_env

MESSAGES = int(os.environ.get("HINTWISE_FUZZ_MESSAGES", "2400"))
SEED = int(os.environ.get("HINTWISE_FUZZ_SEED", "15"))
CHUNK = 50

pytestmark = pytest.mark.timeout(max(150, MESSAGES // 10))


def _run(server: RawServer, fuzzer: Fuzzer, count: int) -> tuple[collections.Counter, int]:
    """Send `count` messages in chunks; the ids owed an answer, and the null-id answers owed."""
    owed: collections.Counter = collections.Counter()
    nulls = 0
    for start in range(0, count, CHUNK):
        chunk = [fuzzer.message() for _ in range(min(CHUNK, count - start))]
        server.write(b"".join(frame(encode(message)) for message in chunk))
        for message in chunk:
            ids, null = expected_answers(message)
            owed.update(json.dumps(i) for i in ids)
            nulls += null
        server.drain(quiet=0.01)
        assert server.process.poll() is None, f"died in messages {start}..{start + CHUNK}"
    return owed, nulls


def _answered(server: RawServer) -> collections.Counter:
    """Answers per id, as JSON text (1 and "1" are different ids; true is no id)."""
    return collections.Counter(
        json.dumps(m["id"])
        for m in server.messages
        if "method" not in m and m.get("id") is not None
    )


def test_fuzzed_messages_are_all_answered_once_and_nothing_pops_up(tmp_path):
    started = time.monotonic()
    server = RawServer(nomodel_env(tmp_path), tmp_path)
    try:
        server.initialize()
        server.drain(quiet=1.0)
        server.messages.clear()
        owed, nulls = _run(server, Fuzzer(SEED, with_settings=True), MESSAGES)

        deadline = time.monotonic() + 60
        while not owed.keys() <= _answered(server).keys() and time.monotonic() < deadline:
            server.drain(quiet=0.5)
        server.drain(quiet=1.0)
        answered = _answered(server)
        missing = [key for key in owed if key not in answered]
        twice = [key for key in owed if answered[key] > 1]
        assert missing == [] and twice == [], (missing[:10], twice[:10])
        assert len(server.answers(None)) == nulls
        assert server.popups() == []

        # Still serving: a clean document, a completion and the status.
        uri = "file:///fuzz/clean.py"
        item = {"uri": uri, "languageId": "python", "version": 1, "text": "def f(x):\n    "}
        server.send({"jsonrpc": "2.0", "method": "textDocument/didOpen",
                     "params": {"textDocument": item}})  # fmt: skip
        params = {"textDocument": {"uri": uri}, "position": {"line": 1, "character": 4},
                  "context": {"triggerKind": 1}}  # fmt: skip
        assert "items" in server.request("end-1", "textDocument/inlineCompletion", params)["result"]
        status = server.request("end-2", "hintwise/status", {})["result"]
        assert status["telemetry"]["ok"], status["telemetry"]
    finally:
        assert server.close() == 0
    print(f"{MESSAGES} messages, seed {SEED}: {sum(owed.values())} requests answered, "
          f"{nulls} null-id answers, {time.monotonic() - started:.1f} s")  # fmt: skip
