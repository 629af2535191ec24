"""Pre-warming end to end: `hintwise serve` with the real model evaluates the prompt before the
user asks, so the first request only evaluates what is new.

The server is told where the cursor rests by `hintwise/didMoveCursor` (our editor plugins send
it); the manual clock stands in for the user's pause.
"""

from __future__ import annotations

import asyncio
import sysconfig
from pathlib import Path

import pytest
from lsp_session import EXAMPLE, advance, inline, open_document, session, status, wait_ready

pytestmark = [pytest.mark.model, pytest.mark.timeout(240)]

DIFFLIB = (Path(sysconfig.get_paths()["stdlib"]) / "difflib.py").read_text()


async def prewarmed(client, count: int, timeout: float = 90) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while (await status(client)).completions.prewarmed < count:
        assert asyncio.get_running_loop().time() < deadline, "pre-warm did not finish"
        await asyncio.sleep(0.1)


def cursor(client, uri: str, line: int, character: int) -> None:
    client.protocol.notify(
        "hintwise/didMoveCursor",
        {"textDocument": {"uri": uri}, "position": {"line": line, "character": character}},
    )


def deep_place() -> tuple[str, int, int]:
    """difflib.py with a `return` statement deep inside cut after its indentation, as if the
    user were about to type it; the cursor there."""
    lines = DIFFLIB.splitlines(keepends=True)
    for number in range(1200, len(lines)):
        if lines[number].startswith("        return "):
            lines[number] = " " * 8 + "\n"
            return "".join(lines), number, 8
    raise AssertionError("no deep return in difflib.py")


async def test_opening_a_short_file_warms_every_position(clock_env):
    async with session(clock_env) as client:
        await wait_ready(client)
        uri = "file:///work/example/primes.py"
        open_document(client, uri, EXAMPLE)
        await prewarmed(client, 1)
        result = await inline(client, uri, 14, 12)
        assert result.items
        tokens = (await status(client)).completions.last.tokens
        assert tokens.prompt > 50
        assert tokens.evaluated <= 8, tokens


async def test_a_resting_cursor_warms_a_deep_position_of_a_long_file(clock_env):
    text, line, character = deep_place()
    async with session(clock_env) as client:
        await wait_ready(client)
        uri = "file:///work/example/difflib.py"
        open_document(client, uri, text)
        await prewarmed(client, 1)  # the top of the file, on open
        cursor(client, uri, line - 40, 0)  # scrolling past: superseded before it rests
        cursor(client, uri, line, character)
        await advance(client, 0.5)
        assert (await status(client)).completions.prewarmed == 1  # not rested long enough
        await advance(client, 0.6)
        await prewarmed(client, 2)
        await inline(client, uri, line, character)
        current = await status(client)
        assert current.completions.prewarmed == 2  # one warm-up for the resting place only
        tokens = current.completions.last.tokens
        assert tokens.prompt > 500  # a full window, far from the top
        assert tokens.evaluated <= 8, tokens


async def test_cursor_reports_that_make_no_sense_are_ignored(clock_env):
    async with session(clock_env) as client:
        await wait_ready(client)
        uri = "file:///work/example/primes.py"
        open_document(client, uri, EXAMPLE)
        for params in (
            {},
            {"textDocument": {"uri": uri}},
            {"textDocument": {"uri": uri}, "position": {"line": "x", "character": 0}},
            {
                "textDocument": {"uri": "file:///never/opened.py"},
                "position": {"line": 0, "character": 0},
            },
            {"textDocument": {"uri": uri}, "position": {"line": 10**9, "character": -5}},
            [1, 2, 3],
        ):
            client.protocol.notify("hintwise/didMoveCursor", params)
        await advance(client, 2)
        assert (await status(client)).state == "ready"
        assert (await inline(client, uri, 14, 12)).items
