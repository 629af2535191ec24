"""`hintwise explain --traceback FILE|-` and `hintwise explain FILE:LINE --message TEXT`."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import click

from hintwise.lsp_server.cli.common import overrides, parse_location, read_source, settings_with
from hintwise.lsp_server.code.documents import uri_path
from hintwise.lsp_server.code.syntax import language_for_path
from hintwise.lsp_server.config import Settings
from hintwise.lsp_server.engines.workers import start_worker
from hintwise.lsp_server.explain import repair as repair_module
from hintwise.lsp_server.explain import tracing
from hintwise.lsp_server.explain.answer import explain
from hintwise.lsp_server.explain.question import Question, question_at, traceback_question
from hintwise.lsp_server.explain.tracebacks import TracebackError
from hintwise.models.worker import Priority

AUTO = "@traceback"  # `--run` without a value: the target the traceback names


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
@click.option(
    "--run",
    "run_target",
    metavar="[NODEID|SCRIPT]",
    is_flag=False,
    flag_value=AUTO,
    help="Run this pytest node id or script (sandboxed) to record local variables and look for "
    "a one-line fix that makes it pass (explain.run; `--run` alone with --traceback: the target "
    "named in the traceback).",
)
@click.option(
    "--repair/--no-repair",
    default=None,
    help="With --run: re-run with one-line changes to find a verified fix (explain.repair).",
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
    run_target: str | None,
    repair: bool | None,
) -> None:
    """Explain a traceback, or the error MESSAGE at FILE:LINE, with the local model."""
    extra = {} if repair is None else {"explain.repair": repair}
    settings = settings_with(overrides(model, extra))
    if traceback_file:
        question, target = _traceback_question(traceback_file, root, run_target, settings)
    elif location:
        question, target = _question_at(location, message, run_target)
        root = Path(uri_path(question.uri or "") or ".").parent
    else:
        raise click.UsageError("give FILE:LINE --message TEXT, or --traceback FILE|-")

    worker = start_worker(settings, notify=lambda m: click.echo(m, err=True))
    try:
        if not worker.wait_ready():
            raise click.ClickException(f"no model: {worker.error}\nRun `hintwise doctor`.")
        if target is not None:
            _run(worker, question, target, root, settings)
        click.echo("explaining…", err=True)
        job = worker.submit(
            lambda engine, cancelled: explain(
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


def _traceback_question(
    traceback_file: str, root: Path, run_target: str | None, settings: Settings
) -> tuple[Question, tuple[str, str] | None]:
    """The question, and what to run for it (with `--run` or `explain.run`)."""
    try:
        text = (
            sys.stdin.read()
            if traceback_file == "-"
            else Path(traceback_file).read_text(encoding="utf-8", errors="replace")
        )
    except OSError as error:
        raise click.ClickException(f"cannot read {traceback_file}: {error.strerror}") from None
    try:
        question, _, notes = traceback_question(
            text, root, lambda p: p.read_text(encoding="utf-8", errors="surrogateescape")
        )
    except TracebackError as error:
        raise click.ClickException(str(error)) from None
    question.facts.extend(notes)
    if not (settings.explain.run or run_target):
        return question, None
    return question, _target(text, root, run_target)


def _question_at(
    location: str, message: str | None, run_target: str | None
) -> tuple[Question, tuple[str, str] | None]:
    if not message:
        raise click.UsageError("FILE:LINE needs --message TEXT")
    path, line, _ = parse_location(location)
    source = read_source(path)
    lines = source.count("\n") + 1
    if not 1 <= line <= lines:
        raise click.ClickException(f"{path} has {lines} lines; line {line} does not exist")
    question = question_at(
        source, language_for_path(str(path)), line - 1, message, path.resolve().as_uri(), str(path)
    )
    return question, _target("", path.parent, run_target) if run_target else None


def _target(text: str, root: Path, run_target: str | None) -> tuple[str, str] | None:
    """The pytest node id or script to run: given, or found in the traceback."""
    if run_target and run_target != AUTO:
        return ("pytest" if "::" in run_target else "script", run_target)
    target = tracing.target_from_traceback(text, root)
    if target is None:
        click.echo(
            "hintwise: nothing to run (no pytest node id or script in the traceback)", err=True
        )
    return target


def _run(worker, question: Question, target: tuple[str, str], root: Path, settings: Settings):
    """Run the failing target (sandboxed) and, with `explain.repair`, look for a verified fix;
    what it found becomes facts of the question."""

    def score(suspect: Question) -> list:
        job = worker.submit(
            lambda engine, cancelled: repair_module.model_scores(engine, suspect, cancelled),
            Priority.BACKGROUND,
        )
        return job.future.result() or []

    click.echo(f"running {target[1]} (sandboxed, {settings.explain.run_timeout_s} s)…", err=True)
    facts, result = repair_module.ground(question, target, root, settings.explain, score)
    if result is not None:
        found = "a verified fix" if result.fix else "no verified fix"
        click.echo(
            f"tried {result.tried} one-line changes in {result.seconds:.1f} s: {found}", err=True
        )
    question.facts.extend(facts)
