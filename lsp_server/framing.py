"""Cutting the client's byte stream into messages, whatever the client sends.

pygls' reader trusts every `Content-Length`: a header that is not a number leaves it reading the
next message's header as part of a line, so no later message is ever answered; a huge one makes
it allocate (`MemoryError`) or overflow (`OverflowError`) and the server dies. Here a length must
be a number of at most `MAX_BODY` bytes; a bad one is logged and its message skipped up to the
next `Content-Length:` header, where reading starts again.

A body can also be shorter than it claims (a client that counted characters instead of bytes, or
was cut off): then the next message's header turns up inside the body. A valid JSON body can never
contain that header followed by a raw line break (JSON strings cannot hold a raw line break, and
the words are no JSON outside strings), so seeing it means the body ended early: it is dropped
and reading starts again at the header.

`Framer` only cuts bytes (no I/O, so it can be tested and fuzzed on its own); `serve` is the read
loop of the stdio server around it.
"""

from __future__ import annotations

import asyncio
import logging
import re
import threading
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

log = logging.getLogger("hintwise")

MAX_BODY = 64 * 1024 * 1024
"""Largest message body accepted (a 64 MB document is far beyond what hintwise works on)."""

MAX_HEADER_LINE = 8192
CHUNK = 65536

_LENGTH = re.compile(rb"content-length[ \t]*:", re.IGNORECASE)
# Where reading can start again: a whole numeric Content-Length line (see the module docstring).
_RESYNC = re.compile(rb"content-length[ \t]*:[ \t]*[0-9]+[ \t]*\r?\n", re.IGNORECASE)
_OTHER_HEADER = re.compile(rb"[A-Za-z0-9-]+[ \t]*:")
# A partial resync match at the end of a buffer is shorter than this: keep that many bytes.
_TAIL = 64


@dataclass(frozen=True)
class Dropped:
    """A message that was announced but could not be read (its bytes are gone)."""

    reason: str


class Framer:
    """Feed bytes in, get whole message bodies (bytes) and `Dropped` notes out, in order."""

    def __init__(self, max_body: int = MAX_BODY):
        self.max_body = max_body
        self._buffer = bytearray()
        self._length: int | None = None  # the body length of the header block being read
        self._in_headers = False  # a header block has started
        self._in_body = False
        self._skipping = False  # discarding bytes up to the next Content-Length header
        self._searched = 0  # bytes of a partial body already searched for a header

    def feed(self, data: bytes) -> list[bytes | Dropped]:
        self._buffer += data
        out: list[bytes | Dropped] = []
        while self._step(out):
            pass
        return out

    def _step(self, out: list[bytes | Dropped]) -> bool:
        """Make one step of progress on the buffer; False when more bytes are needed."""
        if self._skipping:
            return self._skip()
        if self._in_body:
            return self._body(out)
        return self._header_line(out)

    def _skip(self) -> bool:
        found = _RESYNC.search(self._buffer)
        if found is None:
            if len(self._buffer) > _TAIL:
                del self._buffer[:-_TAIL]
            return False
        log.info("reading again at a Content-Length header after %d skipped bytes", found.start())
        del self._buffer[: found.start()]
        self._skipping = False
        return True

    def _body(self, out: list[bytes | Dropped]) -> bool:
        length = self._length or 0
        if len(self._buffer) >= length:
            out.append(bytes(self._buffer[:length]))
            del self._buffer[:length]
            self._reset()
            return True
        early = _RESYNC.search(self._buffer, max(0, self._searched - _TAIL))
        self._searched = len(self._buffer)
        if early is None:
            return False
        out.append(
            Dropped(f"a body announced as {length} bytes ended after {early.start()}: dropped")
        )
        del self._buffer[: early.start()]
        self._reset()
        return True

    def _header_line(self, out: list[bytes | Dropped]) -> bool:
        end = self._buffer.find(b"\n")
        if end < 0:
            if len(self._buffer) > MAX_HEADER_LINE:
                self._skip_message(out, "a header line of over 8 KB")
                return True
            return False
        line = bytes(self._buffer[: end + 1])
        del self._buffer[: end + 1]
        if not line.strip():
            if self._in_headers:
                self._end_of_headers(out)
            return True
        found = _LENGTH.search(line)
        if found is not None:
            if found.start() > 0:
                log.warning("skipped %d bytes before a Content-Length header", found.start())
            self._in_headers = True
            self._read_length(line[found.end() :].strip(), out)
        elif _OTHER_HEADER.match(line):
            self._in_headers = True
        else:
            self._skip_message(out, f"not a header: {line[:80]!r}")
        return True

    def _read_length(self, value: bytes, out: list[bytes | Dropped]) -> None:
        # A digit count check first: int() of a 10**30-digit string is slow or refused.
        if not value.isdigit() or len(value) > 12 or int(value) > self.max_body:
            self._skip_message(out, f"Content-Length {value[:40]!r} is not 0 to {self.max_body}")
        else:
            self._length = int(value)

    def _end_of_headers(self, out: list[bytes | Dropped]) -> None:
        if self._length is None:
            self._skip_message(out, "a header block without Content-Length")
            return
        self._in_headers, self._in_body, self._searched = False, True, 0

    def _skip_message(self, out: list[bytes | Dropped], reason: str) -> None:
        out.append(Dropped(f"{reason}: message skipped"))
        self._reset()
        self._skipping = True

    def _reset(self) -> None:
        self._length, self._in_headers, self._in_body, self._searched = None, False, False, 0


async def serve(
    stop: threading.Event,
    read: Callable[[int], Awaitable[bytes]],
    receive: Callable[[bytes | Dropped], None],
) -> None:
    """Read the client's stream until it closes (or `stop` is set), handing each message body,
    or the note of a dropped one, to `receive` in order."""
    framer = Framer()
    while not stop.is_set():
        data = await read(CHUNK)
        if not data:
            return
        for item in framer.feed(data):
            if isinstance(item, Dropped):
                log.warning("client stream: %s", item.reason)
            receive(item)


def stdin_reader(source, loop: asyncio.AbstractEventLoop, executor) -> Callable:
    """`read(n)` for `serve`: what is available on a blocking binary stream, up to n bytes."""
    read = getattr(source, "read1", source.read)

    def reader(size: int) -> Awaitable[bytes]:
        return loop.run_in_executor(executor, read, size)

    return reader
