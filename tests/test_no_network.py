"""With the default settings the server opens no network socket: no connect, bind or send
from Python (an audit hook in the server process) and no internet socket held by native code
(the process's file descriptors, checked against /proc/net)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from lsp_session import EXAMPLE, inline, open_document, session, wait_ready
from lsprotocol import types

pytestmark = [pytest.mark.model, pytest.mark.timeout(180)]

AUDIT_HOOK = textwrap.dedent(
    """
    import json, os, socket, sys

    _log = os.environ["HINTWISE_SOCKET_LOG"]

    def _hook(event, args):
        if event in ("socket.connect", "socket.bind", "socket.sendto", "socket.sendmsg",
                     "socket.getaddrinfo", "socket.gethostbyname"):
            record = {"event": event, "args": repr(args)[:200]}
        elif event == "socket.__new__" and args[1] in (socket.AF_INET, socket.AF_INET6):
            record = {"event": event, "family": int(args[1])}
        else:
            return
        with open(_log, "a") as handle:
            handle.write(json.dumps(record) + "\\n")

    sys.addaudithook(_hook)
    """
)


@pytest.fixture
def watched_env(server_env, gemma_path, tmp_path):
    hook_dir = tmp_path / "hook"
    hook_dir.mkdir()
    (hook_dir / "sitecustomize.py").write_text(AUDIT_HOOK)
    log = tmp_path / "sockets.jsonl"
    env = {
        **server_env,
        "PYTHONPATH": os.pathsep.join([str(hook_dir), server_env.get("PYTHONPATH", "")]),
        "HINTWISE_SOCKET_LOG": str(log),
        "HINTWISE_DATA_DIR": str(tmp_path / "data"),
        "HINTWISE_MODEL": str(gemma_path),
    }
    return env, log


def test_the_audit_hook_sees_a_socket(watched_env):
    """The watch itself works: a process that does open one is caught."""
    env, log = watched_env
    code = "import socket; s = socket.socket(); s.bind(('127.0.0.1', 0)); s.close()"
    subprocess.run([sys.executable, "-c", code], env=env, check=True)
    events = [json.loads(line)["event"] for line in log.read_text().splitlines()]
    assert "socket.__new__" in events and "socket.bind" in events


def _inet_sockets(pid: int) -> list[str]:
    """Internet sockets the process holds, from its fds and /proc/net."""
    inodes = set()
    for fd in Path(f"/proc/{pid}/fd").iterdir():
        try:
            target = os.readlink(fd)
        except OSError:
            continue
        if target.startswith("socket:["):
            inodes.add(target[8:-1])
    found = []
    for table in ("tcp", "tcp6", "udp", "udp6"):
        path = Path(f"/proc/{pid}/net/{table}")
        if not path.exists():
            continue
        for line in path.read_text().splitlines()[1:]:
            fields = line.split()
            if len(fields) > 9 and fields[9] in inodes:
                found.append(f"{table}: {line.strip()}")
    return found


async def test_the_server_opens_no_socket_with_default_settings(watched_env):
    env, log = watched_env
    async with session(env) as client:
        uri = "file:///work/example/primes.py"
        open_document(client, uri, EXAMPLE)
        await wait_ready(client)
        result = await inline(client, uri, 14, 12)
        assert result.items
        await client.workspace_execute_command_async(
            types.ExecuteCommandParams(
                command="hintwise.accept", arguments=result.items[0].command.arguments
            )
        )
        status = await client.protocol.send_request_async("hintwise/status", {})
        assert status.telemetry.enabled and status.telemetry.ok  # the store was in use
        assert _inet_sockets(client._server.pid) == []
    recorded = log.read_text().splitlines() if log.exists() else []
    assert recorded == [], recorded
