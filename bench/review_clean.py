"""Review comments on clean, well-tested code: every one is a false alarm a user reads for nothing.

    python bench/review_clean.py [--limit-files N] [--json OUT] [--model NAME]

Runs exactly what `hintwise review FILE` runs for each file (the tree-sitter units, review_unit
on each with the configured per-function cap, then the per-file cap) on the `.py` files of
click, jinja2, httpx, starlette, cattrs, attrs and pygls as installed in this venv (no `tests/`
folder, no file over 1,500 lines; sorted by path; the shared corpus of issue 13). Reported per
file: lines, comments and the text of each so a reader can judge them; in total: comments per
5,000 lines with an exact Poisson 95% interval. With --json the report is written after each file
and a run started again with the same --json skips the files already done (it is slow).
Thresholds are never tuned on this corpus (they come from standard-library code: review/verify.py).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import math
import statistics
import sys
import time
from pathlib import Path

PACKAGES = ("click", "jinja2", "httpx", "starlette", "cattrs", "attrs", "attr", "pygls")
MAX_FILE_LINES = 1500
PER = 5000  # the unit: comments per 5,000 lines


def clean_files() -> list[Path]:
    """The shared clean corpus: the packages' `.py` files in this venv's site-packages, sorted
    by path, without test folders and files over MAX_FILE_LINES lines."""
    import sysconfig

    site = Path(sysconfig.get_paths()["purelib"])
    files = []
    for package in PACKAGES:
        root = site / package
        if not root.is_dir():
            print(f"review_clean: package {package} not installed, skipped", file=sys.stderr)
            continue
        for path in root.rglob("*.py"):
            if "tests" in path.relative_to(root).parts:
                continue
            if _line_count(path) <= MAX_FILE_LINES:
                files.append(path)
    return sorted(files)


def _line_count(path: Path) -> int:
    return len(path.read_text(encoding="utf-8", errors="replace").splitlines())


def poisson_interval(count: int, exposure: float, alpha: float = 0.05) -> tuple[float, float]:
    """Exact (Garwood) interval of a Poisson rate count/exposure, by bisection on the CDF."""

    def cdf(k: int, mean: float) -> float:
        term = total = math.exp(-mean)
        for i in range(1, k + 1):
            term *= mean / i
            total += term
        return total

    def solve(target: float, k: int) -> float:
        low, high = 0.0, max(10.0, 10.0 * (k + 1))
        for _ in range(200):
            middle = (low + high) / 2
            if cdf(k, middle) > target:
                low = middle
            else:
                high = middle
        return (low + high) / 2

    lower = 0.0 if count == 0 else solve(1 - alpha / 2, count - 1)
    upper = solve(alpha / 2, count)
    return (lower / exposure, upper / exposure)


def review_file(engine, path: Path, settings) -> dict:
    """What `hintwise review` reports for one file (cli/review.py: units, review_unit, cap_file)."""
    from hintwise.lsp_server.code.syntax import language_for_path
    from hintwise.lsp_server.code.units import find_units
    from hintwise.lsp_server.review.comments import cap_file
    from hintwise.lsp_server.review.reviewer import review_unit

    text = path.read_text(encoding="utf-8")
    language = language_for_path(str(path))
    comments, seconds = [], []
    units = find_units(text, language)
    for unit in units:
        started = time.perf_counter()
        found = review_unit(
            engine,
            unit,
            text,
            language,
            set(),
            settings.review.max_per_function,
            lambda: False,
        )
        seconds.append(time.perf_counter() - started)
        comments += found.comments if found else []
    kept = cap_file(comments, settings.review.max_per_file)
    lines = text.split("\n")
    return {
        "file": str(path),
        "lines": len(text.splitlines()),
        "units": len(units),
        "seconds": round(sum(seconds), 1),
        "unit_seconds": [round(s, 2) for s in seconds],
        "comments": [
            {
                "line": c.line + 1,
                "code": lines[c.line].strip(),
                "message": c.message,
                "replacement": c.replacement,
                "function": c.unit,
            }
            for c in kept
        ],
    }


def summary(files: list[dict]) -> dict:
    lines = sum(f["lines"] for f in files)
    count = sum(len(f["comments"]) for f in files)
    low, high = poisson_interval(count, lines / PER) if lines else (0.0, 0.0)
    unit_seconds = [s for f in files for s in f["unit_seconds"]]
    return {
        "files": len(files),
        "lines": lines,
        "units": sum(f["units"] for f in files),
        "comments": count,
        f"per_{PER}_lines": round(PER * count / lines, 2) if lines else None,
        "ci95": [round(low, 2), round(high, 2)],
        "unit_seconds_p50": round(statistics.median(unit_seconds), 2) if unit_seconds else None,
        "unit_seconds_p90": (
            round(statistics.quantiles(unit_seconds, n=10)[-1], 2)
            if len(unit_seconds) > 1
            else None
        ),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--limit-files", type=int, default=None)
    parser.add_argument("--json", type=Path, default=None)
    parser.add_argument("--model", default=None, help="a bundled model name (default: settings)")
    args = parser.parse_args()
    from hintwise.lsp_server.config import Settings, from_environment
    from hintwise.lsp_server.engines.choice import load_engine

    settings = from_environment(Settings())
    if args.model:
        model = dataclasses.replace(settings.model, name=args.model, path="")
        settings = dataclasses.replace(settings, model=model)
    paths = clean_files()[: args.limit_files]
    done: dict[str, dict] = {}
    if args.json and args.json.exists():
        done = {f["file"]: f for f in json.loads(args.json.read_text())["per_file"]}
    engine = load_engine(settings)
    report: dict = {"date": time.strftime("%Y-%m-%d"), "model": settings.model_label()}
    try:
        for index, path in enumerate(paths):
            if str(path) not in done:
                done[str(path)] = review_file(engine, path, settings)
            row = done[str(path)]
            print(
                f"{index + 1}/{len(paths)} {path.name}: {row['lines']} lines, "
                f"{len(row['comments'])} comments ({row['seconds']} s)",
                file=sys.stderr,
            )
            files = [done[str(p)] for p in paths if str(p) in done]
            report.update(summary=summary(files), per_file=files)
            if args.json:
                args.json.write_text(json.dumps(report, indent=1))
    finally:
        engine.close()
    print(json.dumps(report["summary"], indent=2))
    for row in report["per_file"]:
        for comment in row["comments"]:
            print(f"{row['file']}:{comment['line']}: {comment['code']}\n    {comment['message']}")


if __name__ == "__main__":
    main()
