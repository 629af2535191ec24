"""HumanEval single-line infilling: hintwise's pipeline beside naive prefix continuation.

    python bench/fim_quality.py [--models gemma3-270m,smollm2-135m] [--limit N] [--json OUT]

Data: ../shared/data/fim/humaneval_single_line.jsonl (1,033 holes; MIT, © OpenAI). Each hole is
scored by executing prompt + completed line + suffix + test and `check(entry_point)` in a fresh
interpreter with a timeout (pass@1), and by exact match of the completed line.

Where the cursor is when the user asks:
  line   on a new empty line where the hole goes (what the published naive numbers measure);
  indent after the hole's indentation, as an editor's auto-indent leaves it;
  ident  in the middle of the line's first word (after half of it), as while typing.

Handlings:
  naive     bare llama-cpp-python, greedy, at most 48 tokens, the text before the cursor as the
            whole prompt, cut at the first newline (how NOTES.md measured 31.1% / 2.6%);
  pipeline  exactly what the server runs (lsp_server.completion.Completer: tree-sitter context,
            prompt window, token healing, post-processing), in this process;
  no-heal   the pipeline with token healing off, to isolate healing's effect;
  single    the pipeline with one greedy candidate (completion.candidates = 1), as before the
            candidate search ranked by the code after the cursor (models.llama.candidates).

For the pipeline, `alt3` is the share of holes where the suggestion or one of the (up to two)
alternatives an invoked request would offer passes, and `p50_generate_ms` the generation time
alone (what a warm request pays on top of a few prompt tokens), to compare with `single`.

The pipeline gets a 20 s generation limit here (default 1 s) so that quality, not this shared
machine's momentary load, is measured. Figures come with 95% intervals (Wilson for rates,
paired bootstrap for differences).
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import hashlib
import json
import math
import os
import random
import re
import statistics
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DATA = ROOT.parent / "shared" / "data" / "fim" / "humaneval_single_line.jsonl"
SCENARIOS = ("line", "indent", "ident")
RUNS = [
    ("line", "naive"),
    ("line", "single"),
    ("line", "pipeline"),
    ("indent", "naive"),
    ("indent", "single"),
    ("indent", "no-heal"),
    ("indent", "pipeline"),
    ("ident", "naive"),
    ("ident", "no-heal"),
    ("ident", "pipeline"),
]


@dataclass
class Hole:
    task_id: str
    prompt: str
    suffix: str
    solution: str  # the missing line, with its indentation and newline
    test: str
    entry_point: str

    def typed(self, scenario: str) -> str:
        """What is already on the hole's line when the user asks."""
        indent = self.solution[: len(self.solution) - len(self.solution.lstrip())]
        if scenario == "line":
            return ""
        if scenario == "indent":
            return indent
        word = re.match(r"[A-Za-z_]\w*", self.solution.lstrip())
        if word is None or len(word.group(0)) < 2:
            return indent
        return indent + word.group(0)[: max(1, len(word.group(0)) // 2)]


def load(limit: int | None) -> list[Hole]:
    if not DATA.exists():
        sys.exit(f"skipped: {DATA} is absent (it lives in ../shared/data, next to the clone)")
    rows = [json.loads(line) for line in DATA.read_text().splitlines() if line.strip()]
    holes = [
        Hole(
            r["task_id"],
            r["prompt"],
            r["suffix"],
            r["canonical_solution"],
            r["test"],
            r["entry_point"],
        )
        for r in rows
    ]
    return holes[:limit] if limit else holes


def program(hole: Hole, line: str) -> str:
    return f"{hole.prompt}{line}\n{hole.suffix}\n{hole.test}\ncheck({hole.entry_point})\n"


_verdicts: dict[str, bool] = {}


def passes(source: str) -> bool:
    key = hashlib.sha256(source.encode()).hexdigest()
    if key not in _verdicts:
        with tempfile.NamedTemporaryFile("w", suffix=".py", delete=False) as handle:
            handle.write(source)
        try:
            done = subprocess.run(
                [sys.executable, handle.name],
                capture_output=True,
                timeout=10,
                cwd=tempfile.gettempdir(),
            )
            _verdicts[key] = done.returncode == 0
        except subprocess.TimeoutExpired:
            _verdicts[key] = False
        finally:
            os.unlink(handle.name)
    return _verdicts[key]


def wilson(successes: int, total: int, digits: int = 1) -> tuple[float, float]:
    """95% interval of a proportion, in percent rounded to `digits`."""
    if total == 0:
        return (0.0, 0.0)
    z, p = 1.96, successes / total
    centre = (p + z * z / (2 * total)) / (1 + z * z / total)
    half = z * math.sqrt(p * (1 - p) / total + z * z / (4 * total * total)) / (1 + z * z / total)
    return (max(0.0, round(100 * (centre - half), digits)), round(100 * (centre + half), digits))


def paired_difference(a: list[bool], b: list[bool], rounds: int = 2000) -> dict:
    """Percentage-point difference b − a with a paired bootstrap 95% interval."""
    rng = random.Random(0)
    n = len(a)
    point = 100 * (sum(b) - sum(a)) / n
    samples = []
    for _ in range(rounds):
        picks = [rng.randrange(n) for _ in range(n)]
        samples.append(100 * sum(b[i] - a[i] for i in picks) / n)
    samples.sort()
    return {
        "points": round(point, 1),
        "ci95": [round(samples[int(0.025 * rounds)], 1), round(samples[int(0.975 * rounds)], 1)],
        "only_b": sum(1 for x, y in zip(a, b, strict=True) if y and not x),
        "only_a": sum(1 for x, y in zip(a, b, strict=True) if x and not y),
    }


def run_naive(gguf: Path, holes: list[Hole], scenario: str, threads: int) -> list[dict]:
    from llama_cpp import Llama

    from hintwise.models.llama.loading import avoid_amx_crash

    avoid_amx_crash()  # the same llama.cpp settings as the server's (see the function)
    llm = Llama(str(gguf), n_ctx=4096, n_threads=threads, n_threads_batch=threads, verbose=False)
    answers = []
    for hole in holes:
        typed = hole.typed(scenario)
        started = time.perf_counter()
        out = llm.create_completion(
            hole.prompt + typed, max_tokens=48, temperature=0.0, top_k=1, stop=["\n"]
        )
        elapsed = (time.perf_counter() - started) * 1000
        answers.append({"line": typed + out["choices"][0]["text"], "ms": elapsed})
    llm.close()
    return answers


def start_completer(gguf: Path, threads: int):
    """The server's Completer on a model worker with a prepared engine (the healing index
    built), as the server has it once it is ready; stop the worker when done."""
    from hintwise.lsp_server.completion.completer import Completer
    from hintwise.models.llama.engine import LlamaEngine
    from hintwise.models.worker import ModelWorker

    worker = ModelWorker(lambda: LlamaEngine(gguf, threads=threads)).start()
    worker.wait_ready()
    worker.submit(lambda engine, cancelled: engine.prepare()).future.result()
    return Completer(worker), worker


def run_pipeline(
    gguf: Path, holes: list[Hole], scenario: str, handling: str, threads: int
) -> list[dict]:
    sys.path.insert(0, str(ROOT))
    from hintwise.lsp_server.code.documents import Document
    from hintwise.lsp_server.config import CompletionSettings

    settings = CompletionSettings(
        time_limit_ms=20000,
        token_healing=handling != "no-heal",
        prewarm=False,
        candidates=1 if handling == "single" else CompletionSettings.candidates,
    )
    completer, worker = start_completer(gguf, threads)
    answers = []

    async def ask_all() -> None:
        for number, hole in enumerate(holes):
            typed = hole.typed(scenario)
            text = hole.prompt + typed + "\n" + hole.suffix
            document = Document(f"file:///humaneval/{number}.py", "python", 1, text, "utf-32")
            offset = len(hole.prompt) + len(typed)
            result = await completer.complete(document, offset, settings, automatic=True)
            answers.append(
                {
                    "line": typed + (result.text or ""),
                    "ms": result.latency_ms.get("total", 0.0),
                    "generate_ms": result.latency_ms.get("generate", 0.0),
                    "reason": result.reason,
                    "alternatives": [typed + (other.text or "") for other in result.alternatives],
                }
            )
            completer.forget(document.uri)

    asyncio.run(ask_all())
    worker.stop()
    return answers


def warm_latency(gguf: Path, holes: list[Hole], scenario: str, threads: int) -> dict:
    """Warm requests, single candidate against the candidate search, interleaved hole by hole
    in one process (the machine's load falls on both alike): per hole one cold request to fill
    the prompt cache, then each handling on the cached prompt, in alternating order."""
    sys.path.insert(0, str(ROOT))
    from hintwise.lsp_server.code.documents import Document
    from hintwise.lsp_server.config import CompletionSettings

    base = CompletionSettings(time_limit_ms=20000, prewarm=False)
    handlings = {"single": dataclasses.replace(base, candidates=1), "pipeline": base}
    completer, worker = start_completer(gguf, threads)
    times: dict[str, list[float]] = {name: [] for name in handlings}

    async def ask_all() -> None:
        for number, hole in enumerate(holes):
            typed = hole.typed(scenario)
            text = hole.prompt + typed + "\n" + hole.suffix
            document = Document(f"file:///warm/{number}.py", "python", 1, text, "utf-32")
            offset = len(hole.prompt) + len(typed)
            await completer.complete(document, offset, base, automatic=True)  # cold
            order = list(handlings) if number % 2 else list(reversed(handlings))
            for name in order:
                completer.cache.forget(document.uri)
                result = await completer.complete(document, offset, handlings[name], True)
                times[name].append(result.latency_ms.get("total", 0.0))
            completer.forget(document.uri)

    asyncio.run(ask_all())
    worker.stop()
    ratios = [b / a for a, b in zip(times["single"], times["pipeline"], strict=True) if a > 0]
    return {
        "n": len(holes),
        "p50_ms": {name: round(statistics.median(values), 1) for name, values in times.items()},
        "p95_ms": {
            name: round(sorted(values)[int(0.95 * (len(values) - 1))], 1)
            for name, values in times.items()
        },
        "ratio_of_p50": round(
            statistics.median(times["pipeline"]) / statistics.median(times["single"]), 2
        ),
        "median_paired_ratio": round(statistics.median(ratios), 2) if ratios else None,
    }


def score(holes: list[Hole], answers: list[dict]) -> tuple[list[bool], list[bool]]:
    sources = [program(hole, answer["line"]) for hole, answer in zip(holes, answers, strict=True)]
    with ThreadPoolExecutor(max_workers=2) as pool:
        passed = list(pool.map(passes, sources))
    exact = [
        answer["line"].rstrip() == hole.solution.rstrip()
        for hole, answer in zip(holes, answers, strict=True)
    ]
    return passed, exact


def alternatives_pass(holes: list[Hole], answers: list[dict], passed: list[bool]) -> list[bool]:
    """Per hole: the suggestion or one of its alternatives passes."""
    sources = [
        program(hole, line)
        for hole, answer, ok in zip(holes, answers, passed, strict=True)
        if not ok
        for line in answer.get("alternatives", ())
    ]
    with ThreadPoolExecutor(max_workers=2) as pool:
        list(pool.map(passes, sources))  # fills the verdict cache
    return [
        ok or any(passes(program(hole, line)) for line in answer.get("alternatives", ()))
        for hole, answer, ok in zip(holes, answers, passed, strict=True)
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--models", default="gemma3-270m,smollm2-135m")
    parser.add_argument("--limit", type=int, default=None, help="only the first N holes")
    parser.add_argument("--runs", default=None, help="e.g. line:naive,line:pipeline")
    parser.add_argument("--threads", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--json", type=Path, default=None)
    parser.add_argument(
        "--warm-latency",
        type=int,
        default=0,
        metavar="N",
        help="only measure warm latency, single vs pipeline, on the first N holes",
    )
    args = parser.parse_args()

    sys.path.insert(0, str(ROOT))
    from hintwise.lsp_server.config import Settings, from_environment
    from hintwise.lsp_server.engines.choice import model_path

    holes = load(args.limit)
    runs = [tuple(run.split(":")) for run in args.runs.split(",")] if args.runs else RUNS
    report = _previous_report(args.json, len(holes)) or {"holes": len(holes), "models": {}}
    report.update(date=time.strftime("%Y-%m-%d"), threads=args.threads)
    for name in args.models.split(","):
        settings = from_environment(Settings())
        settings = Settings(model=type(settings.model)(name=name), data_dir=settings.data_dir)
        gguf = model_path(settings, lambda message: print(message, file=sys.stderr))
        entry = report["models"].setdefault(name, {"runs": {}, "differences": {}, "verdicts": {}})
        if args.warm_latency:
            for scenario in ("line", "indent"):
                found = warm_latency(gguf, holes[: args.warm_latency], scenario, args.threads)
                entry.setdefault("warm_latency", {})[scenario] = found
                print(f"{name} warm {scenario}: {found}", file=sys.stderr, flush=True)
                _save(report, args.json)
            continue
        results: dict = entry["runs"]
        verdicts: dict[str, list[bool]] = {
            key: [mark == "1" for mark in marks] for key, marks in entry["verdicts"].items()
        }
        for scenario, handling in runs:
            started = time.perf_counter()
            if handling == "naive":
                answers = run_naive(gguf, holes, scenario, args.threads)
            else:
                answers = run_pipeline(gguf, holes, scenario, handling, args.threads)
            passed, exact = score(holes, answers)
            alt3 = alternatives_pass(holes, answers, passed)
            key = f"{scenario}:{handling}"
            verdicts[key] = passed
            results[key] = {
                "pass_at_1": round(100 * sum(passed) / len(holes), 1),
                "pass_ci95": wilson(sum(passed), len(holes)),
                "exact_match": round(100 * sum(exact) / len(holes), 1),
                "empty": sum(1 for answer in answers if not answer["line"].strip()),
                "p50_ms": round(statistics.median(answer["ms"] for answer in answers), 1),
                "p50_generate_ms": round(
                    statistics.median(
                        answer.get("generate_ms", answer["ms"]) for answer in answers
                    ),
                    1,
                ),
                "alt3": round(100 * sum(alt3) / len(holes), 1) if handling == "pipeline" else None,
                "minutes": round((time.perf_counter() - started) / 60, 1),
            }
            entry["verdicts"][key] = "".join("1" if ok else "0" for ok in passed)
            print(f"{name} {key}: {results[key]}", file=sys.stderr, flush=True)
            entry["differences"] = _differences(verdicts)
            _save(report, args.json)
    print(json.dumps(report, indent=2))


def _differences(verdicts: dict[str, list[bool]]) -> dict:
    comparisons = {}
    for scenario in SCENARIOS:
        for base in ("naive", "no-heal", "single"):
            a, b = verdicts.get(f"{scenario}:{base}"), verdicts.get(f"{scenario}:pipeline")
            if a and b:
                comparisons[f"{scenario}: pipeline − {base}"] = paired_difference(a, b)
    return comparisons


def _previous_report(path: Path | None, holes: int) -> dict | None:
    """Runs already measured on the same holes are kept, so a long benchmark can be resumed
    run by run (--runs) and still compare every pair hole by hole."""
    if path is None or not path.exists():
        return None
    report = json.loads(path.read_text())
    return report if report.get("holes") == holes else None


def _save(report: dict, path: Path | None) -> None:
    """Written after every run: an interrupted benchmark keeps what it measured."""
    if path is not None:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
