"""End to end: `hintwise serve` pointed at a real `python -m llama_cpp.server` on 127.0.0.1.

Inline completions come from the server; killing it mid-request gives a message and an empty
answer while the language server stays alive; starting it again brings completions back.
"""

from __future__ import annotations

import asyncio
import json
import time

import pytest
from inference_server import LlamaCppServer
from lsp_session import EXAMPLE, inline, open_document, session, status
from lsprotocol import types

pytestmark = [pytest.mark.model, pytest.mark.timeout(300)]

URI = "file:///work/example/primes.py"
BODY_LINE, BODY_COLUMN = 14, 12  # the blank line inside `if n % divisor == 0:`


@pytest.fixture
def llama_server(gemma_path, tmp_path):
    server = LlamaCppServer(gemma_path, tmp_path / "server.log").start()
    yield server
    server.kill()


def remote(server: LlamaCppServer, **extra) -> dict:
    return {"engine": {"kind": "http", "url": server.url, **extra}}


async def wait_for_message(client, text: str, timeout: float = 30.0) -> types.ShowMessageParams:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for message in client.messages:
            if text in message.message:
                return message
        await asyncio.sleep(0.1)
    raise AssertionError(f"no message with {text!r}: {[m.message for m in client.messages]}")


async def test_inline_completions_come_from_the_server(server_env, llama_server):
    async with session(server_env, remote(llama_server)) as client:
        open_document(client, URI, EXAMPLE)
        result = await inline(client, URI, BODY_LINE, BODY_COLUMN)
        assert len(result.items) == 1
        assert "return False" in result.items[0].insert_text
        current = await status(client)
        assert current.state == "ready"
        engine = current.engines.completion
        assert engine.kind == "llama-cpp-python" and engine.health == "ok"
        assert engine.url == llama_server.url
        # Explanations and reviews default to the same server, on a worker of their own.
        assert current.engines.explain.url == llama_server.url
        assert "POST /v1/completions" in llama_server.log_text()  # the server did the work


async def test_a_server_killed_mid_request_then_restarted(server_env, llama_server):
    settings = {
        **remote(llama_server),
        "completion": {"multiline": "always", "max_tokens": 200, "max_lines": 40},
    }
    text = EXAMPLE + "\n\ndef count_primes(limit: int) -> int:\n    "
    last_line = text.count("\n")
    async with session(server_env, settings) as client:
        open_document(client, URI, text)
        assert (await inline(client, URI, BODY_LINE, BODY_COLUMN)).items  # warm and working

        posts = llama_server.log_text().count("POST /v1/completions")
        request = asyncio.ensure_future(inline(client, URI, last_line, 4))
        # Kill it as soon as the server has started streaming this answer (its access log line
        # comes with the response headers): a fixed sleep raced a fast, quiet machine.
        deadline = time.monotonic() + 20
        while llama_server.log_text().count("POST /v1/completions") == posts:
            assert time.monotonic() < deadline, "the request never reached the server"
            await asyncio.sleep(0.01)
        assert not request.done()
        llama_server.kill()
        started = time.monotonic()
        result = await asyncio.wait_for(request, 20)
        assert not result.items  # nothing, quickly, never a hang
        assert time.monotonic() - started < 5
        message = await wait_for_message(client, "cannot reach the inference server")
        assert message.type == types.MessageType.Warning
        assert "hintwise doctor" in message.message

        # The language server is alive and says what is wrong.
        current = await status(client)
        assert current.engines.completion.health == "down"
        assert not (await inline(client, URI, BODY_LINE, BODY_COLUMN)).items

        llama_server.start()
        deadline = time.monotonic() + 30
        items = []
        while not items and time.monotonic() < deadline:
            items = (await inline(client, URI, BODY_LINE, BODY_COLUMN)).items
            if not items:
                await asyncio.sleep(0.5)
        assert items and "return False" in items[0].insert_text
        await wait_for_message(client, "the inference server is back")
        assert (await status(client)).engines.completion.health == "ok"


def test_doctor_and_complete_with_a_remote_engine(server_env, llama_server):
    from test_cli import run

    done = run(["doctor", "--json", "--url", llama_server.url], server_env, timeout=120)
    assert done.returncode == 0, done.stdout + done.stderr
    report = json.loads(done.stdout)
    [server] = report["servers"]
    assert server["kind"] == "llama-cpp-python" and server["health"] == "ok"
    assert server["used_for"] == ["completion", "explain", "review"]
    assert server["first_token_ms"] > 0 and server["decode_tokens_per_s"] > 0
    assert report["model"] is None  # no local model was loaded
    text = run(["doctor", "--url", llama_server.url, "--no-speed"], server_env).stdout
    assert f"inference server: {llama_server.url}" in text and "llama-cpp-python" in text

    done = run(
        ["complete", "examples/primes.py:15:13", "--json", "--url", llama_server.url], server_env
    )
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["text"] == "return False"

    llama_server.kill()
    done = run(["doctor", "--url", llama_server.url, "--no-speed"], server_env, timeout=60)
    assert done.returncode == 1
    assert "cannot reach the inference server" in done.stdout
    done = run(["complete", "examples/primes.py:15:13", "--url", llama_server.url], server_env)
    assert done.returncode == 1
    assert "cannot reach the inference server" in done.stderr and "Traceback" not in done.stderr


BUGGY = """def last(items):
    return items[len(items)]


def main():
    print(last([1, 2, 3]))
"""


async def test_explanations_and_reviews_through_the_server(server_env, llama_server):
    """Completions stay in-process; explanations and reviews go to the server (per-feature
    engines), through the same LSP commands as with the local model."""
    settings = {
        "explain_engine": {"kind": "http", "url": llama_server.url},
        "review_engine": {"kind": "http", "url": llama_server.url},
        "review": {"on_save": False},
    }
    uri = "file:///work/example/buggy.py"
    async with session(server_env, settings) as client:
        open_document(client, URI, EXAMPLE)
        open_document(client, uri, BUGGY)
        assert (await inline(client, URI, BODY_LINE, BODY_COLUMN)).items  # local model
        assert "POST /v1/chat/completions" not in llama_server.log_text()
        current = await status(client)
        assert current.engines.completion.engine == "gemma3-270m"
        assert current.engines.explain.kind == "llama-cpp-python"

        explanation = await client.workspace_execute_command_async(
            types.ExecuteCommandParams(
                command="hintwise.explain",
                arguments=[
                    {
                        "uri": uri,
                        "line": 1,
                        "message": "IndexError: list index out of range",
                        "show": False,
                    }
                ],
            )
        )
        assert explanation["markdown"].strip()
        chats = llama_server.log_text().count("POST /v1/chat/completions")
        assert chats >= 1

        reviewed = await client.workspace_execute_command_async(
            types.ExecuteCommandParams(command="hintwise.review", arguments=[{"uri": uri}])
        )
        assert isinstance(reviewed["comments"], int)
        assert llama_server.log_text().count("POST /v1/chat/completions") > chats
