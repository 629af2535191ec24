"""The `hintwise` command: serve the LSP, complete from a terminal, check the installation."""

from __future__ import annotations

import asyncio
import json
import logging
import sys
import time
from pathlib import Path

import click

from hintwise.lsp_server import config


def _overrides(model: str | None, extra: dict | None = None, url: str | None = None) -> dict:
    values = dict(extra or {})
    if url:
        values.update({"engine.kind": "http", "engine.url": url})
    if model:
        from hintwise.models.files.bundled import is_bundled_name

        values["model.name" if is_bundled_name(model) else "model.path"] = model
        if is_bundled_name(model):
            values["model.path"] = ""
    return values


def _settings(overrides: dict) -> config.Settings:
    settings, problems = config.apply(config.from_environment(), overrides)
    for problem in problems:
        click.echo(f"hintwise: ignoring a setting: {problem}", err=True)
    return settings


model_option = click.option(
    "--model",
    "-m",
    metavar="PATH|NAME",
    help="A .gguf file, or a bundled model name (gemma3-270m, smollm2-135m). "
    "Default: $HINTWISE_MODEL, else gemma3-270m.",
)


url_option = click.option(
    "--url",
    metavar="URL",
    help="Use the OpenAI-compatible inference server at URL (llama-server, "
    "python -m llama_cpp.server, vLLM, Ollama) instead of a local model.",
)


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="hintwise")
def main() -> None:
    """hintwise: a local AI assistant for any LSP editor, run on this machine."""


class _QuietDisconnect(logging.Filter):
    """A client that closed the connection is not an error worth a traceback: one line, once."""

    def __init__(self) -> None:
        super().__init__()
        self.reported = False

    def filter(self, record: logging.LogRecord) -> bool:
        error = record.exc_info[1] if record.exc_info else None
        if isinstance(error, BrokenPipeError | ConnectionResetError):
            if self.reported:
                return False
            self.reported = True
            record.msg, record.args, record.exc_info = "the client disconnected", (), None
        return True


@main.command()
@click.option("--tcp", "tcp", metavar="HOST:PORT", help="Listen on TCP instead of stdio.")
@model_option
@url_option
@click.option("--log-file", type=click.Path(dir_okay=False), help="Write the server log here.")
@click.option(
    "--log-level",
    type=click.Choice(["debug", "info", "warning", "error"]),
    default="warning",
    show_default=True,
)
def serve(
    tcp: str | None, model: str | None, url: str | None, log_file: str | None, log_level: str
) -> None:
    """Run the language server (stdio by default)."""
    handler: logging.Handler = (
        logging.FileHandler(log_file) if log_file else logging.StreamHandler(sys.stderr)
    )
    logging.basicConfig(
        level=log_level.upper(),
        handlers=[handler],
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    handler.addFilter(_QuietDisconnect())
    from hintwise.lsp_server.server import create_server

    server = create_server(overrides=_overrides(model, url=url))
    try:
        if tcp:
            host, _, port = tcp.rpartition(":")
            if not port.isdigit():
                raise click.BadParameter(
                    "expected HOST:PORT, e.g. 127.0.0.1:2087", param_hint="--tcp"
                )
            server.start_tcp(host or "127.0.0.1", int(port))
        else:
            server.start_io()
    finally:
        server.stop()


def _parse_location(location: str) -> tuple[Path, int, int | None]:
    """FILE:LINE[:COL], 1-based; a missing column means the end of the line."""
    parts = location.rsplit(":", 2)
    if len(parts) == 3 and parts[1].isdigit() and parts[2].isdigit():
        return Path(parts[0]), int(parts[1]), int(parts[2])
    parts = location.rsplit(":", 1)
    if len(parts) == 2 and parts[1].isdigit():
        return Path(parts[0]), int(parts[1]), None
    raise click.BadParameter("expected FILE:LINE:COL (1-based), e.g. examples/primes.py:12:9")


@main.command()
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
    from hintwise.lsp_server.completion import Completer
    from hintwise.lsp_server.documents import Document
    from hintwise.lsp_server.engine_setup import start_worker
    from hintwise.lsp_server.gate import Gatekeeper
    from hintwise.lsp_server.syntax import language_for_path

    path, line, column = _parse_location(location)
    try:
        text = path.read_text(encoding="utf-8", errors="surrogateescape")
    except OSError as error:
        raise click.ClickException(f"cannot read {path}: {error.strerror}") from None
    extra: dict = {}
    if max_tokens is not None:
        extra["completion.max_tokens"] = max_tokens
    if multiline:
        extra["completion.multiline"] = multiline
    if no_healing:
        extra["completion.token_healing"] = False
    settings = _settings(_overrides(model, extra, url))

    document = Document(path.resolve().as_uri(), language_for_path(str(path)), 0, text, "utf-32")
    lines = document.line_count()
    if not 1 <= line <= lines:
        raise click.ClickException(f"{path} has {lines} lines; line {line} does not exist")
    line_text = document.line_text(line - 1)
    col = len(line_text) + 1 if column is None else column
    if not 1 <= col <= len(line_text) + 1:
        raise click.ClickException(
            f"line {line} of {path} has {len(line_text)} characters; column {col} does not exist"
        )
    offset = document.offset_at(line - 1, col - 1)

    worker = start_worker(settings, notify=lambda m: click.echo(m, err=True))
    started = time.perf_counter()
    if not worker.wait_ready():
        raise click.ClickException(f"no model: {worker.error}\nRun `hintwise doctor` for details.")
    load_ms = (time.perf_counter() - started) * 1000
    engine = worker.engine
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
            model_path=engine.info.path,
            fim_family=engine.info.fim_family,
            load_ms=round(load_ms, 1),
            prepare_ms=round(prepare_ms, 1),
        )
        click.echo(json.dumps(payload, indent=2))
        return
    header = f"{path}:{line}:{col}  {engine.info.name}"
    header += (
        f" (FIM: {engine.info.fim_family})" if engine.info.fim_family else " (prefix continuation)"
    )
    click.echo(click.style(header, bold=True))
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


@main.command()
@model_option
@url_option
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON.")
@click.option("--no-speed", is_flag=True, help="Skip the prompt/decode speed measurement.")
def doctor(model: str | None, url: str | None, as_json: bool, no_speed: bool) -> None:
    """Check the installation: model, FIM support, speed, data directory, grammars."""
    from hintwise.lsp_server.doctor import render, run_checks

    report = run_checks(_settings(_overrides(model, url=url)), measure=not no_speed)
    if as_json:
        click.echo(json.dumps(report, indent=2))
    else:
        click.echo(render(report))
    sys.exit(1 if report["problems"] else 0)


def _register_groups() -> None:
    from hintwise.lsp_server.explain_cli import explain_command
    from hintwise.lsp_server.feedback_cli import feedback
    from hintwise.lsp_server.gate_cli import gate
    from hintwise.lsp_server.models_cli import models
    from hintwise.lsp_server.review_cli import review_command

    main.add_command(feedback)
    main.add_command(gate)
    main.add_command(models)
    main.add_command(review_command)
    main.add_command(explain_command)


_register_groups()

if __name__ == "__main__":
    main()
