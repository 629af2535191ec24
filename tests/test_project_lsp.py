"""End to end over stdio with the real model: another open file's definitions reach the prompt,
and typing in the file keeps that part of the prompt (and the cache behind it) unchanged."""

from __future__ import annotations

import asyncio

import pytest
from lsp_session import inline, insert, open_document, session, status, wait_ready

pytestmark = [pytest.mark.model, pytest.mark.timeout(300)]

WIDGETS = '''"""Widgets."""


def frobnicate_widgets(count: int, *, colour: str) -> list:
    """Make `count` widgets of one colour."""
    widgets = []
    for number in range(count):
        widgets.append((number, colour))
    widgets.sort()
    widgets.reverse()
    widgets.reverse()
    return widgets
'''

MAIN = '''"""The program."""

from .widgets import frobnicate_widgets


def build():
    result = \n    return result
'''
LINE, COLUMN = 6, len("    result = ")


async def prewarmed(client, count: int, timeout: float = 120) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while (await status(client)).completions.prewarmed < count:
        assert asyncio.get_running_loop().time() < deadline, "the pre-warm jobs did not run"
        await asyncio.sleep(0.2)


async def last_prompt(client) -> tuple[str, dict]:
    current = await client.protocol.send_request_async("hintwise/status", {"with_prompt": True})
    last = current.completions.last
    return last.prompt_text, last


async def test_a_definition_from_another_open_file_reaches_the_prompt(server_env, tmp_path):
    package = tmp_path / "pkg"
    package.mkdir()
    (package / "__init__.py").write_text("")
    for name, text in (("widgets.py", WIDGETS), ("main.py", MAIN)):
        (package / name).write_text(text)
    main_uri = (package / "main.py").as_uri()
    async with session(server_env, {"completion.project_tokens": 512}) as client:
        open_document(client, (package / "widgets.py").as_uri(), WIDGETS)
        open_document(client, main_uri, MAIN)
        await wait_ready(client)
        await prewarmed(client, 2)  # both files' (the other file's would evict this one's)
        await inline(client, main_uri, LINE, COLUMN)
        prompt, last = await last_prompt(client)
        start = prompt.index('"""The program."""')
        preamble = prompt[:start]
        assert "# path: pkg/widgets.py\n" in preamble
        assert "def frobnicate_widgets(count: int, *, colour: str) -> list:" in preamble
        assert last.tokens.preamble > 0

        # Typing in the file: the model runs again, on the same preamble, mostly from cache.
        insert(client, main_uri, 2, LINE, COLUMN, "[")
        await inline(client, main_uri, LINE, COLUMN + 1)
        typed_prompt, typed = await last_prompt(client)
        assert not typed.from_cache
        assert typed_prompt.startswith(preamble)
        assert typed.tokens.reused >= last.tokens.preamble
        assert typed.tokens.evaluated <= 4
