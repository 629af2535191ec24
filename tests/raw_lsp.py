"""`hintwise serve` driven with raw bytes on its stdin, its answers parsed from its stdout.

pytest-lsp's client refuses to send what a broken client sends (bad framing, invalid JSON,
batches, ids of the wrong type); the protocol tests need exactly that.
"""

from __future__ import annotations

import json
import os
import queue
import socket
import subprocess
import threading
import time
from pathlib import Path
from typing import Any

from conftest import hintwise_command

HEADER = b"Content-Length: "


def nomodel_env(folder: Path) -> dict[str, str]:
    """A server without a model: it answers everything, its completions are empty (and it
    says once, at start, that there is no model)."""
    env = {key: value for key, value in os.environ.items() if not key.startswith("HINTWISE_")}
    return {
        **env,
        "HINTWISE_DATA_DIR": str(folder / "data"),
        "HINTWISE_MODEL": str(folder / "no-model.gguf"),
    }


def connect_when_listening(port: int, timeout: float = 30, wait: float = 30) -> socket.socket:
    """A TCP connection to a `hintwise serve --tcp` on localhost, once it listens (it loads its
    settings first); `timeout` is the socket's own."""
    deadline = time.monotonic() + wait
    while True:
        try:
            return socket.create_connection(("127.0.0.1", port), timeout=timeout)
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.2)


def frame(body: bytes | str | Any) -> bytes:
    """One LSP message: `body` as JSON unless it is already bytes or text."""
    if isinstance(body, str):
        data = body.encode("utf-8", "surrogatepass")
    elif isinstance(body, bytes):
        data = body
    else:
        data = json.dumps(body).encode()
    return HEADER + str(len(data)).encode() + b"\r\n\r\n" + data


def read_frames(stream, into: queue.Queue) -> None:
    """Parse the server's output (always well framed) until it closes."""
    while True:
        length = None
        while True:
            line = stream.readline()
            if not line:
                into.put(None)
                return
            if line.lower().startswith(b"content-length:"):
                length = int(line.split(b":", 1)[1])
            elif line in (b"\r\n", b"\n") and length is not None:
                break
        into.put(json.loads(stream.read(length)))


class RawServer:
    """A `hintwise serve` process; `messages` holds everything it sent, in order."""

    def __init__(self, env: dict[str, str], folder: Path):
        """A server whose working directory and log (`server.log`) are in `folder`."""
        self.log_file = folder / "server.log"
        command = [*hintwise_command(), "serve", "--log-level", "info"]
        self.process = subprocess.Popen(
            [*command, "--log-file", str(self.log_file)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            env=env,
            cwd=folder,
        )
        self._incoming: queue.Queue = queue.Queue()
        self.messages: list[dict] = []
        self.closed = False
        threading.Thread(
            target=read_frames, args=(self.process.stdout, self._incoming), daemon=True
        ).start()

    def write(self, data: bytes) -> None:
        assert self.process.stdin is not None
        self.process.stdin.write(data)
        self.process.stdin.flush()

    def send(self, message: Any) -> None:
        self.write(frame(message))

    def _pump(self, timeout: float) -> bool:
        try:
            message = self._incoming.get(timeout=timeout)
        except queue.Empty:
            return False
        if message is None:
            self.closed = True
            return False
        if isinstance(message, dict) and "method" in message and "id" in message:
            # The server's own requests: no settings, and null for anything else.
            answer = [None] if message["method"] == "workspace/configuration" else None
            self.send({"jsonrpc": "2.0", "id": message["id"], "result": answer})
        self.messages.append(message)
        return True

    def answers(self, msg_id: Any) -> list[dict]:
        def same(other: Any) -> bool:  # True == 1 in Python, not in JSON
            return type(other) is type(msg_id) and other == msg_id

        return [m for m in self.messages if "method" not in m and same(m.get("id"))]

    def wait_answer(self, msg_id: Any, timeout: float = 30) -> dict:
        """The first answer to `msg_id` (a request this test sent)."""
        deadline = time.monotonic() + timeout
        while not (found := self.answers(msg_id)):
            pumped = self._pump(max(0.0, deadline - time.monotonic()))
            if self.closed or (not pumped and time.monotonic() >= deadline):
                raise TimeoutError(f"no answer to {msg_id!r} (closed: {self.closed})")
        return found[0]

    def request(self, msg_id: Any, method: str, params: Any = None, timeout: float = 30) -> dict:
        self.send({"jsonrpc": "2.0", "id": msg_id, "method": method, "params": params})
        return self.wait_answer(msg_id, timeout)

    def drain(self, quiet: float = 0.3) -> None:
        """Read until the server has been silent for `quiet` seconds."""
        while self._pump(quiet):
            pass

    def popups(self, kind: int = 1) -> list[str]:
        """The window/showMessage texts of this type (1 = Error) the server sent, but for the
        ones that say there is no model (see `nomodel_env`)."""
        return [
            m["params"]["message"]
            for m in self.messages
            if m.get("method") == "window/showMessage"
            and m["params"]["type"] == kind
            and "model.path points at" not in m["params"]["message"]
        ]

    def initialize(self, options: dict | None = None) -> None:
        params = {
            "processId": os.getpid(),
            "rootUri": None,
            "capabilities": {
                "textDocument": {"inlineCompletion": {}},
                "workspace": {"configuration": True},
            },
            "initializationOptions": options or {},
        }
        self.request("init", "initialize", params, timeout=120)
        self.send({"jsonrpc": "2.0", "method": "initialized", "params": {}})

    def close(self) -> int:
        """Shut down politely, else kill; the exit status."""
        if self.process.poll() is None:
            try:
                self.request("bye", "shutdown", None, timeout=20)
                self.send({"jsonrpc": "2.0", "method": "exit", "params": None})
                self.process.stdin.close()  # type: ignore[union-attr]
                return self.process.wait(timeout=20)
            except (TimeoutError, OSError, subprocess.TimeoutExpired):
                self.process.kill()
        return self.process.wait(timeout=20)
