"""A client's bad framing costs that one message, never the connection or the server.

Before: a `Content-Length` that is not a number left pygls reading the next header as part of a
line, so no later message was answered; 1099511627776 made it allocate a terabyte (MemoryError)
and 10**30 overflowed (OverflowError), each killing the server.
"""

from __future__ import annotations

import json
import queue
import random
import subprocess
import threading

import pytest
from conftest import hintwise_command
from inference_server import free_port
from raw_lsp import HEADER, RawServer, connect_when_listening, frame, nomodel_env, read_frames

from hintwise.lsp_server.framing import MAX_BODY, Dropped, Framer

pytestmark = pytest.mark.timeout(120)

STATUS = {"jsonrpc": "2.0", "id": 7, "method": "hintwise/status", "params": {}}
BODY = json.dumps(STATUS).encode()


def _feed(framer: Framer, data: bytes, chunk: int | None = None) -> list:
    if chunk is None:
        return framer.feed(data)
    return [item for i in range(0, len(data), chunk) for item in framer.feed(data[i : i + chunk])]


def bad_then_good(header_value: bytes, body: bytes = BODY) -> bytes:
    """One message with a bad Content-Length, then a well-framed one."""
    return HEADER + header_value + b"\r\n\r\n" + body + frame(STATUS)


# (Content-Length value, what the framer should hand on before the good message)
BAD_LENGTHS = [
    b"abc",  # not a number
    b"-5",  # negative
    b"1099511627776",  # a terabyte: pygls tried to allocate it
    b"1" + b"0" * 30,  # 10**30: pygls overflowed
    str(MAX_BODY + 1).encode(),  # just over the bound
    b"",  # empty
    b"1" * 5000,  # more digits than int() accepts
]


@pytest.mark.parametrize("value", BAD_LENGTHS, ids=lambda v: v[:16].decode() or "empty")
@pytest.mark.parametrize("chunk", [None, 1, 7])
def test_a_bad_length_skips_its_message_and_the_next_one_is_read(value, chunk):
    items = _feed(Framer(), bad_then_good(value), chunk)
    assert [item for item in items if isinstance(item, bytes)] == [BODY]
    assert isinstance(items[0], Dropped)


@pytest.mark.parametrize("chunk", [None, 1, 5])
def test_a_body_shorter_than_announced_ends_at_the_next_header(chunk):
    items = _feed(Framer(), bad_then_good(b"1000"), chunk)
    assert isinstance(items[0], Dropped)
    assert items[1:] == [BODY]


def test_a_body_longer_than_announced_costs_that_message_only():
    items = Framer().feed(bad_then_good(b"10"))
    assert items[0] == BODY[:10]  # not JSON: answered as a parse error by the protocol
    assert items[-1] == BODY


def test_junk_between_messages_and_other_headers_are_tolerated():
    typed = b"Content-Type: application/vscode-jsonrpc; charset=utf-8\r\n" + frame(STATUS)
    data = b"\r\n" + frame(STATUS) + b"garbage" + typed + b"\n\n" + frame(STATUS)
    items = Framer().feed(data)
    assert [item for item in items if isinstance(item, bytes)] == [BODY] * 3


def test_a_long_line_without_header_is_not_kept_in_memory():
    framer = Framer()
    for _ in range(100):
        framer.feed(b"x" * 65536)
    assert len(framer._buffer) < 10_000
    assert framer.feed(frame(STATUS)) == [BODY]


def test_random_streams_of_good_and_bad_messages_keep_every_good_one_after_the_bad():
    """Seeded: a good message after a bad one is always read, however the bytes are cut."""
    rng = random.Random(15)
    for _ in range(300):
        bad = bad_then_good(rng.choice([*BAD_LENGTHS, b"1000", b"3"]))[: -len(frame(STATUS))]
        data = frame(STATUS) + bad + frame(STATUS)
        cuts = sorted(rng.sample(range(1, len(data)), 5))
        items: list = []
        framer = Framer()
        for start, end in zip([0, *cuts], [*cuts, len(data)], strict=True):
            items += framer.feed(data[start:end])
        bodies = [item for item in items if isinstance(item, bytes) and item == BODY]
        assert len(bodies) == 2, (bad, items)


def test_the_server_keeps_serving_after_each_bad_content_length(tmp_path):
    server = RawServer(nomodel_env(tmp_path), tmp_path)
    bad = [b"abc", b"-5", b"1000", b"1099511627776", b"1" + b"0" * 30]
    try:
        server.initialize()
        for number, value in enumerate(bad):
            body = json.dumps({**STATUS, "id": f"lost-{number}"}).encode()
            server.write(HEADER + value + b"\r\n\r\n" + body)
            assert server.request(number, "hintwise/status", {})["result"]["version"], value
        server.drain()
        assert server.process.poll() is None
        assert [answer["error"]["code"] for answer in server.answers(None)] == [-32700] * len(bad)
        assert server.popups() == []
    finally:
        assert server.close() == 0
    log = server.log_file.read_text()
    assert "MemoryError" not in log and "OverflowError" not in log
    assert log.count("client stream:") == len(bad)


def test_over_tcp_too_a_bad_length_costs_one_message(tmp_path):
    port = free_port()
    command = [*hintwise_command(), "serve", "--tcp", f"127.0.0.1:{port}"]
    server = subprocess.Popen(command, stderr=subprocess.DEVNULL, env=nomodel_env(tmp_path))
    try:
        with connect_when_listening(port) as connection:
            answers: queue.Queue = queue.Queue()
            reader = threading.Thread(
                target=read_frames, args=(connection.makefile("rb"), answers), daemon=True
            )
            reader.start()
            connection.sendall(HEADER + b"1" + b"0" * 30 + b"\r\n\r\n" + BODY)
            connection.sendall(frame(STATUS))
            first, second = answers.get(timeout=30), answers.get(timeout=30)
        assert first["id"] is None and first["error"]["code"] == -32700
        # The next message is read and answered (before `initialize`: "not initialized").
        assert second["id"] == 7 and second["error"]["code"] == -32002
    finally:
        server.kill()
        server.wait()
