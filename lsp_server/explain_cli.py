"""`hintwise explain --traceback FILE|-` and `hintwise explain FILE:LINE --message TEXT`."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import click

from lsp_server import explain
from lsp_server.review import ReviewError
from lsp_server.syntax import language_for_path


@click.command("explain")
@click.argument("location", required=False)
@click.option("--traceback", "traceback_file", metavar="FILE|-", help="A traceback to explain.")
@click.option("--message", help="The error message at FILE:LINE.")
@click.option(
    "--root",
    type=click.Path(file_okay=False, path_type=Path),
    default=".",
    help="Workspace the traceback's frames are looked up in (default: here).",
)
@click.option("--model", "-m", metavar="PATH|NAME", help="A .gguf file or a bundled model name.")
@click.option("--json", "as_json", is_flag=True, help="Print the answer as JSON.")
def explain_command(
    location: str | None,
    traceback_file: str | None,
    message: str | None,
    root: Path,
    model: str | None,
    as_json: bool,
) -> None:
    """Explain a traceback, or the error MESSAGE at FILE:LINE, with the local model."""
    from lsp_server.cli import _overrides, _parse_location, _settings
    from lsp_server.engine_setup import start_worker
    from models.worker import Priority

    settings = _settings(_overrides(model))
    notes: list[str] = []
    if traceback_file:
        try:
            text = (
                sys.stdin.read()
                if traceback_file == "-"
                else Path(traceback_file).read_text(encoding="utf-8", errors="replace")
            )
        except OSError as error:
            raise click.ClickException(f"cannot read {traceback_file}: {error.strerror}") from None
        try:
            question, _, notes = explain.traceback_question(
                text, root, lambda p: p.read_text(encoding="utf-8", errors="surrogateescape")
            )
        except ReviewError as error:
            raise click.ClickException(str(error)) from None
        question.facts.extend(notes)
    elif location:
        if not message:
            raise click.UsageError("FILE:LINE needs --message TEXT")
        path, line, _ = _parse_location(location)
        try:
            source = path.read_text(encoding="utf-8", errors="surrogateescape")
        except OSError as error:
            raise click.ClickException(f"cannot read {path}: {error.strerror}") from None
        lines = source.count("\n") + 1
        if not 1 <= line <= lines:
            raise click.ClickException(f"{path} has {lines} lines; line {line} does not exist")
        question = explain.question_at(
            source,
            language_for_path(str(path)),
            line - 1,
            message,
            path.resolve().as_uri(),
            str(path),
        )
    else:
        raise click.UsageError("give FILE:LINE --message TEXT, or --traceback FILE|-")

    worker = start_worker(settings, notify=lambda m: click.echo(m, err=True))
    try:
        if not worker.wait_ready():
            raise click.ClickException(f"no model: {worker.error}\nRun `hintwise doctor`.")
        click.echo("explaining…", err=True)
        job = worker.submit(
            lambda engine, cancelled: explain.explain(
                engine, question, cancelled, settings.explain.max_tokens
            ),
            Priority.BACKGROUND,
        )
        result = job.future.result()
    finally:
        worker.stop()
    if as_json:
        payload = result.to_json()
        payload.update(
            culprit_location=result.culprit_path,
            explanation=result.explanation,
            runtime_facts=[f for f in result.facts if f.startswith("runtime:")],
            model=settings.model_label(),
        )
        click.echo(json.dumps(payload, indent=2))
    else:
        click.echo(result.markdown)
