"""Mid-line completions on real library code: the pipeline beside naive prefix continuation.

    python bench/midline.py [--positions 240] [--runs naive,pipeline] [--label NAME]
        [--json OUT]

Positions are drawn (seeded) from lines of code in Python's standard library (not hintwise's own
code): the line is cut at a random column that is not inside a word, the rest of the line is
removed (as while typing it), and the rest of the file stays below. A suggestion is "right" when
it is exactly the rest of the line (trailing blanks ignored), "nothing" when none is shown.

Handlings:
  naive     bare llama-cpp-python, greedy, at most 48 tokens, cut at the first newline; its
            prompt is the text before the cursor from a line start about as far back as the
            pipeline's window (4 characters a token);
  pipeline  what the server runs (lsp_server.completion.Completer, an invoked request), with a
            20 s generation limit so that quality, not the shared machine's load, is measured.

The pipeline run is stored under `--label` (default "pipeline"); running this script once with
an older checkout of hintwise first on PYTHONPATH (`git archive` of the commit into a folder
named `hintwise`) and `--label before`, then with the current code and `--label after`, into
the same `--json` file compares the two position by position (greedy decoding: the same model
text both times). Figures come with Wilson 95% intervals and paired bootstrap differences.
"""

from __future__ import annotations

import argparse
import asyncio
import io
import json
import random
import re
import sys
import sysconfig
import time
import tokenize
from dataclasses import asdict, dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "bench"))
from fim_quality import paired_difference, start_completer, wilson  # noqa: E402

STDLIB = Path(sysconfig.get_paths()["stdlib"])
SOURCES = (
    "difflib.py",
    "textwrap.py",
    "argparse.py",
    "json/decoder.py",
    "json/encoder.py",
    "csv.py",
    "statistics.py",
    "fractions.py",
    "shlex.py",
    "configparser.py",
    "dataclasses.py",
    "functools.py",
    "heapq.py",
    "bisect.py",
    "calendar.py",
    "pprint.py",
    "string.py",
    "tempfile.py",
    "shutil.py",
    "gettext.py",
    "ipaddress.py",
    "zipfile.py",
    "tarfile.py",
    "email/utils.py",
)


@dataclass(frozen=True)
class Place:
    path: str
    line: int  # 0-based
    column: int
    typed: str  # the line up to the cursor
    rest: str  # what the user would type next on that line


def _string_rows(source: str) -> set[int]:
    """Rows covered by string tokens that span lines (docstrings), and comment rows."""
    rows: set[int] = set()
    for token in tokenize.generate_tokens(io.StringIO(source).readline):
        if token.type == tokenize.STRING and token.end[0] > token.start[0]:
            rows.update(range(token.start[0] - 1, token.end[0]))
        elif token.type == tokenize.COMMENT:
            rows.add(token.start[0] - 1)
    return rows


def _columns(line: str) -> list[int]:
    """Cursor columns inside the line's code, not inside a word."""
    start = len(line) - len(line.lstrip())
    return [
        column
        for column in range(start + 1, len(line.rstrip()))
        if not (re.match(r"\w", line[column - 1]) and re.match(r"\w", line[column]))
    ]


def places(count: int, seed: int = 0) -> list[Place]:
    rng = random.Random(seed)
    files = [STDLIB / name for name in SOURCES if (STDLIB / name).exists()]
    per_file = -(-count // len(files))
    chosen: list[Place] = []
    for path in files:
        source = path.read_text()
        skip = _string_rows(source)
        lines = source.split("\n")
        rows = [
            row
            for row, line in enumerate(lines)
            if row not in skip and len(line.strip()) >= 12 and _columns(line)
        ]
        for row in sorted(rng.sample(rows, min(per_file, len(rows)))):
            line = lines[row]
            column = rng.choice(_columns(line))
            chosen.append(Place(str(path), row, column, line[:column], line[column:].rstrip()))
    return chosen[:count]


def _cut(place: Place) -> tuple[str, int]:
    """The file with the rest of the cursor line removed, and the cursor's offset."""
    lines = Path(place.path).read_text().split("\n")
    offset = sum(len(line) + 1 for line in lines[: place.line]) + place.column
    lines[place.line] = place.typed
    return "\n".join(lines), offset


def run_naive(gguf: Path, chosen: list[Place], threads: int, window_chars: int) -> list[dict]:
    from llama_cpp import Llama

    from hintwise.models.llama.loading import avoid_amx_crash

    avoid_amx_crash()  # the same llama.cpp settings as the server's (see the function)
    llm = Llama(str(gguf), n_ctx=4096, n_threads=threads, n_threads_batch=threads, verbose=False)
    answers = []
    for place in chosen:
        text, offset = _cut(place)
        start = 0 if offset <= window_chars else text.find("\n", offset - window_chars) + 1
        out = llm.create_completion(
            text[start:offset], max_tokens=48, temperature=0.0, top_k=1, stop=["\n"]
        )
        answers.append({"text": out["choices"][0]["text"], "reason": ""})
    llm.close()
    return answers


def run_pipeline(gguf: Path, chosen: list[Place], threads: int, prefix_tokens: int) -> list[dict]:
    from hintwise.lsp_server.code.documents import Document
    from hintwise.lsp_server.config import CompletionSettings

    settings = CompletionSettings(time_limit_ms=20000, prewarm=False, prefix_tokens=prefix_tokens)
    completer, worker = start_completer(gguf, threads)
    answers = []

    async def ask_all() -> None:
        for place in chosen:
            text, offset = _cut(place)
            document = Document(f"file://{place.path}", "python", 1, text, "utf-32")
            result = await completer.complete(document, offset, settings, automatic=False)
            answers.append(
                {"text": result.text or "", "reason": result.reason, "attempts": result.attempts}
            )

    asyncio.run(ask_all())
    worker.stop()
    return answers


def summarise(chosen: list[Place], answers: list[dict]) -> tuple[dict, list[bool], list[bool]]:
    right = [
        answer["text"].rstrip() == place.rest for place, answer in zip(chosen, answers, strict=True)
    ]
    nothing = [not answer["text"].strip() for answer in answers]
    n = len(chosen)
    figures = {
        "n": n,
        "right": sum(right),
        "right_pct": round(100 * sum(right) / n, 1),
        "right_ci95": wilson(sum(right), n),
        "nothing": sum(nothing),
        "nothing_pct": round(100 * sum(nothing) / n, 1),
        "nothing_ci95": wilson(sum(nothing), n),
    }
    return figures, right, nothing


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default="gemma3-270m")
    parser.add_argument("--positions", type=int, default=240)
    parser.add_argument("--runs", default="naive,pipeline")
    parser.add_argument("--label", default="pipeline", help="name of the pipeline run")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument(
        "--prefix-tokens", type=int, default=256, help="the prompt window (server: 1024)"
    )
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args()

    from hintwise.lsp_server.config import Settings, from_environment
    from hintwise.lsp_server.engines.choice import model_path

    settings = from_environment(Settings())
    settings = Settings(model=type(settings.model)(name=args.model), data_dir=settings.data_dir)
    gguf = model_path(settings, lambda message: print(message, file=sys.stderr))
    chosen = places(args.positions)
    report = {
        "positions": [asdict(place) for place in chosen],
        "prefix_tokens": args.prefix_tokens,
        "runs": {},
    }
    if args.json is not None and args.json.exists():
        previous = json.loads(args.json.read_text())
        if all(previous.get(key) == report[key] for key in ("positions", "prefix_tokens")):
            report = previous
    report["date"] = time.strftime("%Y-%m-%d")
    for run in args.runs.split(","):
        started = time.perf_counter()
        if run == "naive":
            window = args.prefix_tokens * 4
            answers = run_naive(gguf, chosen, args.threads, window)
            key = "naive"
        else:
            answers = run_pipeline(gguf, chosen, args.threads, args.prefix_tokens)
            key = args.label
        figures, _, _ = summarise(chosen, answers)
        figures["minutes"] = round((time.perf_counter() - started) / 60, 1)
        report["runs"][key] = {"figures": figures, "answers": answers}
        print(f"{key}: {figures}", file=sys.stderr, flush=True)
        _compare(report, chosen)
        if args.json is not None:
            args.json.write_text(json.dumps(report, indent=2))
    print(json.dumps({k: v["figures"] for k, v in report["runs"].items()}, indent=2))
    print(json.dumps(report.get("differences", {}), indent=2))


def _compare(report: dict, chosen: list[Place]) -> None:
    """Paired differences between every two runs: right (points) and nothing shown (points)."""
    verdicts = {key: summarise(chosen, run["answers"])[1:] for key, run in report["runs"].items()}
    keys = sorted(verdicts)
    differences = {}
    for a in keys:
        for b in keys:
            if a < b:
                differences[f"right: {b} − {a}"] = paired_difference(verdicts[a][0], verdicts[b][0])
                differences[f"nothing: {b} − {a}"] = paired_difference(
                    verdicts[a][1], verdicts[b][1]
                )
    report["differences"] = differences


if __name__ == "__main__":
    main()
