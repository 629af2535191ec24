"""On-save review on seeded defects: hintwise's grounded pipeline beside a naive prompt.

    python bench/review.py [--models gemma3-270m,smollm2-135m] [--limit N] [--json OUT]

Data: ../shared/data/review/seeded_bugs.jsonl (98 CPython 3.11 standard-library functions, one
seeded defect each, confirmed by CPython's tests; PSF-2.0). Each function is dedented and shown
with its real file line numbers. Scored per function: a *hit* when a comment lands within ±1 line
of the defect; *noise*: comments that land elsewhere (what a user reads for nothing).

Pipelines, same model, same process, same greedy decoding:
  naive     the whole function in one free-text prompt ("list the bugs as `line N: message`"),
            no schema, no filters; every `line N` in the answer is a comment;
  grounded  exactly what the server runs on save (lsp_server/review/reviewer.py, review_unit): the
            tree-sitter unit, the JSON schema whose `line` can only be one of the unit's lines,
            the filters and the per-function cap.
Rows are a fixed random sample (seed 0) when --limit is given. Rates come with 95% Wilson
intervals, the difference with a paired bootstrap interval.
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

NAIVE_PROMPT = (
    "Review this Python code and list its bugs, one per line, as `line N: message`.\n\n"
    "```python\n{code}\n```\n"
)


def load(limit: int | None) -> list[dict]:
    rows = [json.loads(line) for line in DATA.read_text().splitlines() if line.strip()]
    if limit:
        rows = random.Random(0).sample(rows, min(limit, len(rows)))
    return rows


def naive(engine, row: dict) -> tuple[list[int], str]:
    from hintwise.lsp_server.code.units import numbered
    from hintwise.models.engine import GenerationRequest

    code = textwrap.dedent(row["mutated_function"])
    first = row["function_start_line"] - 1
    request = GenerationRequest(
        messages=[{"role": "user", "content": NAIVE_PROMPT.format(code=numbered(code, first))}],
        max_tokens=256,
    )
    text = engine.generate(request, lambda: False).text
    return [int(n) for n in re.findall(r"\bline (\d+)", text, re.I)], text


def grounded(engine, row: dict) -> tuple[list[int], str]:
    from hintwise.lsp_server.code.units import find_units
    from hintwise.lsp_server.review.reviewer import review_unit

    code = textwrap.dedent(row["mutated_function"])
    # The function at its place in the file: blank lines above keep the real line numbers.
    text = "\n" * (row["function_start_line"] - 1) + code
    lines: list[int] = []
    raw = []
    for unit in find_units(text, "python"):
        result = review_unit(engine, unit, text, "python", set(), 2, lambda: False)
        lines += [c.line + 1 for c in result.comments]
        raw.append(result.raw)
    return lines, "\n".join(raw)


def score(row: dict, lines: list[int]) -> tuple[bool, int]:
    target = row["line"]
    hit = any(abs(line - target) <= 1 for line in lines)
    noise = sum(1 for line in lines if abs(line - target) > 1)
    return hit, noise


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--models", default="gemma3-270m,smollm2-135m")
    parser.add_argument("--limit", type=int, default=None)
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args()
    if not DATA.exists():
        sys.exit(f"{DATA} not found: this benchmark reads ../shared/data in place")
    from hintwise.lsp_server.config import Settings, from_environment
    from hintwise.lsp_server.engines.choice import load_engine

    rows = load(args.limit)
    report: dict = {"rows": len(rows), "date": time.strftime("%Y-%m-%d"), "models": {}}
    for model in args.models.split(","):
        settings = from_environment(Settings())
        import dataclasses

        settings = dataclasses.replace(
            settings, model=dataclasses.replace(settings.model, name=model, path="")
        )
        engine = load_engine(settings)
        results: dict[str, dict] = {}
        for name, run in (("naive", naive), ("grounded", grounded)):
            hits, noise, seconds, samples = [], [], [], []
            for index, row in enumerate(rows):
                started = time.perf_counter()
                lines, raw = run(engine, row)
                seconds.append(time.perf_counter() - started)
                hit, extra = score(row, lines)
                hits.append(hit)
                noise.append(extra)
                samples.append({"task": row["task_id"], "lines": lines, "hit": hit, "raw": raw})
                print(
                    f"{model} {name} {index + 1}/{len(rows)} hit={hit} noise={extra} "
                    f"({seconds[-1]:.1f} s)",
                    file=sys.stderr,
                )
            results[name] = {
                "hit_rate": round(100 * sum(hits) / len(hits), 1),
                "hit_ci95": wilson(sum(hits), len(hits)),
                "noise_per_function": round(statistics.mean(noise), 2),
                "functions_with_noise": sum(1 for n in noise if n),
                "seconds_p50": round(statistics.median(seconds), 1),
                "hits": hits,
                "samples": samples,
            }
        results["difference"] = paired_difference(
            results["naive"]["hits"], results["grounded"]["hits"]
        )
        engine.close()
        report["models"][model] = results
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
