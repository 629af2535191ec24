"""A real `python -m llama_cpp.server` (llama-cpp-python's OpenAI-compatible server) on
127.0.0.1, serving the bundled GGUF, for the remote-engine tests and bench/latency.py.

It can be killed and started again on the same port (the down/recovery tests), and its log is
kept in a file: the server prints `Llama.generate: N prefix-match hit` for every request, which
is how `tokens_in_cache` counts the tokens it really generated (see `tokens_generated`).
"""

from __future__ import annotations

import contextlib
import os
import re
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx

# `python -m llama_cpp.server`, with hintwise's guard against llama.cpp's AMX crash (see
# hintwise.models.llama_engine.avoid_amx_crash) applied first: on a CPU with AMX the server
# would otherwise die at its first request.
SERVER_MAIN = (
    "from hintwise.models.llama_engine import avoid_amx_crash; avoid_amx_crash(); "
    "import runpy; runpy.run_module('llama_cpp.server', run_name='__main__', alter_sys=True)"
)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class LlamaCppServer:
    """One server process; `start()` again after `kill()` reuses the port."""

    def __init__(
        self,
        model: Path,
        log: Path,
        port: int | None = None,
        api_key: str | None = None,
        threads: int = 1,
        extra: tuple[str, ...] = (),
        tls: tuple[Path, Path] | None = None,
        logits_all: bool = False,
    ):
        self.model = model
        self.log = log
        self.port = port or free_port()
        self.api_key = api_key
        self.threads = threads
        self.extra = extra
        self.tls = tls  # (key file, certificate file): serve https
        # llama_cpp.server keeps logits for every prompt position by default (1 MB a token with
        # Gemma's vocabulary), which only per-token log-probs need: off unless asked for.
        self.logits_all = logits_all
        self.process: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"{'https' if self.tls else 'http'}://127.0.0.1:{self.port}"

    def command(self) -> list[str]:
        command = [
            sys.executable,
            "-c",
            SERVER_MAIN,
            "--model",
            str(self.model),
            "--host",
            "127.0.0.1",
            "--port",
            str(self.port),
            "--n_threads",
            str(self.threads),
            # Its default for prompt evaluation is every core, which is 2x slower as soon as
            # anything else runs (bench/threads.py): the same count as generation.
            "--n_threads_batch",
            str(self.threads),
            "--n_ctx",
            "4096",
            "--chat_format",
            "gemma",
            "--logits_all",
            str(self.logits_all),
            *self.extra,
        ]
        if self.api_key:
            command += ["--api_key", self.api_key]
        if self.tls:
            command += ["--ssl_keyfile", str(self.tls[0]), "--ssl_certfile", str(self.tls[1])]
        return command

    def start(self, timeout: float = 60.0) -> LlamaCppServer:
        command = self.command()
        handle = self.log.open("ab")
        env = {k: v for k, v in os.environ.items() if not k.startswith("HINTWISE_")}
        self.process = subprocess.Popen(
            command, stdout=handle, stderr=subprocess.STDOUT, env=env, start_new_session=True
        )
        handle.close()
        deadline = time.monotonic() + timeout
        headers = {"Authorization": f"Bearer {self.api_key}"} if self.api_key else {}
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"{command[0]} exited: {self.log.read_text()[-2000:]}")
            with contextlib.suppress(httpx.HTTPError):
                probe = httpx.get(self.url + "/v1/models", headers=headers, timeout=1, verify=False)
                if probe.status_code == 200:  # llama-server answers 503 while loading
                    return self
            time.sleep(0.2)
        self.kill()
        raise RuntimeError(f"{command[0]} did not start in time")

    def kill(self) -> None:
        """SIGKILL, as a crash would: no goodbye to connected clients."""
        if self.process is not None and self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(10)
        self.process = None

    def log_text(self) -> str:
        return self.log.read_text(errors="replace") if self.log.exists() else ""

    def cpu_seconds(self) -> float:
        """CPU time the server process has used so far (user + system)."""
        assert self.process is not None
        fields = Path(f"/proc/{self.process.pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


class LlamaServer(LlamaCppServer):
    """llama.cpp's own `llama-server` binary (not on PyPI as a wheel: built from source, found
    on PATH or at $HINTWISE_LLAMA_SERVER)."""

    def __init__(self, binary: str, model: Path, log: Path, **kwargs):
        super().__init__(model, log, **kwargs)
        self.binary = binary

    def command(self) -> list[str]:
        command = [self.binary, "-m", str(self.model), "--host", "127.0.0.1"]
        command += ["--port", str(self.port), "-t", str(self.threads), "-tb", str(self.threads)]
        command += ["-c", "4096", "--parallel", "1", *self.extra]
        if self.api_key:
            command += ["--api-key", self.api_key]
        return command

    def generated_in_last_task(self, prompt: str) -> int:
        """Tokens the server generated for `prompt` in its last task, from its own log: it
        prints the tokens in the slot (prompt + generated) when the slot stops processing."""
        found = re.findall(r"stop processing: n_tokens = (\d+)", self.log_text())
        assert found, "llama-server logged no finished task"
        tokens = httpx.post(
            self.url + "/tokenize", json={"content": prompt, "add_special": True}, timeout=30
        ).json()["tokens"]
        return int(found[-1]) - len(tokens)


_PREFIX_HIT = re.compile(r"Llama\.generate: (\d+) prefix-match hit")


def tokens_in_cache(server: LlamaCppServer, prompt: str, timeout: float = 30.0) -> int:
    """How many tokens of `prompt` the server's KV cache already holds.

    Sends `prompt` for one token and reads the server's `N prefix-match hit` log line for it.
    """
    before = len(_PREFIX_HIT.findall(server.log_text()))
    response = httpx.post(
        server.url + "/v1/completions",
        json={"prompt": prompt, "max_tokens": 1, "temperature": 0},
        timeout=timeout,
    )
    response.raise_for_status()
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        hits = _PREFIX_HIT.findall(server.log_text())
        if len(hits) > before:
            return int(hits[before])
        time.sleep(0.05)
    raise AssertionError("the server logged no prefix match for the probe request")


def tokenize(server: LlamaCppServer, text: str) -> list[int]:
    response = httpx.post(server.url + "/extras/tokenize", json={"input": text}, timeout=30)
    response.raise_for_status()
    return response.json()["tokens"]


def tokens_generated(server: LlamaCppServer, prompt: str, continuation: str) -> int:
    """Tokens the server generated for `prompt` in its last request, counted in its KV cache.

    `continuation` is the full greedy answer to `prompt` (from an earlier uncancelled run):
    greedy decoding writes the same tokens again, so after a cancelled request the cache holds
    the prompt plus exactly the tokens the server went on to generate before it stopped, and a
    probe with `prompt + continuation` matches that many. (The last sampled token is fed to the
    model only when the next one is wanted, so this can read one low.)
    """
    prompt_tokens = len(tokenize(server, prompt))
    return tokens_in_cache(server, prompt + continuation) - prompt_tokens
