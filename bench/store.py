"""The feedback store under load: writer throughput, enqueue latency, size on disk, export time.

    python bench/store.py [--events 200000] [--suggestions 10000] [--export-rows 100000]
                          [--json OUT]

1. **Writer throughput and enqueue latency.** `--events` outcome events (shown, seen, accepted,
   rejected, survival, in the server's proportions) are handed to a `telemetry.Writer` as fast as
   one thread can, each `Writer.record` call timed with `perf_counter_ns`; then `flush` waits for
   the last commit. Sustained rate = events committed / (first enqueue → last commit). This is a
   burst far above what an editor produces, so it measures the writer's capacity, and the
   enqueue latency while the writer thread competes for the GIL. (`max_pending` is raised for the
   run so that the burst is not cut by the queue limit that protects a server from a slow disk.)
   The maximum is Python's cyclic garbage collector, not the writer: a full collection over the
   hundreds of thousands of rows this burst holds in memory takes about 100 ms (checked with
   `gc.callbacks`: the longest pause and the longest enqueue coincide) and would stop any code
   of the process at that moment; p99 and p99.9 are the hand-over itself.
2. **Size on disk.** `--suggestions` completions with realistic prompts (2-4 KB windows of real
   Python source before a cursor; prefix = that window, suffix = about 1 KB after it), gate
   features, scores, latency parts and token log-probs, each with 3 events (shown, then accepted +
   survival, rejected + replacement, or partially accepted + survival), written through the Writer
   with the default privacy settings (secret redaction on). Reported per 10,000 suggestions.
3. **Export time.** The store of step 2 is replicated (SQL copies with distinct ids and prompts)
   to `--export-rows` suggestions, then `export` writes DPO, KTO and the events file, and
   `stats.compute` runs over it.

Prints one JSON object (and writes it to --json). The machine is shared: run it rarely.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import sqlite3
import statistics
import sys
import sysconfig
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from hintwise.telemetry import Event, Suggestion, Writer  # noqa: E402
from hintwise.telemetry.export import export_detailed  # noqa: E402
from hintwise.telemetry.stats import compute  # noqa: E402

STDLIB = Path(sysconfig.get_paths()["stdlib"])
SOURCES = [
    STDLIB / name
    for name in (
        "difflib.py",
        "argparse.py",
        "textwrap.py",
        "csv.py",
        "statistics.py",
        "fractions.py",
        "shlex.py",
        "json/decoder.py",
        "dataclasses.py",
        "typing.py",
    )
]
EVENT_MIX = ("shown", "seen", "shown", "accepted", "rejected", "survival")
REASONS = ("explicit", "superseded", "diverged", "timeout")


def percentile(sorted_values: list[int], share: float) -> int:
    return sorted_values[min(len(sorted_values) - 1, int(share * len(sorted_values)))]


# --- 1. writer throughput ---------------------------------------------------------------------


def outcome_events(count: int, rng: random.Random) -> list[Event]:
    """Built before timing: what is measured is the hand-over, not building the row."""
    events = []
    base = int(time.time() * 1000)
    for n in range(count):
        kind = EVENT_MIX[n % len(EVENT_MIX)]
        event = Event(suggestion_id=f"{n // 3:032x}", kind=kind, time_ms=base + n)
        if kind == "rejected":
            event.reason = REASONS[n % len(REASONS)]
        elif kind == "survival":
            event.check_after_s, event.similarity = (30, 120, 300)[n % 3], rng.random()
        events.append(event)
    return events


def writer_throughput(directory: Path, count: int, rng: random.Random) -> dict[str, Any]:
    events = outcome_events(count, rng)
    writer = Writer.start(directory / "throughput.db", max_pending=count + 1)
    writer.flush()  # the file is open and migrated before the clock starts
    latencies = [0] * count
    clock = time.perf_counter_ns
    started = time.perf_counter()
    for index, event in enumerate(events):
        before = clock()
        writer.record(event)
        latencies[index] = clock() - before
    enqueued = time.perf_counter() - started
    assert writer.flush(timeout=600), "writer did not catch up within 10 minutes"
    elapsed = time.perf_counter() - started
    stats = writer.stats()
    writer.close()
    latencies.sort()
    return {
        "events": count,
        "written": stats.written,
        "dropped": stats.dropped,
        "transactions": stats.batches,
        "enqueue_all_s": round(enqueued, 3),
        "sustained_events_per_s": round(stats.written / elapsed),
        "enqueue_us": {
            "p50": round(percentile(latencies, 0.50) / 1000, 2),
            "p99": round(percentile(latencies, 0.99) / 1000, 2),
            "p99_9": round(percentile(latencies, 0.999) / 1000, 2),
            "max": round(latencies[-1] / 1000, 1),
            "mean": round(statistics.fmean(latencies) / 1000, 2),
        },
    }


# --- 2. size on disk --------------------------------------------------------------------------


def source_lines() -> list[list[str]]:
    return [path.read_text(encoding="utf-8").splitlines(keepends=True) for path in SOURCES]


def window(lines: list[str], rng: random.Random) -> tuple[str, str, str]:
    """(prompt, suggestion, suffix) around a cursor in the middle of a real line: the prompt is
    2-4 KB of the lines before it, the suggestion the rest of that line."""
    target = rng.randint(2000, 4000)
    cursor = rng.randint(60, len(lines) - 40)
    start, size = cursor, 0
    while start > 0 and size < target:
        start -= 1
        size += len(lines[start])
    line = lines[cursor]
    column = rng.randint(0, max(0, len(line.rstrip("\n")) - 1))
    prompt = "".join(lines[start:cursor]) + line[:column]
    suggestion = line[column:].rstrip("\n") or "pass"
    suffix = "".join(lines[cursor + 1 : cursor + 30])[:1000]
    return prompt, suggestion, suffix


def suggestion_rows(n: int, base_ms: int, place: tuple[str, str, str], rng: random.Random) -> list:
    """One suggestion with the columns the server fills, and its three events."""
    prompt, text, suffix = place
    sid = f"{n:032x}"
    at = base_ms + n * 1500
    rows: list = [
        Suggestion(
            id=sid,
            created_ms=at,
            language="python",
            file=f"/home/user/project/src/module_{n % 40}.py",
            model="gemma3-270m-q4-k-m",
            settings={"temperature": 0.0, "max_tokens": 48, "n_ctx": 4096},
            mode="single",
            prompt=prompt,
            prefix=prompt,
            suffix=suffix,
            text=text,
            features={"prefix_len": len(prompt), "in_string": False, "last_outcome": "accepted"},
            scores={"pre": round(rng.random(), 3), "post": round(rng.random(), 3)},
            latency={"context": 1.2, "prompt": 22.0, "generate": 140.5, "post": 0.8},
            token_logprobs=[round(-rng.random(), 3) for _ in range(max(1, len(text) // 4))],
        ),
        Event(sid, "shown", time_ms=at + 5),
    ]
    outcome = n % 4  # half accepted, a quarter partially accepted, a quarter rejected
    if outcome == 3:
        rows.append(Event(sid, "rejected", time_ms=at + 400, reason="superseded"))
        rows.append(Event(sid, "replacement", time_ms=at + 20_000, text=text[::-1]))
        return rows
    if outcome == 2:
        chars = max(1, len(text) // 2)
        rows.append(Event(sid, "partially_accepted", time_ms=at + 900, accepted_chars=chars))
    else:
        rows.append(Event(sid, "accepted", time_ms=at + 900))
    similarity = round(rng.uniform(0.3, 1.0), 3)
    rows.append(
        Event(sid, "survival", time_ms=at + 30_900, check_after_s=30, similarity=similarity)
    )
    return rows


def cursor_places(count: int, rng: random.Random) -> list[tuple[str, str, str]]:
    """Per group of four suggestions (accepted, accepted, partially accepted, rejected), the
    rejected one is asked at the first one's prompt with another answer: as when the same
    position is requested twice, which gives DPO its accepted/rejected pairs."""
    files = source_lines()
    places = []
    for n in range(count):
        if n % 4 == 3:
            prompt, _, suffix = places[n - 3]
            places.append((prompt, places[n - 2][1], suffix))
        else:
            places.append(window(files[n % len(files)], rng))
    return places


def store_size(directory: Path, count: int, rng: random.Random) -> tuple[Path, dict[str, Any]]:
    path = directory / "size.db"
    base_ms = int(time.time() * 1000) - count * 1500
    places = cursor_places(count, rng)
    writer = Writer.start(path, max_pending=count * 5)
    writer.flush()
    empty = path.stat().st_size
    started = time.perf_counter()
    rows = 0
    for n in range(count):
        for row in suggestion_rows(n, base_ms, places[n], rng):
            writer.record(row)
            rows += 1
    assert writer.flush(timeout=600)
    elapsed = time.perf_counter() - started
    assert writer.close()
    size = path.stat().st_size
    with sqlite3.connect(path) as conn:
        prompt_bytes, events = conn.execute(
            "SELECT sum(length(CAST(prompt AS BLOB))), (SELECT count(*) FROM events) "
            "FROM suggestions"
        ).fetchone()
    conn.close()
    per_10k = (size - empty) * 10_000 / count
    return path, {
        "suggestions": count,
        "events": events,
        "mean_prompt_bytes": round(prompt_bytes / count),
        "file_bytes": size,
        "mb_per_10k_suggestions": round(per_10k / 1e6, 1),
        "bytes_per_suggestion": round(per_10k / 10_000),
        "write_s": round(elapsed, 2),
        "rows_per_s_with_redaction": round(rows / elapsed),
    }


# --- 3. export time -------------------------------------------------------------------------


def replicate(source: Path, target: Path, total: int) -> int:
    """Copies of the measured store, each with its own ids and prompts, up to `total`."""
    target.unlink(missing_ok=True)
    target.write_bytes(source.read_bytes())
    conn = sqlite3.connect(target)
    have = conn.execute("SELECT count(*) FROM suggestions").fetchone()[0]
    copies = -(-total // have)
    with conn:
        for copy in range(1, copies):
            tag = f"-{copy}"
            conn.execute(
                "INSERT INTO suggestions SELECT id || :tag, created, created_ms + :shift, kind, "
                "language, file, model, settings, mode, prompt || :mark, prefix, suffix, text, "
                "features, scores, latency, token_logprobs, line, end_line, severity, category, "
                "detail FROM suggestions WHERE instr(id, '-') = 0",
                {"tag": tag, "shift": copy, "mark": f"\n# {copy}"},
            )
            conn.execute(
                "INSERT INTO events (suggestion_id, time, time_ms, kind, accepted_chars, reason, "
                "check_after_s, similarity, text, data, value) SELECT suggestion_id || :tag, "
                "time, time_ms + :shift, kind, accepted_chars, reason, check_after_s, "
                "similarity, text, data, value FROM events WHERE instr(suggestion_id, '-') = 0",
                {"tag": tag, "shift": copy},
            )
        conn.execute(
            "DELETE FROM suggestions WHERE rowid IN "
            "(SELECT rowid FROM suggestions ORDER BY rowid DESC LIMIT max(0, "
            "(SELECT count(*) FROM suggestions) - :total))",
            {"total": total},
        )
        conn.execute("DELETE FROM events WHERE suggestion_id NOT IN (SELECT id FROM suggestions)")
    count = conn.execute("SELECT count(*) FROM suggestions").fetchone()[0]
    conn.execute("ANALYZE")
    conn.close()
    return count


def export_times(directory: Path, source: Path, total: int) -> dict[str, Any]:
    path = directory / "export.db"
    count = replicate(source, path, total)
    result: dict[str, Any] = {"suggestions": count, "file_bytes": path.stat().st_size}
    for fmt in ("dpo", "kto", "events"):
        out = directory / f"{fmt}.jsonl"
        started = time.perf_counter()
        exported = export_detailed(path, fmt, out)
        elapsed = time.perf_counter() - started
        result[fmt] = {
            "seconds": round(elapsed, 2),
            "rows": exported.written,
            "skipped": exported.reasons,
            "output_bytes": out.stat().st_size,
        }
        out.unlink()
    started = time.perf_counter()
    compute(path)
    result["stats_compute_s"] = round(time.perf_counter() - started, 2)
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--events", type=int, default=200_000)
    parser.add_argument("--suggestions", type=int, default=10_000)
    parser.add_argument("--export-rows", type=int, default=100_000)
    parser.add_argument("--json", type=Path, help="also write the summary here")
    args = parser.parse_args(argv)
    rng = random.Random(20261102)
    with tempfile.TemporaryDirectory(prefix="hintwise-bench-store-") as tmp:
        directory = Path(tmp)
        summary: dict[str, Any] = {
            "machine": {
                "cpus": os.cpu_count(),
                "python": platform.python_version(),
                "sqlite": sqlite3.sqlite_version,
            },
            "writer": writer_throughput(directory, args.events, rng),
        }
        size_db, summary["size"] = store_size(directory, args.suggestions, rng)
        summary["export"] = export_times(directory, size_db, args.export_rows)
    summary["targets"] = {
        "sustained_events_per_s_at_least_20000": summary["writer"]["sustained_events_per_s"]
        >= 20_000,
        "enqueue_p99_under_100_us": summary["writer"]["enqueue_us"]["p99"] < 100,
    }
    text = json.dumps(summary, indent=2)
    print(text)
    if args.json:
        args.json.write_text(text + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
