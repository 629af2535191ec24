"""`hintwise review FILE... [--format text|json|sarif]` for terminals and CI."""

from __future__ import annotations

import functools
import json
import sys
from collections.abc import Callable
from pathlib import Path

import click

from hintwise import __version__
from hintwise.lsp_server.cli.common import overrides, settings_with
from hintwise.lsp_server.code.syntax import CodeError, language_for_path
from hintwise.lsp_server.code.units import Unit, find_units
from hintwise.lsp_server.config import Settings
from hintwise.lsp_server.engines.workers import start_worker
from hintwise.lsp_server.feedback.insights import review_outcomes
from hintwise.lsp_server.review import static
from hintwise.lsp_server.review.comments import SEVERITY_RANK, Comment, cap_file
from hintwise.lsp_server.review.learning import Learned, label
from hintwise.lsp_server.review.reviewer import UnitReview, review_unit
from hintwise.models.engine import Engine
from hintwise.models.worker import ModelWorker, Priority
from hintwise.telemetry import default_path

SARIF_LEVEL = {"error": "error", "warning": "warning", "info": "note"}
_MODEL_RULE = "hintwise.review"


def sarif(results: list[dict], model: str, version: str) -> dict:
    """SARIF 2.1.0: one run, one rule, one result per comment."""
    return {
        "$schema": "https://json.schemastore.org/sarif-2.1.0.json",
        "version": "2.1.0",
        "runs": [
            {
                "tool": {
                    "driver": {
                        "name": "hintwise",
                        "version": version,
                        "informationUri": "https://github.com/hintwise/hintwise",
                        "rules": [
                            {
                                "id": "hintwise.review",
                                "shortDescription": {"text": f"AI review comment ({model})"},
                            },
                            *(
                                {"id": rule, "shortDescription": {"text": rule.replace(":", " ")}}
                                for rule in sorted(
                                    {r.get("rule", _MODEL_RULE) for r in results} - {_MODEL_RULE}
                                )
                            ),
                        ],
                    }
                },
                "results": [
                    {
                        "ruleId": item.get("rule", _MODEL_RULE),
                        "level": SARIF_LEVEL[item["severity"]],
                        "message": {"text": item["message"]},
                        "locations": [
                            {
                                "physicalLocation": {
                                    "artifactLocation": {"uri": item["file"]},
                                    "region": {
                                        "startLine": item["line"],
                                        "startColumn": item["column"],
                                        "endColumn": item["end_column"],
                                    },
                                }
                            }
                        ],
                        **(
                            {
                                "fixes": [
                                    {
                                        "description": {"text": "replacement"},
                                        "artifactChanges": [
                                            {
                                                "artifactLocation": {"uri": item["file"]},
                                                "replacements": [
                                                    {
                                                        "deletedRegion": {
                                                            "startLine": item["line"],
                                                            "endLine": item["line"],
                                                        },
                                                        "insertedContent": {
                                                            "text": item["replacement"] + "\n"
                                                        },
                                                    }
                                                ],
                                            }
                                        ],
                                    }
                                ]
                            }
                            if item.get("replacement")
                            else {}
                        ),
                    }
                    for item in results
                ],
            }
        ],
    }


@click.command("review")
@click.argument("files", nargs=-1, required=True, type=click.Path(path_type=Path))
@click.option("--format", "fmt", type=click.Choice(["text", "json", "sarif"]), default="text")
@click.option("--model", "-m", metavar="PATH|NAME", help="A .gguf file or a bundled model name.")
@click.option(
    "--fail-on",
    type=click.Choice(["error", "warning", "info", "never"]),
    help="Exit 1 when a comment at or above this severity exists (default: review.fail_severity).",
)
def review_command(files: tuple[Path, ...], fmt: str, model: str | None, fail_on: str | None):
    """Review FILE... with the local model: comments as text, JSON or SARIF 2.1.0."""
    settings = settings_with(overrides(model))
    threshold = fail_on or settings.review.fail_severity
    jobs, problems = _read(files)
    worker = start_worker(settings, notify=lambda m: click.echo(m, err=True))
    try:
        if any(units for *_, units in jobs) and not worker.wait_ready():
            raise click.ClickException(f"no model: {worker.error}\nRun `hintwise doctor`.")
        rows = _review(worker, jobs, settings.review.max_per_function)
    finally:
        worker.stop()
    if settings.review.static_checks:
        rows = one_per_line(rows + _static_rows(jobs, settings))
    capped: list[dict] = []
    for path, *_ in jobs:
        mine = [r for r in rows if r["file"] == path.as_posix()]
        kept = cap_file([r["_comment"] for r in mine], settings.review.max_per_file)
        capped += [r for r in mine if r["_comment"] in kept]
    for row in capped:
        row.pop("_comment")
    _print(capped, fmt, settings.model_label(), __version__)
    failing = threshold != "never" and any(
        SEVERITY_RANK[row["severity"]] >= SEVERITY_RANK[threshold] for row in capped
    )
    sys.exit(1 if failing else 2 if problems and not capped else 0)


Job = tuple[Path, str, str, list[Unit]]


def _read(files: tuple[Path, ...]) -> tuple[list[Job], int]:
    """(path, text, language, units) of every file that can be reviewed; how many cannot."""
    jobs: list[Job] = []
    problems = 0
    for path in files:
        try:
            text = path.read_text(encoding="utf-8")
            language = language_for_path(str(path))
            jobs.append((path, text, language, find_units(text, language)))
        except (OSError, UnicodeDecodeError) as error:
            click.echo(f"hintwise: cannot read {path}: {error}", err=True)
            problems += 1
        except CodeError as error:
            click.echo(f"hintwise: skipping {path}: {error}", err=True)
            problems += 1
    return jobs, problems


def _review(worker: ModelWorker, jobs: list[Job], max_per_function: int) -> list[dict]:
    """Every unit on the model thread, with a progress bar on stderr; a row per comment."""
    rows: list[dict] = []
    total = sum(len(units) for *_, units in jobs)
    with click.progressbar(length=total, label="reviewing", file=sys.stderr, show_pos=True) as bar:
        for path, text, language, units in jobs:
            for unit in units:
                review = functools.partial(_review_unit, unit, text, language, max_per_function)
                job = worker.submit(review, Priority.BACKGROUND)
                found = job.future.result()
                bar.update(1)
                if found is not None:
                    rows += [_row(path, text, comment) for comment in found.comments]
    return rows


def _review_unit(
    unit: Unit,
    text: str,
    language: str,
    max_per_function: int,
    engine: Engine,
    cancelled: Callable[[], bool],
) -> UnitReview | None:
    return review_unit(engine, unit, text, language, set(), max_per_function, cancelled)


def _static_rows(jobs: list[Job], settings: Settings) -> list[dict]:
    """The static analyser's comments for every file, without the kinds of comment the user
    keeps dismissing in the editor (the feedback store's answers)."""
    learned = Learned()
    if settings.telemetry.enabled:
        store = default_path(settings.data_path)
        learned.load(review_outcomes(store), store)
    rows: list[dict] = []
    problem = None
    for path, text, language, units in jobs:
        result = static.check(text, language, path.name)
        if result.problem:
            problem = result.problem
            continue
        comments, _ = static.comments_for(text, language, result.findings, set())
        label(text, language, comments)
        for comment in learned.keep(comments)[0]:
            unit = next((u for u in units if u.start_line <= comment.line <= u.end_line), None)
            comment.unit = unit.key if unit else ""
            rows.append(_row(path, text, comment))
    if problem:
        click.echo(f"hintwise: reviewing without static checks: {problem}", err=True)
    return rows


def one_per_line(rows: list[dict]) -> list[dict]:
    """In line order; where the analyser found a defect, the model's comment on that line goes
    (the analyser's is the one that is surely right)."""
    static_lines = {(r["file"], r["line"]) for r in rows if r["rule"] != _MODEL_RULE}
    return sorted(
        (r for r in rows if r["rule"] != _MODEL_RULE or (r["file"], r["line"]) not in static_lines),
        key=lambda row: (row["file"], row["line"]),
    )


def _row(path: Path, text: str, comment: Comment) -> dict:
    return {
        "file": path.as_posix(),
        "line": comment.line + 1,
        "column": comment.start_character + 1,
        "end_column": max(comment.end_character, comment.start_character) + 1,
        "severity": comment.severity,
        "message": comment.message,
        "replacement": comment.replacement,
        "function": comment.unit,
        "rule": comment.kind or _MODEL_RULE,
        "_comment": comment,
    }


def _print(rows: list[dict], fmt: str, model: str, version: str) -> None:
    if fmt == "json":
        click.echo(json.dumps({"model": model, "comments": rows}, indent=2))
    elif fmt == "sarif":
        click.echo(json.dumps(sarif(rows, model, version), indent=2))
    else:
        for row in rows:
            click.echo(
                f"{row['file']}:{row['line']}:{row['column']}: {row['severity']}: {row['message']}"
                f"  [{row['function']}]"
            )
            if row["replacement"]:
                click.echo(f"    fix: {row['replacement']}")
        click.echo(f"{len(rows)} comment(s) from {model}", err=True)
