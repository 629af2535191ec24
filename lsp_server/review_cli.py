"""`hintwise review FILE... [--format text|json|sarif]` for terminals and CI."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import click

from hintwise.lsp_server import review
from hintwise.lsp_server.syntax import language_for_path

SARIF_LEVEL = {"error": "error", "warning": "warning", "info": "note"}


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
                            }
                        ],
                    }
                },
                "results": [
                    {
                        "ruleId": "hintwise.review",
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
    from hintwise.lsp_server.cli import _overrides, _settings
    from hintwise.lsp_server.engine_setup import start_worker
    from hintwise import __version__
    from hintwise.models.worker import Priority

    settings = _settings(_overrides(model))
    threshold = fail_on or settings.review.fail_severity
    jobs: list[tuple[Path, str, str, list[review.Unit]]] = []
    problems = 0
    for path in files:
        try:
            text = path.read_text(encoding="utf-8")
            language = language_for_path(str(path))
            jobs.append((path, text, language, review.find_units(text, language)))
        except (OSError, UnicodeDecodeError) as error:
            click.echo(f"hintwise: cannot read {path}: {error}", err=True)
            problems += 1
        except review.ReviewError as error:
            click.echo(f"hintwise: skipping {path}: {error}", err=True)
            problems += 1
    total = sum(len(units) for *_, units in jobs)
    results: list[dict] = []
    worker = start_worker(settings, notify=lambda m: click.echo(m, err=True))
    try:
        if total and not worker.wait_ready():
            raise click.ClickException(f"no model: {worker.error}\nRun `hintwise doctor`.")
        with click.progressbar(
            length=total, label="reviewing", file=sys.stderr, show_pos=True
        ) as bar:
            for path, text, language, units in jobs:
                for unit in units:
                    job = worker.submit(
                        lambda engine, cancelled, unit=unit, text=text, language=language: (
                            review.review_unit(
                                engine,
                                unit,
                                text,
                                language,
                                set(),
                                settings.review.max_per_function,
                                cancelled,
                            )
                        ),
                        Priority.BACKGROUND,
                    )
                    found = job.future.result()
                    bar.update(1)
                    if found is None:
                        continue
                    for comment in found.comments:
                        results.append(_row(path, text, comment))
        capped: list[dict] = []
        for path, *_ in jobs:
            mine = [r for r in results if r["file"] == path.as_posix()]
            kept = review.cap_file([r["_comment"] for r in mine], settings.review.max_per_file)
            capped += [r for r in mine if r["_comment"] in kept]
    finally:
        worker.stop()
    for row in capped:
        row.pop("_comment")
    _print(capped, fmt, settings.model_label(), __version__)
    rank = review.SEVERITY_RANK
    failing = threshold != "never" and any(
        rank[row["severity"]] >= rank[threshold] for row in capped
    )
    sys.exit(1 if failing else 2 if problems and not capped else 0)


def _row(path: Path, text: str, comment: review.Comment) -> dict:
    return {
        "file": path.as_posix(),
        "line": comment.line + 1,
        "column": comment.start_character + 1,
        "end_column": max(comment.end_character, comment.start_character) + 1,
        "severity": comment.severity,
        "message": comment.message,
        "replacement": comment.replacement,
        "function": comment.unit,
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
