"""The opt-in model download, against a real HTTP server on this machine's loopback.

The server honours Range requests (as Hugging Face's does) and can misbehave on demand: cut a
response half-way, ignore Range, answer 404, serve an HTML page, claim an impossible size.
"""

from __future__ import annotations

import hashlib
import json
import subprocess
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import gguf
import pytest
from conftest import ROOT, hintwise_command
from gguf_files import write_vocab_gguf

from hintwise.models.errors import DownloadError
from hintwise.models.files.download import Source, pull, resolve

QWEN_TOKENS = ["a", "b", "<|fim_prefix|>", "<|fim_suffix|>", "<|fim_middle|>", "<|endoftext|>"]


class Files:
    """What the server serves and how it misbehaves, shared with its handler threads."""

    def __init__(self) -> None:
        self.paths: dict[str, Path | bytes] = {}
        self.cut_after: dict[str, int] = {}  # send this many bytes, then drop the connection
        self.ignore_range: set[str] = set()
        self.claimed_size: dict[str, int] = {}
        self.ranges: list[str | None] = []
        # Hub-style redirects (path → location) and extra headers on them, as the hub's
        # `resolve` URLs answer: 302 to the storage, with X-Linked-Etag = the file's sha256.
        self.redirects: dict[str, str] = {}
        self.headers: dict[str, dict[str, str]] = {}
        self.methods: list[str] = []


class Handler(BaseHTTPRequestHandler):
    """Serves `files` (set per server by `_handler`)."""

    files: Files

    def log_message(self, *args) -> None:
        pass

    def _redirect(self) -> bool:
        self.files.methods.append(f"{self.command} {self.path}")
        location = self.files.redirects.get(self.path)
        if location is None:
            return False
        self.send_response(302)
        self.send_header("Location", location)
        for name, value in self.files.headers.get(self.path, {}).items():
            self.send_header(name, value)
        self.send_header("Content-Length", "0")
        self.end_headers()
        return True

    def do_HEAD(self) -> None:
        if not self._redirect():
            self.send_error(404 if self.path not in self.files.paths else 405)

    def do_GET(self) -> None:
        if self._redirect():
            return
        entry = self.files.paths.get(self.path)
        if entry is None:
            self.send_error(404, "Not Found")
            return
        data = entry.read_bytes() if isinstance(entry, Path) else entry
        wanted = self.headers.get("Range")
        self.files.ranges.append(wanted)
        start = 0
        if wanted and self.path not in self.files.ignore_range:
            start = int(wanted.removeprefix("bytes=").split("-")[0])
            if start >= len(data):
                self.send_error(416, "Range Not Satisfiable")
                return
            self.send_response(206)
            self.send_header("Content-Range", f"bytes {start}-{len(data) - 1}/{len(data)}")
        else:
            self.send_response(200)
        body = data[start:]
        size = self.files.claimed_size.get(self.path, len(body))
        self.send_header("Content-Length", str(size))
        self.end_headers()
        cut = self.files.cut_after.pop(self.path, None)
        self.wfile.write(body[:cut] if cut is not None else body)
        if cut is not None:
            self.close_connection = True


def _handler(files: Files) -> type[BaseHTTPRequestHandler]:
    return type("Handler", (Handler,), {"files": files})


@pytest.fixture
def files():
    state = Files()
    server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(state))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    state.base = f"http://127.0.0.1:{server.server_address[1]}"
    yield state
    server.shutdown()
    server.server_close()


@pytest.fixture
def qwen_like(tmp_path) -> Path:
    """A small real GGUF whose vocabulary has Qwen2.5-Coder's FIM tokens."""
    (tmp_path / "served").mkdir()
    return write_vocab_gguf(
        tmp_path / "served" / "qwen-like.gguf",
        QWEN_TOKENS,
        [gguf.TokenType.NORMAL] * 2 + [gguf.TokenType.CONTROL] * 4,
    )


def _source(files: Files, name: str) -> Source:
    return Source(f"{files.base}/{name}", name)


def test_sources(monkeypatch):
    monkeypatch.delenv("HF_ENDPOINT", raising=False)
    assert resolve("hf:Qwen/Qwen2.5-Coder-0.5B-Instruct-GGUF/q4.gguf") == Source(
        "https://huggingface.co/Qwen/Qwen2.5-Coder-0.5B-Instruct-GGUF/resolve/main/q4.gguf",
        "q4.gguf",
        hub=True,
    )
    assert resolve("hf://o/r/m.gguf") == resolve("hf:o/r/m.gguf")
    assert (
        resolve("hf:o/r/sub/m.gguf@v1.0").url
        == "https://huggingface.co/o/r/resolve/v1.0/sub/m.gguf"
    )
    assert resolve("https://example.org/x/m.gguf?download=true").filename == "m.gguf"
    for bad in ("hf:only-owner/m.gguf", "ftp://example.org/m.gguf", "m.gguf"):
        with pytest.raises(DownloadError):
            resolve(bad)


def test_an_interrupted_download_resumes_where_it_stopped(files, qwen_like, tmp_path):
    files.paths["/qwen-like.gguf"] = qwen_like
    files.cut_after["/qwen-like.gguf"] = qwen_like.stat().st_size // 2
    target = tmp_path / "models"
    with pytest.raises(DownloadError, match="again to resume"):
        pull(_source(files, "qwen-like.gguf"), target)
    part = target / "qwen-like.gguf.part"
    assert part.stat().st_size == qwen_like.stat().st_size // 2
    assert not (target / "qwen-like.gguf").exists()  # never where the server would load it

    seen: list[tuple[int, int | None]] = []
    digest = hashlib.sha256(qwen_like.read_bytes()).hexdigest()
    path = pull(
        _source(files, "qwen-like.gguf"),
        target,
        sha256=digest,
        progress=lambda d, t: seen.append((d, t)),
    )
    assert files.ranges[-1] == f"bytes={part_size(qwen_like)}-"
    assert path.read_bytes() == qwen_like.read_bytes()
    assert not part.exists()
    assert seen[0] == (part_size(qwen_like), qwen_like.stat().st_size)
    assert seen[-1][0] == qwen_like.stat().st_size


def part_size(path: Path) -> int:
    return path.stat().st_size // 2


def test_a_server_that_ignores_range_restarts_cleanly(files, qwen_like, tmp_path):
    files.paths["/qwen-like.gguf"] = qwen_like
    files.ignore_range.add("/qwen-like.gguf")
    target = tmp_path / "models"
    target.mkdir()
    (target / "qwen-like.gguf.part").write_bytes(b"stale bytes from another attempt")
    path = pull(_source(files, "qwen-like.gguf"), target)
    assert path.read_bytes() == qwen_like.read_bytes()


def test_bad_downloads_are_refused_and_removed(files, qwen_like, tmp_path):
    target = tmp_path / "models"
    files.paths["/qwen-like.gguf"] = qwen_like
    with pytest.raises(DownloadError, match="sha256"):
        pull(_source(files, "qwen-like.gguf"), target, sha256="0" * 64)
    files.paths["/login.gguf"] = b"<html><body>Please log in</body></html>"
    with pytest.raises(DownloadError, match="not a usable GGUF"):
        pull(_source(files, "login.gguf"), target)
    with pytest.raises(DownloadError, match="HTTP 404"):
        pull(_source(files, "missing.gguf"), target)
    files.paths["/huge.gguf"] = b"GGUF"
    files.claimed_size["/huge.gguf"] = 10**15
    with pytest.raises(DownloadError, match="not enough disk space"):
        pull(_source(files, "huge.gguf"), target)
    assert sorted(p.name for p in target.iterdir()) == []


def test_an_unreachable_host_says_so(tmp_path):
    with pytest.raises(DownloadError, match="cannot reach"):
        pull(Source("http://127.0.0.1:9/m.gguf", "m.gguf"), tmp_path, timeout=5)


def _hintwise(args: list[str], env: dict[str, str]) -> subprocess.CompletedProcess:
    return subprocess.run(
        [*hintwise_command(), *args], env=env, capture_output=True, text=True, timeout=300, cwd=ROOT
    )


@pytest.mark.model  # `hintwise complete` loads the pulled model (about 4 s of its 8 s here)
def test_pull_then_complete_with_the_pulled_model(
    files, qwen_like, gemma_path, server_env, tmp_path
):
    """The real bundled GGUF over HTTP, verified, then used by name for a real completion."""
    env = {**server_env, "HINTWISE_DATA_DIR": str(tmp_path / "data"), "NO_PROXY": "127.0.0.1"}
    files.paths["/gemma.gguf"] = gemma_path
    digest = hashlib.sha256(gemma_path.read_bytes()).hexdigest()
    pulled = _hintwise(["models", "pull", f"{files.base}/gemma.gguf", "--sha256", digest], env)
    assert pulled.returncode == 0, pulled.stderr
    assert "no FIM tokens" in pulled.stdout
    saved = tmp_path / "data" / "models" / "gemma.gguf"
    assert saved.stat().st_size == gemma_path.stat().st_size

    done = _hintwise(
        ["complete", "examples/primes.py:15:13", "--json", "--model", "gemma.gguf"], env
    )
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["text"] == "return False"

    files.paths["/qwen-like.gguf"] = qwen_like
    assert _hintwise(["models", "pull", f"{files.base}/qwen-like.gguf"], env).returncode == 0
    listed = json.loads(_hintwise(["models", "list", "--json"], env).stdout)
    fim = {entry["file"]: entry.get("fim") for entry in listed["files"]}
    assert fim == {"gemma.gguf": None, "qwen-like.gguf": "qwen2.5-coder / codegemma"}

    failed = _hintwise(["models", "pull", f"{files.base}/nothing-here.gguf"], env)
    assert failed.returncode == 1
    assert "HTTP 404" in failed.stderr
    assert "Traceback" not in failed.stderr


@pytest.mark.model
def test_add_a_local_file_after_checking_it(gemma_path, server_env, tmp_path):
    env = {**server_env, "HINTWISE_DATA_DIR": str(tmp_path / "data")}
    added = _hintwise(["models", "add", str(gemma_path), "--name", "mine.gguf"], env)
    assert added.returncode == 0, added.stderr
    assert "gemma3 270M, Q4_K_M, no FIM, context 32,768" in added.stdout
    linked = tmp_path / "data" / "models" / "mine.gguf"
    assert linked.is_symlink() and linked.resolve() == gemma_path.resolve()

    listed = json.loads(_hintwise(["models", "list", "--json"], env).stdout)
    [card] = listed["files"]
    assert card["file"] == "mine.gguf"
    assert (card["family"], card["parameters"], card["quantization"]) == (
        "gemma3",
        "270M",
        "Q4_K_M",
    )
    assert card["context_length"] == 32768 and card["fim"] is None
    smollm2 = next(entry for entry in listed["bundled"] if entry["name"] == "smollm2-135m")
    assert smollm2["card"]["chat_template"] == "chatml"
    assert smollm2["card"]["quantization"] == "Q4_1"
    text = _hintwise(["models", "list"], env).stdout
    assert "mine.gguf" in text and "chat template chatml" in text


def test_add_refuses_what_llama_cpp_cannot_load(server_env, tmp_path):
    env = {**server_env, "HINTWISE_DATA_DIR": str(tmp_path / "data")}
    alien = write_vocab_gguf(tmp_path / "alien.gguf", ["a", "b"], architecture="notamodel")
    refused = _hintwise(["models", "add", str(alien)], env)
    assert refused.returncode == 1
    assert "unknown model architecture: 'notamodel'" in refused.stderr
    text = tmp_path / "notes.gguf"
    text.write_text("not a model\n" * 50)
    refused = _hintwise(["models", "add", str(text)], env)
    assert refused.returncode == 1 and "Traceback" not in refused.stderr
    assert not (tmp_path / "data" / "models").exists() or not any(
        (tmp_path / "data" / "models").iterdir()
    )


@pytest.mark.model
def test_add_from_the_hub_checks_the_published_sha256(files, gemma_path, server_env, tmp_path):
    """A hub look-alike on loopback (HF_ENDPOINT): `resolve` redirects to the storage and
    publishes the sha256 in X-Linked-Etag, as huggingface.co does."""
    env = {
        **server_env,
        "HINTWISE_DATA_DIR": str(tmp_path / "data"),
        "HF_ENDPOINT": files.base,
        "NO_PROXY": "127.0.0.1",
    }
    digest = hashlib.sha256(gemma_path.read_bytes()).hexdigest()
    resolve_path = "/google/gemma-GGUF/resolve/main/gemma.gguf"
    files.paths["/storage/blob"] = gemma_path
    files.redirects[resolve_path] = f"{files.base}/storage/blob"
    files.headers[resolve_path] = {"X-Linked-Etag": f'"{digest}"', "ETag": '"W/123"'}
    added = _hintwise(["models", "add", "hf://google/gemma-GGUF/gemma.gguf"], env)
    assert added.returncode == 0, added.stderr
    assert f"Checksum (sha256, published by the hub): {digest}" in added.stderr
    assert f"HEAD {resolve_path}" in files.methods and "GET /storage/blob" in files.methods
    saved = tmp_path / "data" / "models" / "gemma.gguf"
    assert saved.stat().st_size == gemma_path.stat().st_size and not saved.is_symlink()

    files.headers[resolve_path] = {"X-Linked-Etag": '"' + "0" * 64 + '"'}
    spoiled = _hintwise(
        ["models", "add", "hf://google/gemma-GGUF/gemma.gguf", "--name", "b.gguf"], env
    )
    assert spoiled.returncode == 1 and "sha256" in spoiled.stderr
    assert not (tmp_path / "data" / "models" / "b.gguf").exists()
