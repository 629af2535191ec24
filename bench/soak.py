"""Memory over a long typing session: does the server's RSS keep growing?

    python bench/soak.py [--minutes 15] [--warmup 0.2] [--warmup-minutes 5.5] [--options JSON]
        [--engine bundled|echo] [--json OUT]

One `hintwise serve` (stdio, the bundled model, short answers so that many requests fit in the
time), driven like an editor by a scripted user: it types into one of several open files, asks for
an automatic inline completion after each keystroke, accepts (`hintwise.accept`) or rejects
(`hintwise/didReject`) about half of what it is shown, reports `hintwise/didShow`, moves to another
line, and now and then closes a file and opens another (a 1 MB one among them, the first of them
at the start). Every 10 s the server's RSS (/proc/PID/status VmRSS) is sampled with the number of
requests so far.

Reported: RSS after warm-up (the first `--warmup` share of the requests, and at least the first
`--warmup-minutes`: an accepted suggestion is held five minutes for its survival checks, so the
tracker's population grows for five minutes whatever the rate, and on a busy machine that growth
over a few hundred requests read as megabytes per 1,000) and at the end, and the slope of RSS
against requests after warm-up (least squares, MB per 1,000 requests) with a 95% interval from
the regression. Issue 15's target: at most 1 MB per 1,000 requests. Also how the completion
requests were answered (shown, empty, error): a run whose answers turn empty makes requests
faster and cheaper, and its slope per request is not comparable.
`--options '{"telemetry": {"enabled": false}}'` adds settings to the bench's own (a run without
the feedback store, for comparison).
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "bench"))

from kill9 import FAST, echo_engine, lsp_range, start_server  # noqa: E402

SOURCE = (ROOT / "examples" / "primes.py").read_text()


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def slope(points: list[tuple[float, ...]]) -> tuple[float, float]:
    """Least-squares slope of y on x (the first two values of each point) and its 95%
    half-width."""
    points = [(p[0], p[1]) for p in points]
    xs, ys = [p[0] for p in points], [p[1] for p in points]
    mx, my = statistics.fmean(xs), statistics.fmean(ys)
    sxx = sum((x - mx) ** 2 for x in xs)
    b = sum((x - mx) * (y - my) for x, y in points) / sxx
    residual = sum((y - my - b * (x - mx)) ** 2 for x, y in points) / max(1, len(points) - 2)
    return b, 1.96 * (residual / sxx) ** 0.5


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--minutes", type=float, default=15)
    parser.add_argument("--warmup", type=float, default=0.2)
    parser.add_argument("--warmup-minutes", type=float, default=5.5)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--options", type=json.loads, default={})
    parser.add_argument("--json", type=Path, default=None)
    parser.add_argument(
        "--engine",
        choices=("bundled", "echo"),
        default="bundled",
        help="echo: an engine that answers at once (kill9.py's), to tell the server's own "
        "memory from the model's with many more requests in the same time",
    )
    args = parser.parse_args()
    rng = random.Random(args.seed)
    base = {**FAST, **echo_engine()} if args.engine == "echo" else FAST
    options = {**base, **{k: {**base.get(k, {}), **v} for k, v in args.options.items()}}
    process, client = start_server(Path(tempfile.mkdtemp(prefix="hintwise-soak-")), options)
    documents: dict[str, dict] = {}
    opened = 0

    def open_one() -> str:
        nonlocal opened
        opened += 1
        uri = f"file:///soak/file{opened}.py"
        # Now and then a 1 MB file, the first one among the files opened at the start: the peak
        # it brings (its text, tree and prompts, which malloc keeps for reuse once freed) is a
        # step, not a slope, and belongs in the warm-up rather than at a random later point.
        text = SOURCE * (120 if opened % 7 == 3 else 1)
        client.notify(
            "textDocument/didOpen",
            {"textDocument": {"uri": uri, "languageId": "python", "version": 1, "text": text}},
        )
        documents[uri] = {"version": 1, "line": 14}
        return uri

    for _ in range(3):
        open_one()
    requests, samples = 0, []
    answers = {"shown": 0, "empty": 0, "error": 0}  # the completion requests' answers
    started = last_sample = time.monotonic()
    try:
        while time.monotonic() - started < args.minutes * 60:
            uri = rng.choice(list(documents))
            state = documents[uri]
            state["version"] += 1
            line = state["line"]
            change = {"range": lsp_range(line, 12, line, 12), "text": rng.choice("abcx ")}
            client.notify(
                "textDocument/didChange",
                {
                    "textDocument": {"uri": uri, "version": state["version"]},
                    "contentChanges": [change],
                },
            )
            answer = client.request(
                "textDocument/inlineCompletion",
                {
                    "textDocument": {"uri": uri},
                    "position": {"line": line, "character": 13},
                    "context": {"triggerKind": 2},
                },
            )
            requests += 1
            items = ((answer or {}).get("result") or {}).get("items") or []
            answers["error" if (answer or {}).get("error") else "shown" if items else "empty"] += 1
            if items:
                suggestion_id = items[0]["command"]["arguments"][0]
                client.notify("hintwise/didShow", {"id": suggestion_id})
                if rng.random() < 0.5:
                    client.request(
                        "workspace/executeCommand",
                        {"command": "hintwise.accept", "arguments": [suggestion_id]},
                    )
                else:
                    client.notify("hintwise/didReject", {"id": suggestion_id})
                requests += 1
            state["line"] = 14 + rng.randrange(0, 20)  # moving on: replacements are taken
            if rng.random() < 0.01:
                gone = rng.choice(list(documents))
                client.notify("textDocument/didClose", {"textDocument": {"uri": gone}})
                del documents[gone]
                open_one()
            if time.monotonic() - last_sample >= 10:
                last_sample = time.monotonic()
                elapsed = round(time.monotonic() - started)
                samples.append((requests, rss_mb(process.pid), elapsed))
                print(f"{requests} requests, RSS {samples[-1][1]:.1f} MB", file=sys.stderr)
    finally:
        process.kill()
        process.wait()
    after = [
        p for p in samples if p[0] >= args.warmup * requests and p[2] >= args.warmup_minutes * 60
    ]
    per_request, half = slope(after) if len(after) >= 3 else (float("nan"), float("nan"))
    report = {
        "date": time.strftime("%Y-%m-%d"),
        "minutes": args.minutes,
        "engine": args.engine,
        "options": args.options,
        "requests": requests,
        "requests_after_warmup": requests - after[0][0] if after else 0,
        "files_opened": opened,
        "completion_answers": answers,
        "rss_mb_after_warmup": round(after[0][1], 1) if after else None,
        "rss_mb_end": round(samples[-1][1], 1) if samples else None,
        "slope_mb_per_1000_requests": round(1000 * per_request, 2),
        "slope_ci95": [
            round(1000 * (per_request - half), 2),
            round(1000 * (per_request + half), 2),
        ],
        "samples": samples,
    }
    print(json.dumps({k: v for k, v in report.items() if k != "samples"}, indent=2))
    if args.json:
        args.json.write_text(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
