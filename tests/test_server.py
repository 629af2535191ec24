"""End to end over stdio: `hintwise serve` with the real bundled model, driven by pytest-lsp."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import time

import pytest
from conftest import hintwise_command
from lsp_session import EXAMPLE, inline, insert, open_document, session, status, wait_ready
from lsprotocol import types
from raw_lsp import connect_when_listening

pytestmark = [pytest.mark.model, pytest.mark.timeout(180)]

URI = "file:///work/example/primes.py"
BODY_LINE, BODY_COLUMN = 14, 12  # the blank line inside `if n % divisor == 0:`


async def test_inline_completion_in_a_function_body(server_env):
    async with session(server_env) as client:
        open_document(client, URI, EXAMPLE)
        result = await inline(client, URI, BODY_LINE, BODY_COLUMN)
        # Invoked: the suggestion first, then up to two distinct runner-ups (next/previous).
        assert 1 <= len(result.items) <= 3
        item = result.items[0]
        assert item.insert_text.strip() == "return False"
        assert item.range.start == types.Position(line=BODY_LINE, character=BODY_COLUMN)
        assert item.command.command == "hintwise.accept"
        accepted = await client.workspace_execute_command_async(
            types.ExecuteCommandParams(command="hintwise.accept", arguments=item.command.arguments)
        )
        assert accepted["accepted"] is True
        assert (await status(client)).suggestions.accepted == 1


async def test_an_invoked_request_offers_distinct_alternatives_each_with_its_id(server_env):
    async with session(server_env) as client:
        open_document(client, URI, EXAMPLE)
        automatic = await inline(client, URI, BODY_LINE, BODY_COLUMN, invoked=False)
        assert len(automatic.items) == 1  # alternatives only when the user asks
        result = await inline(client, URI, BODY_LINE, BODY_COLUMN)
        texts = [item.insert_text.strip() for item in result.items]
        ids = [item.command.arguments[0] for item in result.items]
        assert 2 <= len(texts) <= 3 and len(set(texts)) == len(texts)
        assert len(set(ids)) == len(ids) and all(ids)
        # The same request again is answered with the same alternatives, not new ones.
        again = await inline(client, URI, BODY_LINE, BODY_COLUMN)
        assert [item.command.arguments[0] for item in again.items] == ids
        # Taking a runner-up is recorded under its own id.
        accepted = await client.workspace_execute_command_async(
            types.ExecuteCommandParams(
                command="hintwise.accept", arguments=result.items[1].command.arguments
            )
        )
        assert accepted["accepted"] is True
        assert (await status(client)).suggestions.accepted == 1


async def test_completion_fallback_for_clients_without_inline_completion(server_env):
    async with session(server_env) as client:
        text = EXAMPLE.replace(" " * 12 + "\n", " " * 12 + "ret\n", 1)
        open_document(client, URI, text)
        await wait_ready(client)
        result = await client.text_document_completion_async(
            types.CompletionParams(
                text_document=types.TextDocumentIdentifier(uri=URI),
                position=types.Position(line=BODY_LINE, character=BODY_COLUMN + 3),
            )
        )
        assert result.is_incomplete is True
        [item] = result.items
        # The item replaces the typed word, so the client filters it by what was typed.
        assert item.text_edit.new_text.startswith("return")
        assert item.text_edit.range.start.character == BODY_COLUMN
        assert item.filter_text.startswith("ret")
        assert item.command.command == "hintwise.accept"


def _replace_whole(client, version: int, text: str) -> None:
    client.text_document_did_change(
        types.DidChangeTextDocumentParams(
            text_document=types.VersionedTextDocumentIdentifier(uri=URI, version=version),
            content_changes=[types.TextDocumentContentChangeWholeDocument(text=text)],
        )
    )


@pytest.mark.parametrize("sync", ["incremental", "full"])
async def test_typing_along_a_suggestion_is_served_from_the_cache(server_env, sync):
    """Also when the client sends the whole text for each keystroke (the spec allows it):
    the change is seen as the one character it is, and the suggestion is not superseded."""
    async with session(server_env) as client:
        open_document(client, URI, EXAMPLE)
        await wait_ready(client)
        first = await inline(client, URI, BODY_LINE, BODY_COLUMN, invoked=False)
        suggestion = first.items[0].insert_text
        before = (await status(client)).completions
        lines = EXAMPLE.split("\n")
        version = 2
        for index, char in enumerate(suggestion[:4]):
            if sync == "full":
                lines[BODY_LINE] = lines[BODY_LINE][: BODY_COLUMN + index] + char
                _replace_whole(client, version, "\n".join(lines))
            else:
                insert(client, URI, version, BODY_LINE, BODY_COLUMN + index, char)
            version += 1
            again = await inline(client, URI, BODY_LINE, BODY_COLUMN + index + 1, invoked=False)
            assert again.items[0].insert_text == suggestion[index + 1 :]
            assert again.items[0].command.arguments == first.items[0].command.arguments
        current = await status(client)
        assert current.completions.model_calls == before.model_calls
        assert current.completions.cache_hits == before.cache_hits + 4
        assert current.suggestions.shown == 1
        assert not hasattr(current.suggestions, "rejected")


async def test_asking_again_at_the_same_place_is_answered_from_the_cache(server_env):
    """Editors re-ask after a focus change or a re-trigger; the answer is the one just shown.
    Deep in a long file, where the prompt window's start moves after the first answer."""
    filler = "".join(f"def helper_{n}(value):\n    return value * {n}\n\n\n" for n in range(400))
    line = BODY_LINE + filler.count("\n")
    async with session(server_env) as client:
        open_document(client, URI, filler + EXAMPLE)
        await wait_ready(client)
        for invoked in (False, True):
            first = await inline(client, URI, line, BODY_COLUMN, invoked=invoked)
            before = (await status(client)).completions
            again = await inline(client, URI, line, BODY_COLUMN, invoked=invoked)
            after = (await status(client)).completions
            assert again.items[0].insert_text == first.items[0].insert_text
            assert again.items[0].command.arguments == first.items[0].command.arguments
            assert after.model_calls == before.model_calls
            assert after.cache_hits == before.cache_hits + 1


LONG = {
    "completion": {
        "max_tokens": 400,
        "time_limit_ms": 60000,
        "multiline": "always",
        "max_lines": 400,
        "prewarm": False,
    }
}
LIST_DOC = "# The first two hundred square numbers\nsquares = [\n    "


async def _wait_for_cancellations(client, count: int):
    for _ in range(200):
        completions = (await status(client)).completions
        if len(completions.cancellations) >= count:
            return completions
        await asyncio.sleep(0.05)
    raise AssertionError("the server never reported the cancelled generation")


async def test_cancel_request_stops_generation_between_tokens(server_env):
    async with session(server_env, settings=LONG) as client:
        open_document(client, URI, LIST_DOC)
        await wait_ready(client)
        params = types.InlineCompletionParams(
            text_document=types.TextDocumentIdentifier(uri=URI),
            position=types.Position(line=2, character=4),
            context=types.InlineCompletionContext(
                trigger_kind=types.InlineCompletionTriggerKind.Invoked
            ),
        )
        request = client.protocol.send_request(
            types.TEXT_DOCUMENT_INLINE_COMPLETION, params, msg_id="long-1"
        )
        await asyncio.sleep(1.5)  # generating by now (the prompt is a few tokens)
        client.protocol.notify(types.CANCEL_REQUEST, types.CancelParams(id="long-1"))
        completions = await _wait_for_cancellations(client, 1)
        [cancelled] = completions.cancellations
        assert cancelled.generated_tokens > 0  # it was mid-generation
        assert cancelled.tokens_after_cancel <= 1
        assert cancelled.stop_reason == "cancelled"
        with pytest.raises(Exception):  # noqa: B017 - pygls reports the cancellation as an error
            await asyncio.wait_for(asyncio.wrap_future(request), 10)
        # The server is still answering.
        assert (await status(client)).state == "ready"


async def test_a_newer_request_for_the_same_document_cancels_the_older(server_env):
    async with session(server_env, settings=LONG) as client:
        open_document(client, URI, LIST_DOC)
        await wait_ready(client)
        older = asyncio.ensure_future(inline(client, URI, 2, 4))
        await asyncio.sleep(1.5)
        insert(client, URI, 2, 2, 4, "1")
        newer = asyncio.ensure_future(inline(client, URI, 2, 5))
        completions = await _wait_for_cancellations(client, 1)
        assert completions.cancellations[0].tokens_after_cancel <= 1
        assert not (await older).items  # superseded: nothing to show
        newer.cancel()


async def test_missing_model_gives_a_message_and_a_live_server(server_env, tmp_path):
    env = {**server_env, "HINTWISE_MODEL": str(tmp_path / "no-such-model.gguf")}
    async with session(env) as client:
        current = await wait_ready(client)
        assert current.state == "failed"
        assert "does not exist" in current.error
        for _ in range(50):
            if client.messages:
                break
            await asyncio.sleep(0.1)
        [message] = client.messages
        assert message.type == types.MessageType.Error
        assert "no-such-model.gguf" in message.message and "hintwise doctor" in message.message
        open_document(client, URI, EXAMPLE)
        assert not (await inline(client, URI, BODY_LINE, BODY_COLUMN)).items


@pytest.mark.parametrize(
    "content",
    [b"not a model at all\n" * 100, b"GGUF\x03\x00\x00\x00" + b"\xff" * 64],
    ids=["text-file", "corrupt-header"],
)
async def test_corrupt_model_gives_a_message_and_a_live_server(server_env, tmp_path, content):
    broken = tmp_path / "broken.gguf"
    broken.write_bytes(content)
    async with session({**server_env, "HINTWISE_MODEL": str(broken)}) as client:
        current = await wait_ready(client)
        assert current.state == "failed"
        assert "broken.gguf" in current.error
        open_document(client, URI, EXAMPLE)
        assert not (await inline(client, URI, BODY_LINE, BODY_COLUMN)).items


async def test_bad_input_never_crashes_the_server(server_env):
    async with session(server_env) as client:
        open_document(client, URI, EXAMPLE)
        await wait_ready(client)
        # Positions past the end of the document / line, and inside a surrogate pair.
        for line, character in [(9999, 0), (3, 9999), (0, 2**31 - 1)]:
            result = await inline(client, URI, line, character)
            assert isinstance(result, types.InlineCompletionList)
        emoji_uri = "file:///work/example/emoji.py"
        open_document(client, emoji_uri, "name = '😋😋'\nprint(name)\n")
        await inline(client, emoji_uri, 0, 10)  # between the halves of the second emoji
        # A document that was never opened.
        assert not (await inline(client, "file:///never/opened.py", 0, 0)).items
        # Binary content.
        binary_uri = "file:///work/example/blob.bin"
        open_document(client, binary_uri, "\x00\x01\x02" * 1000 + "ELF", "plaintext")
        assert not (await inline(client, binary_uri, 0, 5)).items
        # An edit whose range lies outside the document.
        client.text_document_did_change(
            types.DidChangeTextDocumentParams(
                text_document=types.VersionedTextDocumentIdentifier(uri=URI, version=9),
                content_changes=[
                    types.TextDocumentContentChangePartial(
                        range=types.Range(
                            start=types.Position(line=500, character=3),
                            end=types.Position(line=900, character=0),
                        ),
                        text="x = 1\n",
                    )
                ],
            )
        )
        # Unknown commands and wrong arguments are errors for the client, not crashes.
        with pytest.raises(Exception, match=r"(?i)not found|unknown|invalid"):
            await client.workspace_execute_command_async(
                types.ExecuteCommandParams(command="hintwise.nope", arguments=[])
            )
        with pytest.raises(Exception, match=r"(?i)invalid|argument|param"):
            await client.workspace_execute_command_async(
                types.ExecuteCommandParams(command="hintwise.accept", arguments=[1, 2, 3])
            )
        unknown = await client.workspace_execute_command_async(
            types.ExecuteCommandParams(command="hintwise.accept", arguments=["no-such-id"])
        )
        assert unknown["accepted"] is False
        # Still serving real completions afterwards.
        assert (await status(client)).state == "ready"
        result = await inline(client, URI, BODY_LINE, BODY_COLUMN)
        assert result.items


async def test_a_five_megabyte_file(server_env):
    big = "".join(f"def function_{i}(x):\n    return x + {i}\n\n\n" for i in range(130_000))
    assert len(big) > 5_000_000
    uri = "file:///work/example/big.py"
    async with session(server_env) as client:
        await wait_ready(client)
        open_document(client, uri, big + "def last(x):\n    ")
        lines = big.count("\n")
        started = time.perf_counter()
        result = await inline(client, uri, lines + 1, 4)
        assert result.items and result.items[0].insert_text.strip()
        assert time.perf_counter() - started < 60
        insert(client, uri, 2, lines + 1, 4, "r")
        assert isinstance(await inline(client, uri, lines + 1, 5), types.InlineCompletionList)


def _message(payload: dict) -> bytes:
    body = json.dumps(payload).encode()
    return f"Content-Length: {len(body)}\r\n\r\n".encode() + body


def test_a_client_that_disconnects_mid_generation(server_env):
    """The server must exit by itself (no hang, no traceback) when its client goes away."""
    server = subprocess.Popen(
        [*hintwise_command(), "serve"],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=server_env,
    )
    init = {
        "processId": os.getpid(),
        "rootUri": None,
        "capabilities": {},
        "initializationOptions": LONG,
    }
    server.stdin.write(
        _message({"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": init})
    )
    server.stdin.write(_message({"jsonrpc": "2.0", "method": "initialized", "params": {}}))
    server.stdin.write(
        _message(
            {
                "jsonrpc": "2.0",
                "method": "textDocument/didOpen",
                "params": {
                    "textDocument": {
                        "uri": URI,
                        "languageId": "python",
                        "version": 1,
                        "text": LIST_DOC,
                    }
                },
            }
        )
    )
    server.stdin.write(
        _message(
            {
                "jsonrpc": "2.0",
                "id": 2,
                "method": "textDocument/inlineCompletion",
                "params": {
                    "textDocument": {"uri": URI},
                    "position": {"line": 2, "character": 4},
                    "context": {"triggerKind": 1},
                },
            }
        )
    )
    server.stdin.flush()
    time.sleep(3)  # model loaded and generating
    assert server.poll() is None
    server.stdin.close()
    server.stdout.close()
    try:
        code = server.wait(timeout=20)
    except subprocess.TimeoutExpired:
        server.kill()
        pytest.fail("the server kept running after its client disconnected")
    stderr = server.stderr.read().decode()
    assert "Traceback" not in stderr, stderr
    assert code in (0, 1), stderr


def test_every_request_during_the_model_load_is_answered(server_env):
    """Regression: llama-cpp-python's quiet mode points fd 1 (our LSP channel) at /dev/null
    while a model loads, which silently swallowed replies sent during the load."""
    server = subprocess.Popen(
        [*hintwise_command(), "serve"],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        env=server_env,
    )
    try:
        init = {"processId": None, "rootUri": None, "capabilities": {}}
        server.stdin.write(
            _message({"jsonrpc": "2.0", "id": 0, "method": "initialize", "params": init})
        )
        server.stdin.write(_message({"jsonrpc": "2.0", "method": "initialized", "params": {}}))
        server.stdin.flush()
        ids = list(range(1, 41))
        for request_id in ids:
            server.stdin.write(
                _message(
                    {"jsonrpc": "2.0", "id": request_id, "method": "hintwise/status", "params": {}}
                )
            )
            server.stdin.flush()
            time.sleep(0.05)
        answered, states = set(), set()
        deadline = time.monotonic() + 30
        while answered != set(ids) and time.monotonic() < deadline:
            headers = {}
            while (line := server.stdout.readline().strip()) != b"":
                key, _, value = line.partition(b":")
                headers[key.strip().lower()] = value.strip()
            reply = json.loads(server.stdout.read(int(headers[b"content-length"])))
            if reply.get("id") in ids:
                answered.add(reply["id"])
                states.add(reply["result"]["state"])
        assert answered == set(ids)
        assert "loading" in states  # some were sent while the model loaded
    finally:
        server.kill()
        server.wait()


async def test_settings_change_reloads_the_model_without_a_restart(server_env):
    async with session(server_env) as client:
        await wait_ready(client)
        assert (await status(client)).model == "gemma3-270m"
        client.workspace_did_change_configuration(
            types.DidChangeConfigurationParams(
                settings={"hintwise": {"model": {"name": "smollm2-135m"}}}
            )
        )
        for _ in range(100):
            current = await status(client)
            if current.model == "smollm2-135m" and current.state == "ready":
                break
            await asyncio.sleep(0.1)
        assert current.model == "smollm2-135m" and current.state == "ready"
        open_document(client, URI, EXAMPLE)
        result = await inline(client, URI, BODY_LINE, BODY_COLUMN)
        assert isinstance(result, types.InlineCompletionList)
        # A bad value is reported, and the rest of the settings still apply.
        client.workspace_did_change_configuration(
            types.DidChangeConfigurationParams(
                settings={"hintwise": {"completion": {"max_lines": "lots"}}}
            )
        )
        for _ in range(50):
            if any("max_lines" in message.message for message in client.messages):
                break
            await asyncio.sleep(0.1)
        assert any("max_lines" in message.message for message in client.messages)


async def test_an_out_of_range_setting_is_reported_and_the_model_still_starts(server_env):
    """Issue 15: `initializationOptions {"completion": {"max_lines": 1e999}}` failed
    `initialize` with OverflowError: no model, empty completions, no message. Python's JSON
    reads 1e999 as infinity, which is what the client sends here (`Infinity`)."""
    async with session(server_env, {"completion": {"max_lines": float("inf")}}) as client:
        ready = await wait_ready(client)
        open_document(client, URI, EXAMPLE)
        result = await inline(client, URI, BODY_LINE, BODY_COLUMN)
        client.workspace_did_change_configuration(
            types.DidChangeConfigurationParams(
                settings={"hintwise": {"completion": {"max_tokens": 1e999, "min_chars": 1}}}
            )
        )
        for _ in range(50):
            if any("max_tokens" in message.message for message in client.messages):
                break
            await asyncio.sleep(0.1)
        messages = [message.message for message in client.messages]
    assert ready.state == "ready" and result.items
    assert any("max_lines" in m for m in messages) and any("max_tokens" in m for m in messages)
    assert not any("Error in server" in m for m in messages)


def test_serve_over_tcp(server_env):
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    server = subprocess.Popen(
        [*hintwise_command(), "serve", "--tcp", f"127.0.0.1:{port}"],
        stderr=subprocess.DEVNULL,
        env=server_env,
    )
    try:
        with connect_when_listening(port, timeout=5) as connection:
            init = {"processId": None, "rootUri": None, "capabilities": {}}
            connection.sendall(
                _message({"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": init})
            )
            reader = connection.makefile("rb")
            headers = {}
            while (line := reader.readline().strip()) != b"":
                key, _, value = line.partition(b":")
                headers[key.strip().lower()] = value.strip()
            reply = json.loads(reader.read(int(headers[b"content-length"])))
        assert reply["result"]["capabilities"]["inlineCompletionProvider"] is not None
        assert reply["result"]["serverInfo"]["name"] == "hintwise"
    finally:
        server.kill()
        server.wait()


async def test_a_null_configuration_answer_means_no_settings(server_env):
    """Some clients answer workspace/configuration with `null`: no popup, the server keeps
    the settings it has and completes as usual."""
    async with session(server_env) as client:
        client.protocol.fm.features[types.WORKSPACE_CONFIGURATION] = lambda params: None
        client.workspace_did_change_configuration(types.DidChangeConfigurationParams(settings=None))
        open_document(client, URI, EXAMPLE)
        result = await inline(client, URI, BODY_LINE, BODY_COLUMN)
        assert result.items[0].insert_text.strip() == "return False"
        await asyncio.sleep(0.5)
        assert [message.message for message in client.messages] == []
