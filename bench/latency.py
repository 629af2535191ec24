"""Completion latency through a real LSP client over stdio, beside raw llama.cpp doing the same.

    python bench/latency.py [--positions 60] [--model NAME|PATH] [--json OUT]
        [--phases typing,prewarm,cancel,remote,repeat,fullsync]

For each cursor position in real files (Python's standard library and this project), the line is
cut at the cursor as if being typed, the document is opened in a fresh `hintwise serve`, and:

* cold: the first request (pre-warming off), a full prompt evaluation;
* warm / typing-along: the next characters of the real line are typed one at a time with a
  request after each; a request answered by the model is "warm" (one new character on a cached
  prompt), one answered from the shown suggestion is "typing-along";
* raw: for every cold and warm request, the exact prompt token ids the server used (from
  `hintwise/status`) are replayed on a bare llama-cpp-python `Llama` in this process, from the
  same cache state, generating the same number of tokens: the cost of llama.cpp alone;
* pre-warmed open: a document is opened, the user looks at it for 5 s (pre-warming on), then
  asks; deep in a long file with and without the cursor reported (`hintwise/didMoveCursor`);
* cancellation: long generations cancelled with `$/cancelRequest`; tokens generated after the
  cancel and the time it took to stop.
* remote (`--phases remote`): the same positions, typed the same way, through a second
  `hintwise serve` whose engine is a real `python -m llama_cpp.server` with the same GGUF and
  thread count, beside the in-process engine; every request that reached that server is also
  sent straight to a mirror server (same model, same request sequence, so the same cache state)
  with plain httpx: the HTTP engine's overhead over calling the server directly. Then
  cancellations through the HTTP engine, counted on the server (its KV cache, see
  tests/inference_server.py): tokens it generated after the stream was closed.
* repeat, fullsync (`--phases repeat,fullsync`, see latency_phases.py): the same request asked
  twice in a row; typing along a suggestion with whole-document `didChange` events beside
  incremental ones.

The machine is shared and noisy, so docs/performance.md quotes ratios measured side by side in one
run.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import re
import statistics
import sys
import sysconfig
import time
from dataclasses import dataclass
from pathlib import Path

from lsprotocol import types
from pygls.lsp.client import BaseLanguageClient

ROOT = Path(__file__).resolve().parent.parent
STDLIB = Path(sysconfig.get_paths()["stdlib"])
SOURCES = [
    STDLIB / "difflib.py",
    STDLIB / "textwrap.py",
    STDLIB / "argparse.py",
    STDLIB / "json" / "decoder.py",
    STDLIB / "csv.py",
    STDLIB / "statistics.py",
    STDLIB / "fractions.py",
    STDLIB / "shlex.py",
    ROOT / "lsp_server" / "completion" / "context.py",
    ROOT / "lsp_server" / "completion" / "postprocess.py",
    ROOT / "models" / "prompt.py",
    ROOT / "models" / "llama" / "completion.py",
]
TYPED_CHARACTERS = 4


@dataclass
class Position:
    path: Path
    line: int  # 0-based
    column: int
    document: str  # the file with this line cut at the cursor
    rest: str  # what the real line goes on with


def positions(count: int) -> list[Position]:
    """Cursor positions inside function bodies, spread evenly over the source files."""
    from hintwise.lsp_server.code.syntax import DocumentSyntax, state_at

    per_file = max(1, -(-count // len(SOURCES)))
    found: list[Position] = []
    for path in SOURCES:
        text = path.read_text()
        lines = text.split("\n")
        tree = DocumentSyntax("python").update(text)
        starts = [0]
        for line in lines:
            starts.append(starts[-1] + len(line.encode()) + 1)
        eligible = []
        for index, line in enumerate(lines[1:], start=1):
            code = line.strip()
            indent = len(line) - len(line.lstrip())
            if (
                indent >= 4
                and len(code) >= 16
                and not code.startswith(("#", '"', "'", "@"))
                and lines[index - 1].strip()
                and re.match(r"[A-Za-z_]", code)
                and not state_at(tree, starts[index] + indent + 1).in_string
            ):
                eligible.append(index)
        step = max(1, len(eligible) // per_file)
        for index in eligible[::step][:per_file]:
            line = lines[index]
            indent = len(line) - len(line.lstrip())
            column = indent + max(3, int(len(line.strip()) * 0.4))
            document = "\n".join([*lines[:index], line[:column], *lines[index + 1 :]])
            found.append(Position(path, index, column, document, line[column:]))
    return found[:count]


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(share * (len(ordered) - 1)))]


def summary(values: list[float]) -> dict:
    if not values:
        return {"n": 0}
    return {
        "n": len(values),
        "p50": round(statistics.median(values), 1),
        "p95": round(percentile(values, 0.95), 1),
        "mean": round(statistics.fmean(values), 1),
    }


class Client(BaseLanguageClient):
    def __init__(self) -> None:
        super().__init__("hintwise-bench", "1")

        @self.feature(types.WINDOW_SHOW_MESSAGE)
        def show(params: types.ShowMessageParams) -> None:
            print(f"  server says: {params.message}", file=sys.stderr)

        @self.feature(types.WINDOW_LOG_MESSAGE)
        def log(params: types.LogMessageParams) -> None:
            pass


async def start(env: dict[str, str], settings: dict) -> Client:
    client = Client()
    await client.start_io(str(Path(sys.executable).with_name("hintwise")), "serve", env=env)
    await client.initialize_async(
        types.InitializeParams(
            capabilities=types.ClientCapabilities(
                text_document=types.TextDocumentClientCapabilities(
                    inline_completion=types.InlineCompletionClientCapabilities()
                )
            ),
            initialization_options=settings,
        )
    )
    client.initialized(types.InitializedParams())
    while not (current := await status(client)).prepared and current.state != "failed":
        await asyncio.sleep(0.1)
    return client


async def stop(client: Client) -> None:
    await client.shutdown_async(None)
    client.exit(None)
    await client.stop()


async def status(client: Client, with_prompt: bool = False):
    return await client.protocol.send_request_async("hintwise/status", {"with_prompt": with_prompt})


async def request(client: Client, uri: str, line: int, column: int) -> tuple[float, str]:
    started = time.perf_counter()
    answer = await client.text_document_inline_completion_async(
        types.InlineCompletionParams(
            text_document=types.TextDocumentIdentifier(uri=uri),
            position=types.Position(line=line, character=column),
            context=types.InlineCompletionContext(
                trigger_kind=types.InlineCompletionTriggerKind.Automatic
            ),
        )
    )
    elapsed = (time.perf_counter() - started) * 1000
    return elapsed, (answer.items[0].insert_text if answer and answer.items else "")


def open_document(client: Client, uri: str, text: str) -> None:
    client.text_document_did_open(
        types.DidOpenTextDocumentParams(
            text_document=types.TextDocumentItem(
                uri=uri, language_id="python", version=1, text=text
            )
        )
    )


def type_character(client: Client, uri: str, version: int, line: int, column: int, char: str):
    here = types.Position(line=line, character=column)
    client.text_document_did_change(
        types.DidChangeTextDocumentParams(
            text_document=types.VersionedTextDocumentIdentifier(uri=uri, version=version),
            content_changes=[
                types.TextDocumentContentChangePartial(
                    range=types.Range(start=here, end=here), text=char
                )
            ],
        )
    )


class RawLlama:
    """Bare llama-cpp-python, replaying the server's prompts: the cost of llama.cpp alone."""

    def __init__(self, path: str, threads: int):
        from llama_cpp import Llama

        from hintwise.models.llama.loading import avoid_amx_crash

        avoid_amx_crash()  # the same llama.cpp settings as the server's (see the function)
        self.llm = Llama(
            path, n_ctx=4096, n_batch=512, n_threads=threads, n_threads_batch=threads, verbose=False
        )

    def run(self, prompt: list[int], generated: int, cold: bool) -> float:
        """ms to go from the current cache to `prompt` and sample `generated` tokens.

        Replaying the server's requests in the same order leaves this context holding what the
        server's holds (the previous prompt and what was generated after it), so a warm replay
        reuses exactly the prefix the server reused; a cold one starts from an empty cache.
        """
        if cold:
            self.llm.reset()
        started = time.perf_counter()
        tokens = self.llm.generate(prompt, top_k=1, temp=0.0, repeat_penalty=1.0)
        for produced, _ in enumerate(tokens, start=1):
            if produced >= max(1, generated):
                break
        return (time.perf_counter() - started) * 1000

    def replay(self, last, cold: bool) -> float:
        """ms for the model calls of one server request: two when the server asked for the
        runner-up of an answer that repeated the code below (same prompt, cached)."""
        attempts = list(last.tokens.generated_per_attempt) or [last.tokens.generated]
        prompt = list(last.prompt_ids)
        return sum(
            self.run(prompt, generated, cold=cold and index == 0)
            for index, generated in enumerate(attempts)
        )


async def measure_typing(client: Client, places: list[Position], raw: RawLlama) -> dict:
    cold, warm, along, cold_raw, warm_raw, ratios_cold, ratios_warm = [], [], [], [], [], [], []
    parts: dict[str, list[float]] = {}
    second_choices = 0
    for number, place in enumerate(places):
        uri = f"file://{place.path}#{number}"
        open_document(client, uri, place.document)
        before = await status(client)
        elapsed, _ = await request(client, uri, place.line, place.column)
        after = await status(client, with_prompt=True)
        last = after.completions.last
        if after.completions.model_calls > before.completions.model_calls and last:
            cold.append(elapsed)
            raw_ms = raw.replay(last, cold=True)
            cold_raw.append(raw_ms)
            ratios_cold.append(elapsed / raw_ms)
        version, column = 2, place.column
        for char in place.rest[:TYPED_CHARACTERS]:
            type_character(client, uri, version, place.line, column, char)
            version, column = version + 1, column + 1
            before = after
            elapsed, _ = await request(client, uri, place.line, column)
            after = await status(client, with_prompt=True)
            last = after.completions.last
            if after.completions.cache_hits > before.completions.cache_hits:
                along.append(elapsed)
            elif after.completions.model_calls > before.completions.model_calls and last:
                warm.append(elapsed)
                for key, value in last.latency_ms._asdict().items():
                    parts.setdefault(key, []).append(value)
                raw_ms = raw.replay(last, cold=False)
                second_choices += len(last.tokens.generated_per_attempt) > 1
                warm_raw.append(raw_ms)
                ratios_warm.append(elapsed / raw_ms)
        client.text_document_did_close(
            types.DidCloseTextDocumentParams(text_document=types.TextDocumentIdentifier(uri=uri))
        )
        print(f"  {number + 1}/{len(places)} {place.path.name}:{place.line + 1}", file=sys.stderr)
    return {
        "cold_ms": summary(cold),
        "cold_raw_ms": summary(cold_raw),
        "cold_ratio": summary(ratios_cold),
        "warm_ms": summary(warm),
        "warm_raw_ms": summary(warm_raw),
        "warm_ratio": summary(ratios_warm),
        "warm_parts_ms": {key: summary(values) for key, values in parts.items()},
        "warm_with_second_choice": second_choices,
        "typing_along_ms": summary(along),
    }


LOOK_S = 5.0  # how long the user looks at a freshly opened file before asking


async def measure_prewarmed_open(client: Client, places: list[Position]) -> dict:
    """Open, let the user look at the file for 5 s (pre-warming on), then ask.

    Pre-warming on open evaluates the file's first prompt window: every position whose prefix
    fits in it ("top") is warm by then; a position deeper in a long file ("deep") needs a
    window the server cannot guess without knowing the cursor, so it stays cold until the first
    request, unless the editor reports where the cursor rests with `hintwise/didMoveCursor`
    ("deep_cursor": reported on open; warmed after a 1 s rest, which leaves about 4 s here to
    evaluate the window). Asking sooner than that costs up to the cold figure.
    """
    groups: dict[str, list[float]] = {"top": [], "deep": [], "deep_cursor": []}
    for number, place in enumerate(places * 2):
        group = "top" if place.line < 60 else "deep" if number < len(places) else "deep_cursor"
        if len(groups[group]) >= 8:
            continue
        uri = f"file://{place.path}#open{number}"
        open_document(client, uri, place.document)
        if group == "deep_cursor":
            client.protocol.notify(
                "hintwise/didMoveCursor",
                {
                    "textDocument": {"uri": uri},
                    "position": {"line": place.line, "character": place.column},
                },
            )
        await asyncio.sleep(LOOK_S)
        elapsed, _ = await request(client, uri, place.line, place.column)
        groups[group].append(elapsed)
    return {f"first_request_{group}_ms": summary(values) for group, values in groups.items()}


async def measure_cancellation(client: Client, rounds: int) -> dict:
    uri = "file:///bench/squares.py"
    open_document(client, uri, "# The first five hundred square numbers\nsquares = [\n    ")
    for number in range(rounds):
        params = types.InlineCompletionParams(
            text_document=types.TextDocumentIdentifier(uri=uri),
            position=types.Position(line=2, character=4),
            context=types.InlineCompletionContext(
                trigger_kind=types.InlineCompletionTriggerKind.Invoked
            ),
        )
        future = client.protocol.send_request(
            types.TEXT_DOCUMENT_INLINE_COMPLETION, params, msg_id=f"cancel-{number}"
        )
        await asyncio.sleep(0.4 + 0.1 * number)
        client.protocol.notify(types.CANCEL_REQUEST, types.CancelParams(id=f"cancel-{number}"))
        while len((await status(client)).completions.cancellations) <= number:
            await asyncio.sleep(0.02)
        future.cancel()
    records = (await status(client)).completions.cancellations
    after = [record.tokens_after_cancel for record in records]
    return {
        "rounds": len(records),
        "tokens_after_cancel_max": max(after),
        "tokens_after_cancel_mean": round(statistics.fmean(after), 2),
        "stop_ms": summary([record.stop_ms for record in records]),
        "generated_before_cancel": summary([float(record.generated_tokens) for record in records]),
    }


def replay_direct(client, prompt: str, tokens: int) -> float:
    """ms for the mirror server to answer `prompt` with `tokens` tokens, streamed, over plain
    httpx: what calling the server directly costs."""
    started = time.perf_counter()
    payload = {"prompt": prompt, "max_tokens": max(1, tokens), "temperature": 0, "top_k": 1}
    with client.stream("POST", "/v1/completions", json={**payload, "stream": True}) as response:
        for line in response.iter_lines():
            if line.strip() == "data: [DONE]":
                break
    return (time.perf_counter() - started) * 1000


async def measure_remote(env: dict, places: list[Position], gguf: Path, threads: int) -> dict:
    import tempfile

    import httpx

    sys.path.insert(0, str(ROOT / "tests"))
    from inference_server import LlamaCppServer

    with tempfile.TemporaryDirectory() as folder:
        served = LlamaCppServer(gguf, Path(folder) / "served.log", threads=threads).start()
        mirror = LlamaCppServer(gguf, Path(folder) / "mirror.log", threads=threads).start()
        try:
            quiet = {"completion": {"prewarm": False}}
            local = await start(env, quiet)
            remote = await start(env, {**quiet, "engine": {"kind": "http", "url": served.url}})
            with httpx.Client(base_url=mirror.url, timeout=120) as direct:
                typing = await _remote_typing(local, remote, direct, places)
            await stop(local)
            await stop(remote)
            cancellation = await asyncio.to_thread(_remote_cancellation, served)
        finally:
            served.kill()
            mirror.kill()
    return {"typing": typing, "cancellation": cancellation}


async def _model_call(client: Client, uri: str, line: int, column: int):
    """(ms, last answer) for a request that reached the model, else (ms, None)."""
    before = (await status(client)).completions
    elapsed, _ = await request(client, uri, line, column)
    after = (await status(client, with_prompt=True)).completions
    called = after.model_calls > before.model_calls
    # A request the engine could not serve (server slow or down) leaves the previous answer as
    # the last one: not a model call to compare.
    fresh = after.last is not None and (
        before.last is None or after.last.latency_ms != before.last.latency_ms
    )
    return elapsed, (after.last if called and fresh else None)


async def _remote_typing(local: Client, remote: Client, direct, places: list[Position]) -> dict:
    figures: dict[str, list[float]] = {}

    def add(key: str, value: float) -> None:
        figures.setdefault(key, []).append(value)

    for number, place in enumerate(places):
        uri = f"file://{place.path}#remote{number}"
        open_document(local, uri, place.document)
        open_document(remote, uri, place.document)
        version, column = 2, place.column
        for step, char in enumerate(["", *place.rest[:TYPED_CHARACTERS]]):
            if char:
                type_character(local, uri, version, place.line, column, char)
                type_character(remote, uri, version, place.line, column, char)
                version, column = version + 1, column + 1
            kind = "cold" if step == 0 else "warm"
            local_ms, local_last = await _model_call(local, uri, place.line, column)
            remote_ms, remote_last = await _model_call(remote, uri, place.line, column)
            if local_last is not None:
                add(f"{kind}_local_ms", local_ms)
            if remote_last is None:
                continue
            add(f"{kind}_remote_ms", remote_ms)
            direct_ms = replay_direct(direct, remote_last.prompt_text, remote_last.tokens.generated)
            add(f"{kind}_direct_ms", direct_ms)
            add(f"{kind}_remote_over_direct", remote_ms / direct_ms)
            add(f"{kind}_remote_minus_direct_ms", remote_ms - direct_ms)
            if local_last is not None:
                add(f"{kind}_remote_over_local", remote_ms / local_ms)
        for client in (local, remote):
            client.text_document_did_close(
                types.DidCloseTextDocumentParams(
                    text_document=types.TextDocumentIdentifier(uri=uri)
                )
            )
        print(f"  remote {number + 1}/{len(places)} {place.path.name}", file=sys.stderr)
    return {key: summary(values) for key, values in sorted(figures.items())}


def _remote_cancellation(server, rounds: int = 6) -> dict:
    """Cancel generations through the HTTP engine after 4, 6, ... tokens and count, in the
    server's KV cache, how many it generated after the stream was closed."""
    from inference_server import tokens_generated

    from hintwise.models.engine import CompletionRequest
    from hintwise.models.http.engine import HttpEngine
    from hintwise.models.http.options import HttpOptions

    engine = HttpEngine(HttpOptions(url=server.url, logprobs="off"))
    prompt = "import os\nimport sys\n\n\ndef main():\n"
    full = engine.complete(
        CompletionRequest(prefix=prompt, max_tokens=96, time_limit_s=120), lambda: False
    )
    after, stop_ms = [], []
    for number in range(rounds):
        wanted = 4 + 2 * number
        state: dict[str, float] = {}

        def cancelled(wanted: int = wanted, state: dict = state) -> bool:
            if "at" not in state and engine.live_generated >= wanted:
                state.update(at=engine.live_generated, time=time.perf_counter())
            return "at" in state

        engine.complete(
            CompletionRequest(prefix=prompt, max_tokens=96, time_limit_s=120), cancelled
        )
        stop_ms.append((time.perf_counter() - state["time"]) * 1000)
        time.sleep(1.5)  # a server that went on would be dozens of tokens further by now
        after.append(tokens_generated(server, prompt, full.text) - state["at"])
    engine.close()
    return {
        "rounds": rounds,
        "tokens_after_cancel_max": max(after),
        "tokens_after_cancel_mean": round(statistics.fmean(after), 2),
        "tokens_after_cancel": after,
        "stop_ms": summary(stop_ms),
    }


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--positions", type=int, default=60)
    parser.add_argument("--model", default=None, help="bundled name or GGUF path")
    parser.add_argument("--cancel-rounds", type=int, default=10)
    parser.add_argument("--json", type=Path, default=None, help="write the results here")
    parser.add_argument("--phases", default="typing,prewarm,cancel")
    args = parser.parse_args()

    sys.path.insert(0, str(ROOT))
    from hintwise.lsp_server.config import from_environment
    from hintwise.lsp_server.engines.choice import model_path
    from hintwise.models.llama.loading import default_threads

    env = dict(os.environ)
    if args.model:
        env["HINTWISE_MODEL"] = args.model
        os.environ["HINTWISE_MODEL"] = args.model
    settings = from_environment()
    gguf = model_path(settings, lambda message: print(message, file=sys.stderr))
    threads = settings.model.threads or default_threads()
    places = positions(args.positions)
    print(f"{len(places)} positions, model {gguf.name}, {threads} threads", file=sys.stderr)

    phases = set(args.phases.split(","))
    typing = prewarmed = cancellation = remote = repeat = fullsync = None
    if "typing" in phases:
        raw = RawLlama(str(gguf), threads)
        client = await start(env, {"completion": {"prewarm": False}})
        typing = await measure_typing(client, places, raw)
        await stop(client)
        del raw
    if "prewarm" in phases:
        client = await start(env, {"completion": {"prewarm": True}})
        prewarmed = await measure_prewarmed_open(client, positions(4 * args.positions))
        await stop(client)
    if "cancel" in phases:
        long_generations = {
            "max_tokens": 400,
            "time_limit_ms": 60000,
            "multiline": "always",
            "max_lines": 400,
            "prewarm": False,
        }
        client = await start(env, {"completion": long_generations})
        cancellation = await measure_cancellation(client, args.cancel_rounds)
        await stop(client)

    if "remote" in phases:
        remote = await measure_remote(env, places, gguf, threads)
    if phases & {"repeat", "fullsync"}:
        from latency_phases import QUIET, measure_fullsync, measure_repeat

        if "repeat" in phases:
            client = await start(env, QUIET)
            repeat = await measure_repeat(client, places)
            await stop(client)
        if "fullsync" in phases:
            fullsync = await measure_fullsync(env, places, gguf)

    results = {
        "date": time.strftime("%Y-%m-%d"),
        "machine": f"{platform.machine()}, {os.cpu_count()} CPUs, {platform.platform()}",
        "model": gguf.name,
        "threads": threads,
        "positions": len(places),
        "typing": typing,
        "prewarmed_open": prewarmed,
        "cancellation": cancellation,
        "remote": remote,
        "repeat": repeat,
        "fullsync": fullsync,
    }
    text = json.dumps(results, indent=2)
    print(text)
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(text)


if __name__ == "__main__":
    asyncio.run(main())
