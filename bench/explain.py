"""Explanations of failing code (HumanEvalFix): hintwise's grounded pipeline beside a naive prompt.

    python bench/explain.py [--models gemma3-270m,smollm2-135m] [--limit N] [--json OUT]

Data: ../shared/data/bugfix/humanevalfix.jsonl (164 buggy Python functions with their tests; MIT,
from bigcode-project/octopack); the whole set unless `--limit`. Each buggy program (function +
tests + `check(...)`) is written to a temporary workspace and run once (10 s timeout) to get its
real traceback. Scored per problem: the culprit line is the line the fix changes (exact, and ±1);
a proposed fix passes when the program with the culprit line replaced by it (deleted, for an
empty verified fix) passes the tests (executed, 10 s timeout).

Pipelines, same model, same process, greedy, each row through all three in turn:
  naive     the traceback and the whole file in one free-text prompt: "which line causes this
            and how should it read? `line N: code`"; the first such answer is the culprit/fix;
  grounded  exactly what `hintwise explain --traceback` runs (lsp_server.explain): frames mapped
            to the workspace, the called function cut out with tree-sitter, the lines holding
            the tokens the model least expected as facts and as the only culprit choices, JSON
            schema, a fix only when it parses in place;
  grounded+run  the same with `explain.run` on, as `hintwise explain --traceback F --run` runs it
            (explain/repair.ground): the program re-run sandboxed, then one-line edits of the
            function re-run until one passes (explain.repair, default budget); a passing edit
            is a verified fix that decides culprit and fix, else the traced locals are facts.
Rates come with 95% Wilson intervals, the differences with a paired bootstrap interval, and per
bug type. With `--json OUT` the report is rewritten after every row and rows already in it are
not run again (resume an interrupted run with the same command).
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
import signal
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
    """Run the program (10 s); a program still running then is interrupted as a user would,
    with Ctrl-C (SIGINT), which gives the traceback of where it was looping."""
    path = folder / "solution.py"
    path.write_text(source)
    process = subprocess.Popen(
        [sys.executable, "solution.py"],
        cwd=folder,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        _, stderr = process.communicate(timeout=10)
    except subprocess.TimeoutExpired:
        process.send_signal(signal.SIGINT)
        try:
            _, stderr = process.communicate(timeout=5)
        except subprocess.TimeoutExpired:
            process.kill()
            process.communicate()
            return False, "TimeoutError: the program did not finish in 10 s (infinite loop?)"
        return False, stderr
    return process.returncode == 0, stderr


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
    """The program with `line` as `fix` ("" deletes it: a verified fix may be a deletion)."""
    if fix is None or not 0 <= line < source.count("\n"):
        return False
    lines = source.split("\n")
    if fix == "":
        return run("\n".join([*lines[:line], *lines[line + 1 :]]), folder)[0]
    old = lines[line]
    indent = old[: len(old) - len(old.lstrip())]
    new = [indent + part if part == part.lstrip() else part for part in fix.strip("\n").split("\n")]
    return run("\n".join([*lines[:line], *new, *lines[line + 1 :]]), folder)[0]


def check_failures(
    text: str, facts: list[str], line_code: str, fix: str | None, verified: bool = False
) -> list[str]:
    """The checks an answer a user would read fails (none for a sound one). A verified fix (the
    failing run passes with it) is no rename however little it changes: `islower` → `isupper`."""
    from hintwise.lsp_server.explain import checks

    failed = []
    if checks.contradiction(text) or any(checks.contradiction(fact) for fact in facts):
        failed.append("contradiction")
    if checks.repetition(text):
        failed.append("repetition")
    if checks.empty(text):
        failed.append("empty")
    if not verified and checks.fix_problem(line_code, fix) in (
        "the fix only renames an identifier",
        "the fix is the line as it is",
    ):
        failed.append("rename-only fix")
    return failed


def naive(engine, source: str, traceback: str) -> tuple[int | None, str | None, str]:
    from hintwise.lsp_server.code.units import numbered
    from hintwise.models.engine import GenerationRequest

    prompt = NAIVE_PROMPT.format(traceback=traceback.strip(), code=numbered(source, 0, 400))
    text = engine.generate(
        GenerationRequest(messages=[{"role": "user", "content": prompt}], max_tokens=128),
        lambda: False,
    ).text
    found = re.search(r"line (\d+)\s*:?\s*`?([^`\n]*)", text, re.I)
    if not found:
        return None, None, text
    code = re.sub(r"^\s*\d+\s*\|\s?", "", found.group(2)).strip() or None
    return int(found.group(1)) - 1, code, text


def grounded(engine, folder: Path, traceback: str, execute: bool = False) -> dict:
    """The culprit line, fix and raw answer of the pipeline (with the repair's outcome)."""
    from hintwise.lsp_server.config import ExplainSettings
    from hintwise.lsp_server.explain import repair, tracing
    from hintwise.lsp_server.explain.answer import explain
    from hintwise.lsp_server.explain.question import traceback_question
    from hintwise.lsp_server.explain.tracebacks import TracebackError

    try:
        question, _, _ = traceback_question(traceback, folder, Path.read_text)
    except TracebackError as error:
        return {"line": None, "fix": None, "raw": str(error)}
    found: dict = {}
    if execute:
        target = tracing.target_from_traceback(traceback, folder) or (
            "script",
            str(folder / "solution.py"),
        )
        settings = ExplainSettings(run=True)
        facts, result = repair.ground(
            question,
            target,
            folder,
            settings,
            lambda q: repair.model_scores(engine, q, lambda: False),
        )
        question.facts.extend(facts)
        if result is not None:
            edit = result.edit
            found = {
                "repair_tried": result.tried,
                "repair_candidates": result.candidates,
                "repair_seconds": round(result.seconds, 2),
                "repair_line": edit.line if edit else None,
                "repair_kind": edit.kind if edit else None,
            }
    result = explain(engine, question, lambda: False)
    line = result.culprit["line"] if result.culprit else None
    lines = (folder / "solution.py").read_text().split("\n")
    line_code = lines[line] if line is not None and 0 <= line < len(lines) else ""
    return {
        "line": line,
        "fix": result.fix,
        "raw": result.raw,
        "explanation": result.explanation,
        "markdown": result.markdown,
        "checks_failed": check_failures(
            result.explanation,
            result.facts,
            line_code,
            result.fix,
            verified=question.verified_fix is not None,
        ),
        **found,
    }


PIPELINES = ("naive", "grounded", "grounded+run")


def repair_only(folder: Path, traceback: str) -> dict:
    """The repair alone, without a model (edits ranked by kind only): culprit and fix are the
    verified fix's, or none."""
    from hintwise.lsp_server.config import ExplainSettings
    from hintwise.lsp_server.explain import repair, tracing
    from hintwise.lsp_server.explain.question import traceback_question
    from hintwise.lsp_server.explain.tracebacks import TracebackError

    try:
        question, _, _ = traceback_question(traceback, folder, Path.read_text)
    except TracebackError as error:
        return {"line": None, "fix": None, "raw": str(error)}
    target = tracing.target_from_traceback(traceback, folder) or ("script", "solution.py")
    _, result = repair.ground(question, target, folder, ExplainSettings(run=True), lambda q: [])
    edit = result.edit if result else None
    return {
        "line": edit.line if edit else None,
        "fix": question.verified_fix.code if question.verified_fix else None,
        "raw": "",
        "repair_tried": result.tried if result else 0,
        "repair_candidates": result.candidates if result else 0,
        "repair_seconds": round(result.seconds, 2) if result else 0,
        "repair_line": edit.line if edit else None,
        "repair_kind": edit.kind if edit else None,
    }


def one_row(engine, row: dict, name: str) -> dict:
    """One problem through one pipeline, scored."""
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        source = program(row)
        _, traceback = run(source, folder)
        started = time.perf_counter()
        if name == "naive":
            line, fix, raw = naive(engine, source, traceback)
            lines = source.split("\n")
            code = lines[line] if line is not None and 0 <= line < len(lines) else ""
            answer: dict = {
                "line": line,
                "fix": fix,
                "raw": raw,
                "checks_failed": check_failures(raw, [], code, fix),
            }
        elif name == "repair-only":
            answer = repair_only(folder, traceback)
        else:
            answer = grounded(engine, folder, traceback, name != "grounded")
        seconds = time.perf_counter() - started
        line, fix = answer["line"], answer["fix"]
        target = buggy_lines(row, source)
        passes = line is not None and fix_passes(source, line, fix, folder)
    repair_line = answer.get("repair_line")
    return {
        **answer,
        "task": row["task_id"],
        "bug_type": row["bug_type"],
        "target": sorted(target),
        "exact": line is not None and line in target,
        "near": line is not None and any(abs(line - t) <= 1 for t in target),
        "passes": passes,
        "seconds": round(seconds, 2),
        "raw": answer["raw"][:500],
        "repair_elsewhere": repair_line is not None and repair_line not in target,
    }


def summary(samples: list[dict]) -> dict:
    """Rates with intervals, p50 time, and the rates per bug type."""
    n = len(samples)
    out: dict = {"rows": n}
    for key, label in (
        ("exact", "culprit_exact"),
        ("near", "culprit_within_1"),
        ("passes", "fix_passes"),
    ):
        hits = sum(s[key] for s in samples)
        out[label] = round(100 * hits / n, 1)
        out[f"{label}_ci95"] = wilson(hits, n)
    out["seconds_p50"] = round(statistics.median(s["seconds"] for s in samples), 1)
    failures: dict[str, int] = {}
    for sample in samples:
        for check in sample.get("checks_failed", []):
            failures[check] = failures.get(check, 0) + 1
    out["checks_failed"] = failures  # answers failing each check (zero for grounded)
    kinds: dict[str, list[dict]] = {}
    for sample in samples:
        kinds.setdefault(sample["bug_type"], []).append(sample)
    out["by_bug_type"] = {
        kind: {
            "rows": len(group),
            "exact": sum(s["exact"] for s in group),
            "fix_passes": sum(s["passes"] for s in group),
        }
        for kind, group in sorted(kinds.items())
    }
    repaired = [s for s in samples if s.get("repair_line") is not None]
    if any("repair_tried" in s for s in samples):
        out["repair"] = {
            "verified_fixes": len(repaired),
            "verified_fixes_ci95": wilson(len(repaired), n),
            "at_a_buggy_line": sum(not s["repair_elsewhere"] for s in repaired),
            "elsewhere_tests_too_weak": sum(s["repair_elsewhere"] for s in repaired),
            "runs_p50": statistics.median(s.get("repair_tried", 0) for s in samples),
            "seconds_p50": statistics.median(s.get("repair_seconds", 0) for s in samples),
            "found_within_runs": {
                str(k): sum(1 for s in repaired if s["repair_tried"] <= k)
                for k in (10, 20, 40, 100, 200)
            },
            "by_kind": {
                kind: sum(1 for s in repaired if s["repair_kind"] == kind)
                for kind in sorted({s["repair_kind"] for s in repaired})
            },
        }
    return out


def rows_done(paths: list[Path]) -> dict:
    """The scored samples of earlier runs (their --json reports), by model|pipeline|task."""
    done: dict = {}
    for path in paths:
        if path.exists():
            done.update(json.loads(path.read_text()).get("samples", {}))
    return done


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--models", default="gemma3-270m,smollm2-135m")
    parser.add_argument("--limit", type=int, default=None)
    parser.add_argument("--json", type=Path, default=None)
    parser.add_argument(
        "--pipelines",
        default=",".join(PIPELINES),
        help="of naive, grounded, grounded+run, and repair-only (the repair without a model)",
    )
    parser.add_argument(
        "--only-done", action="store_true", help="score only the rows already done (no runs)"
    )
    parser.add_argument(
        "--reverse", action="store_true", help="last row first (a second process from the end)"
    )
    parser.add_argument(
        "--also", type=Path, action="append", default=[], help="more rows done (another --json)"
    )
    args = parser.parse_args()
    if not DATA.exists():
        sys.exit(f"{DATA} not found: this benchmark reads ../shared/data in place")
    rows = [json.loads(line) for line in DATA.read_text().splitlines() if line.strip()]
    if args.limit:
        rows = random.Random(0).sample(rows, min(args.limit, len(rows)))
    done = rows_done([*args.also, *([args.json] if args.json else [])])
    order = list(reversed(rows)) if args.reverse else rows
    pipelines = args.pipelines.split(",")
    if args.only_done:
        order = [
            r
            for r in order
            if all(
                f"{m}|{n}|{r['task_id']}" in done for m in args.models.split(",") for n in pipelines
            )
        ]
    report: dict = {"rows": len(order), "date": time.strftime("%Y-%m-%d"), "models": {}}
    for model in args.models.split(","):
        engine = None
        samples: dict[str, list[dict]] = {name: [] for name in pipelines}
        for index, row in enumerate(order):
            for name in pipelines:
                key = f"{model}|{name}|{row['task_id']}"
                if key not in done:
                    if engine is None and name != "repair-only":
                        engine = load_model(model)
                    done[key] = one_row(engine, row, name)
                sample = done[key]
                samples[name].append(sample)
                print(
                    f"{model} {name} {index + 1}/{len(order)} {row['bug_type']}: "
                    f"culprit={sample['exact']} near={sample['near']} fix={sample['passes']} "
                    f"({sample['seconds']:.1f} s)",
                    file=sys.stderr,
                )
            if args.json:
                args.json.write_text(json.dumps({**report, "samples": done}, indent=1))
        if engine is not None:
            engine.close()
        report["models"][model] = compare(samples)
        print(json.dumps({model: report["models"][model]}, indent=2))
        if args.json:
            args.json.write_text(json.dumps({**report, "samples": done}, indent=1))


def load_model(model: str):
    from hintwise.lsp_server.config import Settings, from_environment
    from hintwise.lsp_server.engines.choice import load_engine

    settings = from_environment(Settings())
    return load_engine(
        dataclasses.replace(
            settings, model=dataclasses.replace(settings.model, name=model, path="")
        )
    )


def compare(samples: dict[str, list[dict]]) -> dict:
    """Each pipeline's summary and the paired differences between them."""
    results: dict = {name: summary(group) for name, group in samples.items() if group}
    pairs = [("naive", "grounded"), ("grounded", "grounded+run"), ("naive", "grounded+run")]
    pairs.append(("grounded", "repair-only"))
    for a, b in pairs:
        if samples.get(a) and samples.get(b):
            for key in ("exact", "passes"):
                results[f"difference_{key}_{a}_to_{b}"] = paired_difference(
                    [s[key] for s in samples[a]], [s[key] for s in samples[b]]
                )
    return results


if __name__ == "__main__":
    main()
