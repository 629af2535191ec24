"""The `cold` phase of bench/threads.py: a first request deep in a file, prompt threads compared.

For each cursor position deep in a standard-library file (the prefix fills the whole prompt
window, ~1,000 tokens), the same cold request (empty cache) runs three times in rotated order:
the prompt on the generation count of threads (`one`: what hintwise did before), on every core
(`all`) and as the engine chooses from the load it measures (`auto`); first on the machine as
it is ("idle"), then beside one process spinning on a core ("busy"). Ratios are paired per
position; the load the rest of the machine put on the CPU during each request is measured
(/proc/stat minus this process) and reported, since the machine may be shared.
"""

from __future__ import annotations

import multiprocessing
import random
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

from latency import STDLIB, positions

from hintwise.models.engine import CompletionRequest
from hintwise.models.llama.engine import LlamaEngine
from hintwise.models.llama.threads import others_busy, read_cpu_sample, usable_cores

POLICIES = ("one", "all", "auto")


def deep_positions(count: int) -> list:
    """Positions in standard-library files at least 300 lines down (a full prompt window)."""
    found = [p for p in positions(8 * count) if p.path.is_relative_to(STDLIB) and p.line >= 300]
    return found[:: max(1, len(found) // count)][:count]


def first_line(text: str) -> int | None:
    return text.index("\n") if "\n" in text else None


def cold_request(engine: LlamaEngine, place, fixed: int) -> dict:
    """One request on an empty cache with the prompt threads pinned to `fixed` (0 = choose)."""
    lines = place.document.split("\n")
    prefix = "\n".join([*lines[: place.line], lines[place.line][: place.column]])
    suffix = place.document[len(prefix) :]
    engine.prompt_threads.fixed = fixed
    engine.llm.n_tokens = 0
    before = read_cpu_sample()
    started = time.perf_counter()
    result = engine.complete(
        CompletionRequest(prefix=prefix, suffix=suffix, max_tokens=16, stop=first_line),
        lambda: False,
    )
    total = (time.perf_counter() - started) * 1000
    after = read_cpu_sample()
    others = others_busy(before, after) if before and after else None
    return {
        "prompt_ms": result.prompt_ms,
        "total_ms": total,
        "evaluated": result.evaluated_tokens,
        "threads": result.prompt_threads,
        "others": others,
    }


def bootstrap_median(values: list[float], rounds: int = 2000) -> tuple[float, float]:
    """95% percentile-bootstrap interval of the median (seeded: the same data, the same
    interval)."""
    rng = random.Random(0)
    medians = sorted(statistics.median(rng.choices(values, k=len(values))) for _ in range(rounds))
    return medians[int(0.025 * rounds)], medians[int(0.975 * rounds) - 1]


def summarize(rows: list[dict]) -> dict:
    """Per load: p50 prompt time by policy, the paired ratios to `one`, the threads `auto`
    chose and the load the rest of the machine put on the CPU meanwhile."""
    report: dict = {}
    for load in ("idle", "busy"):
        mine = [row[load] for row in rows]
        entry: dict = {"n": len(mine)}
        for policy in POLICIES:
            entry[f"{policy}_prompt_ms_p50"] = round(
                statistics.median(r[policy]["prompt_ms"] for r in mine), 1
            )
        for policy in ("all", "auto"):
            ratios = [r[policy]["prompt_ms"] / r["one"]["prompt_ms"] for r in mine]
            low, high = bootstrap_median(ratios)
            entry[f"{policy}_over_one"] = {
                "median": round(statistics.median(ratios), 2),
                "ci95": [round(low, 2), round(high, 2)],
            }
        chosen = [r["auto"]["threads"] for r in mine]
        entry["auto_threads_chosen"] = {str(n): chosen.count(n) for n in sorted(set(chosen))}
        others = [r[p]["others"] for r in mine for p in POLICIES if r[p]["others"] is not None]
        if others:
            entry["others_cores_p50"] = round(statistics.median(others), 2)
            entry["others_cores_max"] = round(max(others), 2)
        report[load] = entry
    return report


def measure_cold(gguf: Path, count: int, spin: Callable[[float], None]) -> dict:
    engine = LlamaEngine(gguf)
    engine.prepare()
    generation, cores = engine.info.threads, usable_cores()
    fixed = {"one": generation, "all": cores, "auto": 0}
    places = deep_positions(count)
    rows = []
    loadavg_start = Path("/proc/loadavg").read_text().split()[:3]
    try:
        for number, place in enumerate(places):
            order = POLICIES[number % 3 :] + POLICIES[: number % 3]
            row: dict = {"position": f"{place.path.name}:{place.line + 1}"}
            row["idle"] = {policy: cold_request(engine, place, fixed[policy]) for policy in order}
            busy = multiprocessing.Process(target=spin, args=(time.monotonic() + 600,))
            busy.start()
            try:
                time.sleep(0.2)
                row["busy"] = {
                    policy: cold_request(engine, place, fixed[policy]) for policy in order
                }
            finally:
                busy.terminate()
                busy.join()
            rows.append(row)
            print(
                f"  cold {number + 1}/{len(places)} {row['position']}: "
                + ", ".join(
                    f"{load} {p} {row[load][p]['prompt_ms']:.0f} ms ({row[load][p]['threads']})"
                    for load in ("idle", "busy")
                    for p in POLICIES
                ),
                file=sys.stderr,
            )
    finally:
        engine.prompt_threads.fixed = 0
        engine.close()
    return {
        "generation_threads": generation,
        "cores": cores,
        "loadavg_start": loadavg_start,
        "loadavg_end": Path("/proc/loadavg").read_text().split()[:3],
        **summarize(rows),
        "rows": rows,
    }
