"""`hintwise complete FILE:LINE:COL`: the suggestion the server would give there, with its
latency split into prompt evaluation, generation and the rest."""

from __future__ import annotations

import asyncio
import json
import time
from pathlib import Path

import click

from hintwise.lsp_server.cli.common import (
    model_option,
    overrides,
    parse_location,
    read_source,
    settings_with,
    url_option,
)
from hintwise.lsp_server.code.documents import Document
from hintwise.lsp_server.code.syntax import language_for_path
from hintwise.lsp_server.completion.completer import Completer
from hintwise.lsp_server.completion.result import Result
from hintwise.lsp_server.engines.workers import start_worker
from hintwise.lsp_server.gate.keeper import Gatekeeper


@click.command()
@click.argument("location")
@model_option
@url_option
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON.")
@click.option("--max-tokens", type=int, help="Cap on generated tokens (completion.max_tokens).")
@click.option(
    "--multiline", type=click.Choice(["auto", "always", "never"]), help="completion.multiline"
)
@click.option("--no-healing", is_flag=True, help="Turn token healing off.")
def complete(
    location: str,
    model: str | None,
    url: str | None,
    as_json: bool,
    max_tokens: int | None,
    multiline: str | None,
    no_healing: bool,
) -> None:
    """Print the suggestion the server would give at FILE:LINE:COL (1-based)."""
    path, line, column = parse_location(location)
    document = Document(
        path.resolve().as_uri(), language_for_path(str(path)), 0, read_source(path), "utf-32"
    )
    col = _column(document, path, line, column)
    extra: dict = {}
    if max_tokens is not None:
        extra["completion.max_tokens"] = max_tokens
    if multiline:
        extra["completion.multiline"] = multiline
    if no_healing:
        extra["completion.token_healing"] = False
    settings = settings_with(overrides(model, extra, url))

    worker = start_worker(settings, notify=lambda m: click.echo(m, err=True))
    started = time.perf_counter()
    if not worker.wait_ready() or worker.engine is None:
        raise click.ClickException(f"no model: {worker.error}\nRun `hintwise doctor` for details.")
    load_ms = (time.perf_counter() - started) * 1000
    info = worker.engine.info
    prepared = time.perf_counter()
    worker.submit(lambda engine, cancelled: engine.prepare()).future.result()
    prepare_ms = (time.perf_counter() - prepared) * 1000

    gate = Gatekeeper(
        settings.gate,
        settings.data_path,
        now=time.monotonic,
        tell=lambda m: click.echo(m, err=True),
    )
    completer = Completer(worker, settings.model_spec(), gate=gate)
    offset = document.offset_at(line - 1, col - 1)
    result = asyncio.run(completer.complete(document, offset, settings.completion, automatic=False))
    worker.stop()
    if result.reason.startswith("no model:"):  # e.g. the inference server is down
        raise click.ClickException(f"{result.reason}\nRun `hintwise doctor` for details.")
    if as_json:
        payload = result.to_json()
        payload.update(
            file=str(path),
            line=line,
            column=col,
            model_path=info.path,
            fim_family=info.fim_family,
            adapter=info.adapter,
            load_ms=round(load_ms, 1),
            prepare_ms=round(prepare_ms, 1),
        )
        click.echo(json.dumps(payload, indent=2))
        return
    fim = f" (FIM: {info.fim_family})" if info.fim_family else " (prefix continuation)"
    click.echo(click.style(f"{path}:{line}:{col}  {info.name}{fim}", bold=True))
    _print_result(result, document.line_text(line - 1), col, load_ms)


def _column(document: Document, path: Path, line: int, column: int | None) -> int:
    """The 1-based column (the end of the line when not given), checked against the file."""
    lines = document.line_count()
    if not 1 <= line <= lines:
        raise click.ClickException(f"{path} has {lines} lines; line {line} does not exist")
    line_text = document.line_text(line - 1)
    col = len(line_text) + 1 if column is None else column
    if not 1 <= col <= len(line_text) + 1:
        raise click.ClickException(
            f"line {line} of {path} has {len(line_text)} characters; column {col} does not exist"
        )
    return col


def _print_result(result: Result, line_text: str, col: int, load_ms: float) -> None:
    """The line with the suggestion in place (stdout), then timings and gate scores (stderr)."""
    if result.text:
        before, after = line_text[: col - 1], line_text[col - 1 :]
        click.echo(before + click.style(result.text, fg="cyan") + after)
    else:
        click.echo(click.style(f"(no suggestion: {result.reason})", fg="yellow"))
    latency = result.latency_ms
    tokens = result.to_json()["tokens"]
    click.echo(
        f"{latency.get('total', 0):.0f} ms: prompt {latency.get('prompt', 0):.0f} ms "
        f"({tokens['evaluated']} of {tokens['prompt']} tokens evaluated), "
        f"generate {latency.get('generate', 0):.0f} ms ({tokens['generated']} tokens), "
        f"context + post-processing "
        f"{latency.get('context', 0) + latency.get('postprocess', 0):.0f} ms. "
        f"Model loaded in {load_ms:.0f} ms.",
        err=True,
    )
    scores = result.gate_scores()
    if scores:
        click.echo(
            "Acceptance gate: "
            + ", ".join(
                f"{stage} {score:.2f} (shown from {result.verdicts[stage].threshold:.2f})"
                for stage, score in scores.items()
            )
            + "; a request you invoke is never held back.",
            err=True,
        )
