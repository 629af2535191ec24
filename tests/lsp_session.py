"""Start `hintwise serve` under a pytest-lsp client, with hand-built client capabilities
(pytest-lsp's bundled editor snapshots declare no inline completion)."""

from __future__ import annotations

import asyncio
import contextlib
from pathlib import Path
from typing import Any

from conftest import hintwise_command
from lsprotocol import types
from pytest_lsp import LanguageClient
from pytest_lsp.client import make_test_lsp_client

from hintwise.lsp_server.config import flatten

CAPABILITIES = types.ClientCapabilities(
    general=types.GeneralClientCapabilities(position_encodings=[types.PositionEncodingKind.Utf16]),
    text_document=types.TextDocumentClientCapabilities(
        synchronization=types.TextDocumentSyncClientCapabilities(),
        inline_completion=types.InlineCompletionClientCapabilities(),
        completion=types.CompletionClientCapabilities(
            completion_item=types.ClientCompletionItemOptions(snippet_support=False)
        ),
    ),
    workspace=types.WorkspaceClientCapabilities(configuration=True),
    window=types.WindowClientCapabilities(work_done_progress=False),
)


@contextlib.asynccontextmanager
async def session(
    env: dict[str, str],
    settings: dict[str, Any] | None = None,
    configuration: dict[str, Any] | None = None,
    root: Path | None = None,
):
    """A running server with an initialized client (of the workspace `root`, if given); shut
    down cleanly afterwards."""
    # Generous time limits: a shared 2-core machine can be slow, and these tests check behaviour.
    settings = {"completion.time_limit_ms": 30000, **flatten(settings or {})}
    client: LanguageClient = make_test_lsp_client()
    if configuration is not None:
        client.set_configuration(configuration, section="hintwise")
    await client.start_io(*hintwise_command(), "serve", env=env)
    try:
        await client.initialize_session(
            types.InitializeParams(
                capabilities=CAPABILITIES,
                initialization_options=settings,
                root_uri=root.as_uri() if root else None,
            )
        )
        yield client
    finally:
        with contextlib.suppress(Exception):
            await asyncio.wait_for(client.shutdown_session(), 20)
        await client.stop()


def open_document(client: LanguageClient, uri: str, text: str, language: str = "python") -> None:
    client.text_document_did_open(
        types.DidOpenTextDocumentParams(
            text_document=types.TextDocumentItem(
                uri=uri, language_id=language, version=1, text=text
            )
        )
    )


def insert(client: LanguageClient, uri: str, version: int, line: int, character: int, text: str):
    here = types.Position(line=line, character=character)
    client.text_document_did_change(
        types.DidChangeTextDocumentParams(
            text_document=types.VersionedTextDocumentIdentifier(uri=uri, version=version),
            content_changes=[
                types.TextDocumentContentChangePartial(
                    range=types.Range(start=here, end=here), text=text
                )
            ],
        )
    )


async def inline(
    client: LanguageClient, uri: str, line: int, character: int, invoked: bool = True
) -> types.InlineCompletionList:
    kind = (
        types.InlineCompletionTriggerKind.Invoked
        if invoked
        else types.InlineCompletionTriggerKind.Automatic
    )
    return await client.text_document_inline_completion_async(
        types.InlineCompletionParams(
            text_document=types.TextDocumentIdentifier(uri=uri),
            position=types.Position(line=line, character=character),
            context=types.InlineCompletionContext(trigger_kind=kind),
        )
    )


async def status(client: LanguageClient) -> Any:
    return await client.protocol.send_request_async("hintwise/status", {})


async def advance(client: LanguageClient, seconds: float) -> None:
    """Move a manual-clock server's time forward (HINTWISE_TEST_CLOCK=1) and flush its store."""
    await client.protocol.send_request_async("hintwise/_test/advanceClock", {"seconds": seconds})


async def wait_ready(client: LanguageClient, timeout: float = 60) -> Any:
    """Poll hintwise/status until the model has loaded and prepared (or failed)."""
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        current = await status(client)
        if current.state == "failed" or (current.state == "ready" and current.prepared):
            return current
        if asyncio.get_running_loop().time() > deadline:
            raise TimeoutError(f"model still {current.state} after {timeout} s")
        await asyncio.sleep(0.1)


EXAMPLE = (Path(__file__).parent.parent / "examples" / "primes.py").read_text()
