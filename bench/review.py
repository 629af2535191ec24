"""On-save review on seeded defects and on their clean twins: the pipeline before issue 13
beside the one the server runs now.

    python bench/review.py [--pipelines today,verified] [--models gemma3-270m] [--limit N]
                           [--json OUT]

Data: ../shared/data/review/seeded_bugs.jsonl (98 CPython 3.11 standard-library functions, one
seeded defect each, confirmed by CPython's tests; PSF-2.0). Each function is dedented and shown
with its real file line numbers. Scored per function: a *hit* when a comment lands within ±1 line
of the defect; *noise*: comments that land elsewhere (what a user reads for nothing). The clean
twin of each row (`original_function`, the code as CPython ships it) is reviewed too: every
comment there is a false alarm (per function and per 5,000 lines).

Pipelines, same model, same process, same greedy decoding:
  naive     the whole function in one free-text prompt ("list the bugs as `line N: message`"),
            no schema, no filters; every `line N` in the answer is a comment;
  today     the pipeline before issue 13 (bench/review_today.py): lines whose operator, constant
            or keyword token the model expected otherwise, a grounded JSON question, merged;
  verified  exactly what the server runs on save (lsp_server/review/reviewer.py, review_unit):
            syntactic swap sites, checked by the likelihood of the corrected code.
All 98 rows by default (file order); a fixed random sample (seed 0) with --limit: `--limit 98` is
all rows shuffled, so a run stopped early holds a fair sample. Rates come with 95% Wilson
intervals, means with bootstrap intervals, the hit difference with a paired bootstrap interval.
"""

from __future__ import annotations

import argparse
import json
import random
import re
import statistics
import sys
import textwrap
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DATA = ROOT.parent / "shared" / "data" / "review" / "seeded_bugs.jsonl"
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from fim_quality import paired_difference, wilson  # noqa: E402
from review_clean import PER, poisson_interval  # noqa: E402

NAIVE_PROMPT = (
    "Review this Python code and list its bugs, one per line, as `line N: message`.\n\n"
    "```python\n{code}\n```\n"
)


def load(limit: int | None) -> list[dict]:
    rows = [json.loads(line) for line in DATA.read_text().splitlines() if line.strip()]
    if limit:
        rows = random.Random(0).sample(rows, min(limit, len(rows)))
    return rows


def placed(row: dict, field: str) -> str:
    """The function at its place in the file: blank lines above keep the real line numbers."""
    return "\n" * (row["function_start_line"] - 1) + textwrap.dedent(row[field])


def naive(engine, row: dict, field: str) -> tuple[list[int], str]:
    from hintwise.lsp_server.code.units import numbered
    from hintwise.models.engine import GenerationRequest

    code = textwrap.dedent(row[field])
    first = row["function_start_line"] - 1
    request = GenerationRequest(
        messages=[{"role": "user", "content": NAIVE_PROMPT.format(code=numbered(code, first))}],
        max_tokens=256,
    )
    text = engine.generate(request, lambda: False).text
    return [int(n) for n in re.findall(r"\bline (\d+)", text, re.I)], text


def verified(engine, row: dict, field: str) -> tuple[list[int], str]:
    from hintwise.lsp_server.code.units import find_units
    from hintwise.lsp_server.review.reviewer import review_unit

    text = placed(row, field)
    lines: list[int] = []
    raw = []
    for unit in find_units(text, "python"):
        result = review_unit(engine, unit, text, "python", set(), 2, lambda: False)
        lines += [c.line + 1 for c in result.comments]
        raw.append(result.raw)
    return lines, "\n".join(raw)


def today(engine, row: dict, field: str) -> tuple[list[int], str]:
    from review_today import review_unit_today

    from hintwise.lsp_server.code.units import find_units

    text = placed(row, field)
    comments = []
    for unit in find_units(text, "python"):
        comments += review_unit_today(engine, unit, text, "python", 2)
    return [c.line + 1 for c in comments], "\n".join(f"{c.line + 1}: {c.message}" for c in comments)


PIPELINES = {"naive": naive, "today": today, "verified": verified}


def score(row: dict, lines: list[int]) -> tuple[bool, int]:
    target = row["line"]
    hit = any(abs(line - target) <= 1 for line in lines)
    noise = sum(1 for line in lines if abs(line - target) > 1)
    return hit, noise


def bootstrap_mean(values: list[int], rounds: int = 2000) -> list[float]:
    rng = random.Random(0)
    means = sorted(statistics.mean(rng.choice(values) for _ in values) for _ in range(rounds))
    return [round(means[int(0.025 * rounds)], 2), round(means[int(0.975 * rounds)], 2)]


def run_pipeline(name: str, engine, rows: list[dict], model: str, progress=None) -> dict:
    """Hits and noise on the seeded rows, false alarms on their clean twins; `progress` is
    called with the figures so far after each row (a long run keeps what it measured)."""
    run = PIPELINES[name]
    hits, noise, clean, seconds, samples = [], [], [], [], []
    twins: dict[str, tuple[list[int], str]] = {}
    for index, row in enumerate(rows):
        started = time.perf_counter()
        lines, raw = run(engine, row, "mutated_function")
        seconds.append(time.perf_counter() - started)
        hit, extra = score(row, lines)
        started = time.perf_counter()
        if row["original_function"] not in twins:  # rows share functions: review each once
            twins[row["original_function"]] = run(engine, row, "original_function")
            seconds.append(time.perf_counter() - started)
        twin, twin_raw = twins[row["original_function"]]
        hits.append(hit)
        noise.append(extra)
        clean.append(len(twin))
        samples.append(
            {
                "task": row["task_id"],
                "lines": lines,
                "hit": hit,
                "raw": raw,
                "clean_lines": twin,
                "clean_raw": twin_raw,
            }
        )
        print(
            f"{model} {name} {index + 1}/{len(rows)} hit={hit} noise={extra} clean={len(twin)} "
            f"({seconds[-1]:.1f} s)",
            file=sys.stderr,
        )
        if progress is not None:
            progress(figures(rows[: index + 1], hits, noise, clean, seconds, samples))
    return figures(rows, hits, noise, clean, seconds, samples)


def figures(rows, hits, noise, clean, seconds, samples) -> dict:
    clean_lines = sum(len(textwrap.dedent(r["original_function"]).splitlines()) for r in rows)
    alarms = sum(clean)
    low, high = poisson_interval(alarms, clean_lines / PER)
    return {
        "rows": len(rows),
        "hit_rate": round(100 * sum(hits) / len(hits), 1),
        "hit_ci95": wilson(sum(hits), len(hits)),
        "noise_per_function": round(statistics.mean(noise), 2),
        "noise_ci95": bootstrap_mean(noise),
        "functions_with_noise": sum(1 for n in noise if n),
        "clean_twin_comments": alarms,
        "clean_twin_per_function": round(alarms / len(rows), 2),
        "clean_twins_with_a_comment_ci95": wilson(sum(1 for c in clean if c), len(rows)),
        "clean_twin_lines": clean_lines,
        f"clean_twin_per_{PER}_lines": round(PER * alarms / clean_lines, 2),
        f"clean_twin_per_{PER}_lines_ci95": [round(low, 2), round(high, 2)],
        "seconds_per_function_p50": round(statistics.median(seconds), 1),
        "seconds_per_function_p90": (
            round(statistics.quantiles(seconds, n=10)[-1], 1) if len(seconds) > 1 else None
        ),
        "hits": hits,
        "samples": samples,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--models", default="gemma3-270m")
    parser.add_argument("--pipelines", default="today,verified")
    parser.add_argument("--limit", type=int, default=None)
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args()
    if not DATA.exists():
        sys.exit(f"{DATA} not found: this benchmark reads ../shared/data in place")
    import dataclasses

    from hintwise.lsp_server.config import Settings, from_environment
    from hintwise.lsp_server.engines.choice import load_engine

    rows = load(args.limit)
    names = args.pipelines.split(",")
    report: dict = {"rows": len(rows), "date": time.strftime("%Y-%m-%d"), "models": {}}
    for model in args.models.split(","):
        settings = from_environment(Settings())
        settings = dataclasses.replace(
            settings, model=dataclasses.replace(settings.model, name=model, path="")
        )
        engine = load_engine(settings)
        results: dict[str, dict] = {}
        report["models"][model] = results
        for name in names:  # written after each pipeline: a long run keeps what it measured

            def progress(partial: dict, name: str = name, results: dict = results) -> None:
                results[name] = partial
                if args.json:
                    args.json.write_text(json.dumps(report, indent=2))

            progress(run_pipeline(name, engine, rows, model, progress))
        if len(names) == 2:
            results["difference"] = paired_difference(
                results[names[0]]["hits"], results[names[1]]["hits"]
            )
        engine.close()
        summary = {
            k: {x: v[x] for x in v if x not in ("hits", "samples")}
            if isinstance(v, dict) and "hits" in v
            else v
            for k, v in results.items()
        }
        print(json.dumps({model: summary}, indent=2))
        if args.json:
            args.json.write_text(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
