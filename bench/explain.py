"""Explanations of failing code (HumanEvalFix): hintwise's grounded pipeline beside a naive prompt.

    python bench/explain.py [--models gemma3-270m,smollm2-135m] [--limit N] [--json OUT]

Data: ../shared/data/bugfix/humanevalfix.jsonl (164 buggy Python functions with their tests; MIT,
from bigcode-project/octopack). Each buggy program (function + tests + `check(...)`) is written
to a temporary workspace and run once (10 s timeout) to get its real traceback. Scored per
problem: the culprit line is the line the fix changes (exact, and ±1); a proposed fix passes when
the program with the culprit line replaced by it passes the tests (executed, 10 s timeout).

Pipelines, same model, same process, greedy:
  naive     the traceback and the whole file in one free-text prompt: "which line causes this
            and how should it read? `line N: code`"; the first such answer is the culprit/fix;
  grounded+run  the same with `explain.run` on: the program re-run under the tracer, the
            traced function's local values line by line added as facts;
  grounded  exactly what `hintwise explain --traceback` runs (lsp_server.explain): frames mapped
            to the workspace, the called function cut out with tree-sitter, the lines holding
            the tokens the model least expected as facts and as the only culprit choices, JSON
            schema, a fix only when it parses in place.
Rates come with 95% Wilson intervals, the difference with a paired bootstrap interval.
Every answer a user would read is also checked (lsp_server/explain/checks.py): counted per
pipeline, the answers with a self-contradiction (in the text or in a fact), repetition, (almost)
no text, or a fix that only renames identifiers or repeats the line.
"""

from __future__ import annotations

import argparse
import dataclasses
import difflib
import json
import random
import re
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DATA = ROOT.parent / "shared" / "data" / "bugfix" / "humanevalfix.jsonl"
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from fim_quality import paired_difference, wilson  # noqa: E402

NAIVE_PROMPT = (
    "This Python program fails:\n\n```\n{traceback}\n```\n\n```python\n{code}\n```\n\n"
    "Which line causes the failure, and how should it read? Answer as `line N: corrected code`."
)


def program(row: dict) -> str:
    return f"{row['buggy_code']}\n\n{row['test']}\ncheck({row['entry_point']})\n"


def run(source: str, folder: Path) -> tuple[bool, str]:
    path = folder / "solution.py"
    path.write_text(source)
    try:
        done = subprocess.run(
            [sys.executable, "solution.py"], cwd=folder, capture_output=True, text=True, timeout=10
        )
    except subprocess.TimeoutExpired:
        return False, "TimeoutError: the program did not finish in 10 s (infinite loop?)"
    return done.returncode == 0, done.stderr


def buggy_lines(row: dict, source: str) -> set[int]:
    """0-based lines of the program that the fix changes (or next to which it inserts)."""
    fixed = f"{row['fixed_code']}\n\n{row['test']}\ncheck({row['entry_point']})\n"
    matcher = difflib.SequenceMatcher(a=source.split("\n"), b=fixed.split("\n"), autojunk=False)
    lines: set[int] = set()
    for tag, a0, a1, _, _ in matcher.get_opcodes():
        if tag in ("replace", "delete"):
            lines.update(range(a0, a1))
        elif tag == "insert":
            lines.add(max(a0 - 1, 0))
    return lines


def fix_passes(source: str, line: int, fix: str | None, folder: Path) -> bool:
    if not fix:
        return False
    lines = source.split("\n")
    old = lines[line]
    indent = old[: len(old) - len(old.lstrip())]
    new = [indent + part if part == part.lstrip() else part for part in fix.strip("\n").split("\n")]
    return run("\n".join([*lines[:line], *new, *lines[line + 1 :]]), folder)[0]


def check_failures(text: str, facts: list[str], line_code: str, fix: str | None) -> list[str]:
    """The checks an answer a user would read fails (none for a sound one)."""
    from hintwise.lsp_server.explain import checks

    failed = []
    if checks.contradiction(text) or any(checks.contradiction(fact) for fact in facts):
        failed.append("contradiction")
    if checks.repetition(text):
        failed.append("repetition")
    if checks.empty(text):
        failed.append("empty")
    if checks.fix_problem(line_code, fix) in (
        "the fix only renames an identifier",
        "the fix is the line as it is",
    ):
        failed.append("rename-only fix")
    return failed


def naive(engine, source: str, traceback: str) -> tuple[int | None, str | None, str, list[str]]:
    from hintwise.lsp_server.code.units import numbered
    from hintwise.models.engine import GenerationRequest

    prompt = NAIVE_PROMPT.format(traceback=traceback.strip(), code=numbered(source, 0, 400))
    text = engine.generate(
        GenerationRequest(messages=[{"role": "user", "content": prompt}], max_tokens=128),
        lambda: False,
    ).text
    found = re.search(r"line (\d+)\s*:?\s*`?([^`\n]*)", text, re.I)
    if not found:
        return None, None, text, check_failures(text, [], "", None)
    code = re.sub(r"^\s*\d+\s*\|\s?", "", found.group(2)).strip() or None
    line = int(found.group(1)) - 1
    lines = source.split("\n")
    line_code = lines[line] if 0 <= line < len(lines) else ""
    return line, code, text, check_failures(text, [], line_code, code)


def grounded(
    engine, folder: Path, traceback: str, execute: bool = False
) -> tuple[int | None, str | None, str, list[str]]:
    from hintwise.lsp_server.explain import tracing
    from hintwise.lsp_server.explain.answer import explain
    from hintwise.lsp_server.explain.question import traceback_question
    from hintwise.lsp_server.explain.tracebacks import TracebackError

    try:
        question, _, _ = traceback_question(traceback, folder, Path.read_text)
    except TracebackError as error:
        return None, None, str(error), []
    if execute:
        traced = tracing.run_traced(
            "script",
            str(folder / "solution.py"),
            folder,
            folder / "solution.py",
            question.function,
        )
        question.facts.extend(traced.facts)
    result = explain(engine, question, lambda: False)
    line = result.culprit["line"]
    lines = (folder / "solution.py").read_text().split("\n")
    line_code = lines[line] if 0 <= line < len(lines) else ""
    failed = check_failures(result.explanation, result.facts, line_code, result.fix)
    return line, result.fix, result.raw, failed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--models", default="gemma3-270m,smollm2-135m")
    parser.add_argument("--limit", type=int, default=None)
    parser.add_argument("--json", type=Path, default=None)
    parser.add_argument(
        "--pipelines",
        default="naive,grounded,grounded+run",
        help="which pipelines to run (comma-separated; the differences need their pairs)",
    )
    args = parser.parse_args()
    if not DATA.exists():
        sys.exit(f"{DATA} not found: this benchmark reads ../shared/data in place")
    from hintwise.lsp_server.config import Settings, from_environment
    from hintwise.lsp_server.engines.choice import load_engine

    rows = [json.loads(line) for line in DATA.read_text().splitlines() if line.strip()]
    if args.limit:
        rows = random.Random(0).sample(rows, min(args.limit, len(rows)))
    report: dict = {"rows": len(rows), "date": time.strftime("%Y-%m-%d"), "models": {}}
    for model in args.models.split(","):
        settings = from_environment(Settings())
        settings = dataclasses.replace(
            settings, model=dataclasses.replace(settings.model, name=model, path="")
        )
        engine = load_engine(settings)
        results: dict = {}
        for name in args.pipelines.split(","):
            exact, near, fixed, seconds, samples = [], [], [], [], []
            failures: dict[str, int] = {}
            for index, row in enumerate(rows):
                with tempfile.TemporaryDirectory() as tmp:
                    folder = Path(tmp)
                    source = program(row)
                    _, traceback = run(source, folder)
                    started = time.perf_counter()
                    if name == "naive":
                        line, fix, raw, failed = naive(engine, source, traceback)
                    else:
                        line, fix, raw, failed = grounded(
                            engine, folder, traceback, name != "grounded"
                        )
                    for check in failed:
                        failures[check] = failures.get(check, 0) + 1
                    seconds.append(time.perf_counter() - started)
                    target = buggy_lines(row, source)
                    exact.append(line is not None and line in target)
                    near.append(line is not None and any(abs(line - t) <= 1 for t in target))
                    ok = (
                        line is not None
                        and 0 <= line < source.count("\n")
                        and fix_passes(source, line, fix, folder)
                    )
                    fixed.append(ok)
                samples.append(
                    {
                        "task": row["task_id"],
                        "line": line,
                        "target": sorted(target),
                        "fix": fix,
                        "passes": ok,
                        "raw": raw[:500],
                        "checks_failed": failed,
                    }
                )
                print(
                    f"{model} {name} {index + 1}/{len(rows)} culprit={exact[-1]} "
                    f"near={near[-1]} fix={ok} ({seconds[-1]:.1f} s)",
                    file=sys.stderr,
                )
            n = len(rows)
            results[name] = {
                "culprit_exact": round(100 * sum(exact) / n, 1),
                "culprit_exact_ci95": wilson(sum(exact), n),
                "culprit_within_1": round(100 * sum(near) / n, 1),
                "culprit_within_1_ci95": wilson(sum(near), n),
                "fix_passes": round(100 * sum(fixed) / n, 1),
                "fix_passes_ci95": wilson(sum(fixed), n),
                "seconds_p50": round(statistics.median(seconds), 1),
                "checks_failed": failures,  # answers failing each check (zero for grounded)
                "exact": exact,
                "samples": samples,
            }
        for key, (a, b) in {
            "difference_exact": ("naive", "grounded"),
            "difference_exact_run": ("grounded", "grounded+run"),
        }.items():
            if a in results and b in results:
                results[key] = paired_difference(results[a]["exact"], results[b]["exact"])
        engine.close()
        report["models"][model] = results
        print(
            json.dumps(
                {
                    model: {
                        key: {k: v for k, v in value.items() if k not in ("exact", "samples")}
                        if key in ("naive", "grounded", "grounded+run")
                        else value
                        for key, value in results.items()
                    }
                },
                indent=2,
            )
        )
        if args.json:
            args.json.write_text(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
