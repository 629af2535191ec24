"""What a long session must not accumulate (issue 15: RSS grew 6.9-11 MB per 1,000 requests in
a 15-minute typing soak).

Found with tracemalloc snapshots of a soaked server (bench/soak.py): pygls kept one Future, with
its lock and condition, per notification (every keystroke's didChange) in `_request_futures`; and
the store's secret redaction cached 20,000 lines (about 12 MB), one or two more per keystroke.
"""

from __future__ import annotations

import asyncio
import gc
import random
import tracemalloc
import uuid
from pathlib import Path

from hintwise.lsp_server import config
from hintwise.lsp_server.features import create_server
from hintwise.telemetry import Event, Request, Suggestion, Writer
from hintwise.telemetry.writer import CACHE_KIB

EXAMPLE = (Path(__file__).resolve().parent.parent / "examples" / "primes.py").read_text()

URI = "file:///work/example/a.py"


def notification(method: str, params: dict) -> dict:
    return {"jsonrpc": "2.0", "method": method, "params": params}


async def test_notifications_leave_no_futures_behind(tmp_path):
    settings, _ = config.apply(
        config.Settings(), {"data_dir": str(tmp_path), "telemetry": {"enabled": False}}
    )
    server = create_server(settings)
    server.loop = asyncio.get_running_loop()
    protocol = server.protocol
    protocol._initialize_seen = True  # a session after `initialize` (not run here: no model)
    opened = {"uri": URI, "languageId": "python", "version": 1, "text": "x = 1\n"}
    protocol.handle_message(
        protocol._structure(notification("textDocument/didOpen", {"textDocument": opened}))
    )
    for version in range(2, 1002):
        change = {"range": _range(0, 5, 0, 5), "text": "0"}
        params = {"textDocument": {"uri": URI, "version": version}, "contentChanges": [change]}
        protocol.handle_message(protocol._structure(notification("textDocument/didChange", params)))
        protocol.handle_message(protocol._structure(notification("hintwise/didShow", {"id": "x"})))
    await asyncio.sleep(0.05)  # done callbacks of asyncio futures run on the loop
    assert server.documents.get(URI).text.startswith("x = 1" + "0" * 1000)
    assert len(protocol._request_futures) <= 130, len(protocol._request_futures)  # was 1,001
    server.stop()


def _range(a: int, b: int, c: int, d: int) -> dict:
    return {"start": {"line": a, "character": b}, "end": {"line": c, "character": d}}


def test_the_writer_holds_no_more_python_memory_after_thousands_of_suggestions(tmp_path):
    """Rows like a typing user's (each prompt with a few lines never seen before) through the real
    writer, privacy and SQLite: Python memory after 600 suggestions and after 1,800 is the same,
    give or take. Before, the line cache grew by ~0.6 kB a line: ~3 MB over these 1,200."""
    rng = random.Random(0)
    original = EXAMPLE.splitlines()
    lines = list(original)
    writer = Writer.start(tmp_path / "telemetry.db")
    tracemalloc.start()
    try:
        used = []
        for index in range(1800):
            at = rng.randrange(5, len(lines) - 5)
            for spot in range(at - 4, at + 1):  # what the user typed since the last prompt
                lines[spot] = original[spot] + " # " + uuid.uuid4().hex[:8]
            prompt = "\n".join(lines[max(0, at - 30) : at + 1])
            _record(writer, uuid.uuid4().hex, prompt, lines[at], accepted=index % 2 == 0)
            if index % 100 == 99:
                assert writer.flush(timeout=60)
            if index + 1 in (600, 1800):
                gc.collect()
                used.append(tracemalloc.get_traced_memory()[0])
    finally:
        tracemalloc.stop()
        writer.close()
    assert writer.stats().written == writer.stats().enqueued
    assert used[1] - used[0] < 600_000, used  # was ~3,000,000


def _record(writer: Writer, suggestion_id: str, prompt: str, line: str, accepted: bool) -> None:
    writer.record(
        Suggestion(
            id=suggestion_id,
            kind="completion",
            language="python",
            file="/work/example/a.py",
            prompt=prompt,
            prefix=prompt,
            text=" x = 1",
            features={"reason": "ok", "node_kinds": ["module", "expression_statement"]},
            token_logprobs=[-0.1, -0.2],
        )
    )
    writer.record(Event(suggestion_id=suggestion_id, kind="shown"))
    writer.record(Event(suggestion_id=suggestion_id, kind="accepted" if accepted else "rejected"))
    if not accepted:
        writer.record(Event(suggestion_id=suggestion_id, kind="replacement", text=line))
    writer.record(Request(decision="generated", language="python", suggestion_id=suggestion_id))


def test_the_writers_page_cache_has_a_small_bound(tmp_path):
    """SQLite's default (2 MB) filled up during a soak and looked like growth."""
    found: list[int] = []
    writer = Writer.start(
        tmp_path / "telemetry.db",
        on_ready=lambda conn: found.append(conn.execute("PRAGMA cache_size").fetchone()[0]),
    )
    assert writer.flush(timeout=30)
    writer.close()
    assert found == [-CACHE_KIB] and CACHE_KIB <= 1024
