"""The review's static checks (ruff, lsp_server/review/static.py) on clean code: how many
comments per rule, per file with a hit, and the time the check adds per file.

    python bench/review_static.py [--set corpus|stdlib|seeded|all] [--limit N] [--json OUT]

Sets:
  corpus  the reported clean corpus: the .py files of click, jinja2, httpx, starlette, cattrs,
          attrs (attr + attrs) and pygls in this environment's site-packages, no tests/ folder,
          none over 1,500 lines, sorted by path (the team's shared corpus, see issue 13);
  stdlib  the calibration set: CPython's standard library of this interpreter (no test folders,
          no site-packages); the rule list and its filters were chosen on it;
  seeded  the 98 `original_function`s of ../shared/data/review/seeded_bugs.jsonl, each checked
          on its own; F821/F822 are not counted there (out of its module, every module-level
          name a function uses is undefined).
Time: wall time of `check()` per file (one ruff process each), p50 and p90, on a shared machine.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import site
import statistics
import sys
import sysconfig
import time
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "bench"))
SEEDED = ROOT.parent / "shared" / "data" / "review" / "seeded_bugs.jsonl"
PACKAGES = ("click", "jinja2", "httpx", "starlette", "cattrs", "attr", "attrs", "pygls")


def corpus_files() -> list[Path]:
    """bench/review_clean.clean_files() when it exists, else the same rule written here."""
    try:
        from review_clean import clean_files  # type: ignore[import-not-found]

        return [Path(p) for p in clean_files()]
    except ImportError:
        pass
    files: list[Path] = []
    for base in map(Path, site.getsitepackages()):
        for package in PACKAGES:
            for path in sorted((base / package).rglob("*.py")):
                if "tests" in path.relative_to(base).parts:
                    continue
                if path.read_text(encoding="utf-8").count("\n") <= 1500:
                    files.append(path)
    return sorted(files)


def stdlib_files() -> list[Path]:
    root = Path(sysconfig.get_paths()["stdlib"])
    skip = {"test", "tests", "idle_test", "site-packages"}
    return sorted(
        path for path in root.rglob("*.py") if not skip & set(path.relative_to(root).parts)
    )


def seeded_texts() -> list[tuple[str, str]]:
    import textwrap

    rows = [json.loads(line) for line in SEEDED.read_text().splitlines() if line.strip()]
    return [(row["task_id"], textwrap.dedent(row["original_function"])) for row in rows]


def measure(named_texts: list[tuple[str, str]], skip: frozenset[str] = frozenset()) -> dict:
    from hintwise.lsp_server.review.static import check

    per_rule: Counter[str] = Counter()
    dropped: Counter[str] = Counter()
    hits: list[dict] = []
    times: list[float] = []
    lines = 0
    problems = []
    for name, text in named_texts:
        lines += text.count("\n") + 1
        started = time.perf_counter()
        result = check(text, "python", Path(name).name if name.endswith(".py") else "f.py")
        times.append((time.perf_counter() - started) * 1000)
        if result.problem:
            problems.append((name, result.problem))
        dropped.update(result.dropped)
        for finding in result.findings:
            if finding.code in skip:
                dropped[f"{finding.code} out of its module"] += 1
                continue
            per_rule[finding.code] += 1
            hits.append(
                {
                    "file": name,
                    "line": finding.line + 1,
                    "rule": finding.code,
                    "message": finding.message,
                    "code": text.split("\n")[finding.line].strip()[:100],
                }
            )
    times.sort()
    low, high = _wilson(sum(per_rule.values()), lines)
    return {
        "files": len(named_texts),
        "lines": lines,
        "comments": sum(per_rule.values()),
        "per_1000_lines": round(1000 * sum(per_rule.values()) / max(lines, 1), 4),
        "per_20000_lines_95": [round(20000 * low, 2), round(20000 * high, 2)],
        "per_rule": dict(per_rule.most_common()),
        "files_with_hits": dict(Counter(hit["file"] for hit in hits).most_common()),
        "dropped_by_filters": dict(dropped.most_common()),
        "ms_p50": round(statistics.median(times), 1) if times else None,
        "ms_p90": round(times[int(0.9 * (len(times) - 1))], 1) if times else None,
        "problems": problems[:5],
        "hits": hits,
    }


def _wilson(hits: int, total: int, z: float = 1.96) -> tuple[float, float]:
    """95% Wilson interval of a per-line rate (unrounded: the rates here are tiny)."""
    if total == 0:
        return (0.0, 0.0)
    p = hits / total
    centre = (p + z * z / (2 * total)) / (1 + z * z / total)
    half = z * math.sqrt(p * (1 - p) / total + z * z / (4 * total * total)) / (1 + z * z / total)
    return (max(0.0, centre - half), centre + half)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--set", choices=["corpus", "stdlib", "seeded", "all"], default="all")
    parser.add_argument("--limit", type=int, default=0)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    sets = ["corpus", "stdlib", "seeded"] if args.set == "all" else [args.set]
    report = {"cpu_count": os.cpu_count()}
    for name in sets:
        if name == "seeded":
            if not SEEDED.exists():
                print(f"skipping seeded: {SEEDED} is absent", file=sys.stderr)
                continue
            texts = seeded_texts()
        else:
            paths = corpus_files() if name == "corpus" else stdlib_files()
            texts = [(str(p), p.read_text(encoding="utf-8", errors="replace")) for p in paths]
        if args.limit:
            texts = texts[: args.limit]
        report[name] = measure(
            texts, frozenset({"F821", "F822"}) if name == "seeded" else frozenset()
        )
        summary = {k: v for k, v in report[name].items() if k != "hits"}
        print(name, json.dumps(summary, indent=1))
        for hit in report[name]["hits"][:40]:
            print(
                f"  {hit['file']}:{hit['line']} {hit['rule']} {hit['message'][:60]} | {hit['code']}"
            )
    if args.json:
        args.json.write_text(json.dumps(report, indent=1))


if __name__ == "__main__":
    main()
