"""Multi-line holes: hintwise's pipeline beside naive prefix continuation.

    python bench/multiline.py [--sets humaneval,library] [--limit N] [--json OUT]

Holes are k ≥ 2 whole lines (no blank line among them) removed at a statement boundary inside
a function body: the whole body of an inner `if`/`for`/`while`/`with`/`try` ("block"), the rest
of a body ("tail"), or a run of statements in the middle of one ("middle"). The hole leaves one
empty line in the document, the code after it stays (the suffix).

Sets:
  humaneval  the 164 HumanEval problems' full solutions (prompt + line + suffix of
             ../shared/data/fim/humaneval_single_line.jsonl), one hole per problem, scored by
             executing the test and `check(entry_point)` (pass@1), exact match and similarity;
  library    module-level functions of the standard library and installed site-packages (not
             hintwise), one hole per function; the document is the file from a top-level
             statement about 60 lines above the function to about 15 lines below it.

Cursor: `line` at column 0 of the hole's empty line; `indent` after the hole's first line's
indentation (an editor's auto-indent).

Handlings, side by side for every hole:
  oracle    bare llama-cpp-python, greedy, the text before the cursor as the whole prompt
            (its last 1,500 tokens), stopped at the hole's TRUE line count;
  first     the same continuation stopped at its first line;
  pipeline  exactly what the server runs (lsp_server.completion.Completer), default settings
            except a 20 s generation limit (quality, not this shared machine's load).

Scores: exact match of the hole's lines (each line stripped, blank lines dropped), edit
similarity (difflib ratio of those lines joined), pass@1 (humaneval). 95% intervals: Wilson for
rates, paired bootstrap for differences.
"""

from __future__ import annotations

import argparse
import ast
import asyncio
import difflib
import json
import random
import statistics
import sys
import sysconfig
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from fim_quality import DATA, passes, start_completer, wilson

MAX_HOLE_LINES = 8
NAIVE_TOKENS = 160
NAIVE_PROMPT_TOKENS = 1500
STDLIB_MODULES = (
    "textwrap",
    "difflib",
    "shlex",
    "fractions",
    "statistics",
    "csv",
    "json/decoder",
    "json/encoder",
    "argparse",
    "configparser",
    "gettext",
    "heapq",
    "bisect",
    "calendar",
    "colorsys",
    "ipaddress",
    "string",
    "tokenize",
    "pprint",
    "glob",
    "fnmatch",
    "posixpath",
    "ntpath",
    "urllib/parse",
    "email/utils",
    "http/cookies",
    "dataclasses",
    "functools",
    "inspect",
    "locale",
    "mimetypes",
    "netrc",
    "optparse",
    "pathlib",
    "pickletools",
    "platform",
    "quopri",
    "random",
    "sched",
    "shutil",
    "tempfile",
    "typing",
    "wave",
    "zipfile",
    "base64",
    "codecs",
    "copy",
    "enum",
    "filecmp",
    "gzip",
    "hashlib",
    "hmac",
    "imaplib",
    "logging/__init__",
    "operator",
    "pydoc",
    "reprlib",
    "secrets",
    "selectors",
    "socket",
    "ssl",
    "subprocess",
    "tarfile",
    "threading",
    "timeit",
    "trace",
    "traceback",
    "warnings",
    "weakref",
    "zipimport",
)
SITE_PACKAGES = (
    "click",
    "attr",
    "cattrs",
    "idna",
    "certifi",
    "dateutil",
    "httpx",
    "h11",
    "anyio",
    "pygls",
    "lsprotocol",
    "sqlite_utils",
    "diskcache",
    "detect_secrets",
    "dotenv",
    "packaging",
    "pluggy",
    "pyparsing",
    "yaml",
)
_COMPOUND = (ast.If, ast.For, ast.While, ast.With, ast.Try, ast.AsyncFor, ast.AsyncWith)


@dataclass
class Hole:
    set: str
    name: str
    kind: str  # block / tail / middle
    before: str  # document text up to the hole's line
    lines: list[str]  # the hole's lines, without newlines
    after: str  # document text from the line after the hole
    test: str = ""  # humaneval: test code + check(entry_point)

    def typed(self, scenario: str) -> str:
        first = self.lines[0]
        return first[: len(first) - len(first.lstrip())] if scenario == "indent" else ""

    def document(self, scenario: str) -> tuple[str, int]:
        typed = self.typed(scenario)
        return self.before + typed + "\n" + self.after, len(self.before) + len(typed)

    def program(self, answer: str) -> str:
        return f"{self.before}{answer}\n{self.after}{self.test}"


def _runs(statements: list[ast.stmt], nested: bool) -> list[tuple[str, int, int]]:
    """(kind, first line, last line) of the holes one statement list offers (1-based lines)."""
    found = []
    n = len(statements)
    for i in range(n):
        for j in range(i + 1, n + 1):
            first, last = statements[i].lineno, statements[j - 1].end_lineno or 0
            if not 2 <= last - first + 1 <= MAX_HOLE_LINES:
                continue
            if i == 0 and j == n:
                kind = "block" if nested else ""
            elif j == n and i > 0:
                kind = "tail"
            elif i > 0:
                kind = "middle"
            else:
                kind = ""
            if kind:
                found.append((kind, first, last))
    return found


def _candidates(function: ast.FunctionDef) -> list[tuple[str, int, int]]:
    body = function.body
    if body and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant):
        body = body[1:]  # the docstring stays
    found = _runs(body, nested=False) if body else []
    for node in ast.walk(function):
        if isinstance(node, _COMPOUND):
            for block in ("body", "orelse", "finalbody"):
                statements = getattr(node, block, None)
                if statements:
                    found.extend(_runs(statements, nested=True))
    return found


def _pick(
    source_lines: list[str], candidates: list[tuple[str, int, int]], rng: random.Random
) -> tuple[str, int, int] | None:
    """One hole, kinds equally likely, without blank lines inside."""
    usable = [c for c in candidates if all(source_lines[i].strip() for i in range(c[1] - 1, c[2]))]
    kinds = sorted({c[0] for c in usable})
    if not kinds:
        return None
    kind = rng.choice(kinds)
    return rng.choice([c for c in usable if c[0] == kind])


def humaneval_holes(rng: random.Random) -> list[Hole]:
    holes = []
    seen: set[str] = set()
    for row in map(json.loads, DATA.read_text().splitlines()):
        problem = row["task_id"].rsplit("/", 1)[0]
        if problem in seen:
            continue
        seen.add(problem)
        source = row["prompt"] + row["canonical_solution"] + row["suffix"]
        tree = ast.parse(source)
        function = next(
            node
            for node in ast.walk(tree)
            if isinstance(node, ast.FunctionDef) and node.name == row["entry_point"]
        )
        lines = source.split("\n")
        picked = _pick(lines, _candidates(function), rng)
        if picked is None:
            continue
        kind, first, last = picked
        test = f"{row['test']}\ncheck({row['entry_point']})\n"
        holes.append(
            Hole(
                "humaneval",
                problem,
                kind,
                "".join(line + "\n" for line in lines[: first - 1]),
                lines[first - 1 : last],
                "\n".join(lines[last:]),
                "\n" + test,
            )
        )
    return holes


def _library_files() -> list[Path]:
    stdlib = Path(sysconfig.get_paths()["stdlib"])
    site = Path(sysconfig.get_paths()["purelib"])
    files = [stdlib / f"{name}.py" for name in STDLIB_MODULES]
    for package in SITE_PACKAGES:
        root = site / package
        files.extend(sorted(root.rglob("*.py")) if root.is_dir() else [site / f"{package}.py"])
    return [path for path in files if path.is_file() and "hintwise" not in str(path)]


def library_holes(rng: random.Random, wanted: int) -> list[Hole]:
    """One hole per sampled module-level function (6–80 lines)."""
    functions = []
    for path in _library_files():
        try:
            source = path.read_text(encoding="utf-8")
            tree = ast.parse(source)
        except (SyntaxError, UnicodeDecodeError, ValueError):
            continue
        starts = [
            (getattr(n, "decorator_list", None) and n.decorator_list[0].lineno) or n.lineno
            for n in tree.body
        ]
        for index, node in enumerate(tree.body):
            if (
                isinstance(node, ast.FunctionDef)
                and 6 <= (node.end_lineno or 0) - node.lineno <= 80
            ):
                functions.append((path, source, starts, index, node))
    rng.shuffle(functions)
    holes = []
    for path, source, starts, index, node in functions:
        if len(holes) >= wanted:
            break
        lines = source.split("\n")
        picked = _pick(lines, _candidates(node), rng)
        if picked is None:
            continue
        kind, first, last = picked
        top = min(s for s in starts[: index + 1] if s >= starts[index] - 60)
        following = [s for s in starts[index + 1 :] if s > (node.end_lineno or 0) + 15]
        bottom = following[0] - 1 if following else len(lines)
        holes.append(
            Hole(
                "library",
                f"{path.name}:{node.name}",
                kind,
                "".join(line + "\n" for line in lines[top - 1 : first - 1]),
                lines[first - 1 : last],
                "\n".join(lines[last:bottom]) + "\n",
            )
        )
    return holes


def normalised(text: str) -> list[str]:
    return [line.strip() for line in text.split("\n") if line.strip()]


def similarity(answer: str, truth: list[str]) -> float:
    a, b = "\n".join(normalised(answer)), "\n".join(normalised("\n".join(truth)))
    return difflib.SequenceMatcher(None, a, b, autojunk=False).ratio()


def first_lines(text: str, count: int) -> str:
    """The first `count` non-blank lines of a continuation (the blank ones between kept)."""
    kept, seen = [], 0
    for line in text.split("\n"):
        kept.append(line)
        seen += 1 if line.strip() else 0
        if seen >= count:
            break
    return "\n".join(kept).rstrip()


def run_naive(gguf: Path, holes: list[Hole], scenario: str, threads: int) -> list[dict]:
    from llama_cpp import Llama

    from hintwise.models.llama.loading import avoid_amx_crash

    avoid_amx_crash()  # the same llama.cpp settings as the server's (see the function)
    llm = Llama(str(gguf), n_ctx=4096, n_threads=threads, n_threads_batch=threads, verbose=False)
    answers = []
    for number, hole in enumerate(holes):
        if number % 10 == 0:
            print(f"naive {scenario} {number}/{len(holes)}", file=sys.stderr, flush=True)
        typed = hole.typed(scenario)
        prompt = llm.tokenize((hole.before + typed).encode(), add_bos=True, special=False)
        prompt = prompt[:1] + prompt[1:][-NAIVE_PROMPT_TOKENS:]
        raw = typed
        # Streamed, so that generation stops a few lines past the hole (the extra lines show
        # what a stop rule would have had to cut).
        for chunk in llm.create_completion(
            prompt, max_tokens=NAIVE_TOKENS, temperature=0.0, top_k=1, stream=True
        ):
            raw += chunk["choices"][0]["text"]
            if len([line for line in raw.split("\n")[:-1] if line.strip()]) > len(hole.lines) + 2:
                break
        answers.append(
            {
                "raw": raw,
                "oracle": first_lines(raw, len(hole.lines)),
                "first": first_lines(raw, 1),
            }
        )
    llm.close()
    return answers


def run_pipeline(gguf: Path, holes: list[Hole], scenario: str, threads: int) -> list[dict]:
    from hintwise.lsp_server.code.documents import Document
    from hintwise.lsp_server.config import CompletionSettings

    settings = CompletionSettings(time_limit_ms=20000, prewarm=False)
    completer, worker = start_completer(gguf, threads)
    answers = []

    async def ask_all() -> None:
        for number, hole in enumerate(holes):
            if number % 10 == 0:
                print(f"pipeline {scenario} {number}/{len(holes)}", file=sys.stderr, flush=True)
            text, offset = hole.document(scenario)
            document = Document(f"file:///multiline/{number}.py", "python", 1, text, "utf-32")
            result = await completer.complete(document, offset, settings, automatic=True)
            answers.append(
                {
                    "pipeline": hole.typed(scenario) + (result.text or ""),
                    "mode": result.mode,
                    "reason": result.reason,
                    "raw_pipeline": result.engine.text if result.engine else "",
                    "ms": result.latency_ms.get("total", 0.0),
                }
            )
            completer.forget(document.uri)

    asyncio.run(ask_all())
    worker.stop()
    return answers


def _cached_naive(
    cache: Path | None, name: str, scenario: str, holes: list[Hole], gguf: Path, threads: int
) -> list[dict]:
    """Naive answers from the cache file where it has them, the rest generated (and added)."""
    stored: dict = json.loads(cache.read_text()) if cache is not None and cache.exists() else {}
    keys = [f"{name}:{scenario}:{hole.name}:{hole.kind}:{len(hole.before)}" for hole in holes]
    missing = [hole for hole, key in zip(holes, keys, strict=True) if key not in stored]
    if missing:
        for hole, answer in zip(missing, run_naive(gguf, missing, scenario, threads), strict=True):
            stored[keys[holes.index(hole)]] = answer
        if cache is not None:
            cache.write_text(json.dumps(stored))
    return [stored[key] for key in keys]


def paired(a: list[float], b: list[float], rounds: int = 2000) -> dict:
    """Mean difference b − a (points) with a paired bootstrap 95% interval."""
    rng = random.Random(0)
    n = len(a)
    diffs = [100 * (y - x) for x, y in zip(a, b, strict=True)]
    samples = sorted(sum(diffs[rng.randrange(n)] for _ in range(n)) / n for _ in range(rounds))
    return {
        "points": round(sum(diffs) / n, 1),
        "ci95": [round(samples[int(0.025 * rounds)], 1), round(samples[int(0.975 * rounds)], 1)],
    }


HANDLINGS = ("oracle", "first", "pipeline")


def summarise(holes: list[Hole], answers: list[dict]) -> dict:
    """Rates per handling and paired differences against the oracle."""
    n = len(holes)
    scores: dict[str, dict[str, list[float]]] = {}
    executable = bool(holes) and all(hole.test for hole in holes)
    for handling in HANDLINGS:
        texts = [answer[handling] for answer in answers]
        exact = [
            float(normalised(t) == normalised("\n".join(h.lines)))
            for h, t in zip(holes, texts, strict=True)
        ]
        sim = [similarity(t, h.lines) for h, t in zip(holes, texts, strict=True)]
        scores[handling] = {"exact": exact, "similarity": sim}
        if executable:
            with ThreadPoolExecutor(max_workers=2) as pool:
                sources = [h.program(t) for h, t in zip(holes, texts, strict=True)]
                scores[handling]["pass"] = [float(ok) for ok in pool.map(passes, sources)]
    summary: dict = {"n": n, "rates": {}, "differences": {}}
    for handling, marks in scores.items():
        entry = {}
        for metric, values in marks.items():
            if metric == "similarity":
                entry[metric] = round(100 * statistics.mean(values), 1)
            else:
                hits = int(sum(values))
                entry[metric] = {"pct": round(100 * hits / n, 1), "ci95": wilson(hits, n)}
        summary["rates"][handling] = entry
    for base in ("oracle", "first"):
        summary["differences"][f"pipeline − {base}"] = {
            metric: paired(scores[base][metric], scores["pipeline"][metric])
            for metric in scores["pipeline"]
        }
    modes: dict[str, int] = {}
    for answer in answers:
        modes[answer["mode"]] = modes.get(answer["mode"], 0) + 1
    summary["pipeline_modes"] = modes
    summary["pipeline_empty"] = sum(1 for a in answers if not a["pipeline"].strip())
    summary["pipeline_p50_ms"] = round(statistics.median(a["ms"] for a in answers), 1)
    summary["verdicts"] = {
        h: {
            m: "".join("1" if v >= 1 else "0" for v in vs)
            for m, vs in s.items()
            if m != "similarity"
        }
        for h, s in scores.items()
    }
    return summary


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default="gemma3-270m")
    parser.add_argument("--sets", default="humaneval,library")
    parser.add_argument("--scenarios", default="line,indent")
    parser.add_argument("--limit", type=int, default=None, help="only the first N holes a set")
    parser.add_argument("--library-holes", type=int, default=120)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--json", type=Path, default=None)
    parser.add_argument("--answers", type=Path, default=None, help="every answer, as JSON lines")
    parser.add_argument(
        "--naive-cache",
        type=Path,
        default=None,
        help="naive answers kept between runs (greedy decoding on the same prompt gives the same "
        "text, so a second run on the same holes need not generate them again)",
    )
    parser.add_argument("--naive-only", action="store_true", help="fill --naive-cache only")
    args = parser.parse_args()

    from hintwise.lsp_server.config import Settings, from_environment
    from hintwise.lsp_server.engines.choice import model_path

    settings = from_environment(Settings())
    settings = Settings(model=type(settings.model)(name=args.model), data_dir=settings.data_dir)
    gguf = model_path(settings, lambda message: print(message, file=sys.stderr))
    report: dict = {"date": time.strftime("%Y-%m-%d"), "model": args.model, "results": {}}
    for name in args.sets.split(","):
        rng = random.Random(12)
        holes = (
            humaneval_holes(rng) if name == "humaneval" else library_holes(rng, args.library_holes)
        )
        holes = holes[: args.limit] if args.limit else holes
        for scenario in args.scenarios.split(","):
            started = time.perf_counter()
            naive = _cached_naive(args.naive_cache, name, scenario, holes, gguf, args.threads)
            if args.naive_only:
                continue
            piped = run_pipeline(gguf, holes, scenario, args.threads)
            answers = [{**a, **b} for a, b in zip(naive, piped, strict=True)]
            key = f"{name}:{scenario}"
            report["results"][key] = summarise(holes, answers)
            report["results"][key]["minutes"] = round((time.perf_counter() - started) / 60, 1)
            print(key, json.dumps(report["results"][key]["rates"]), file=sys.stderr, flush=True)
            if args.answers is not None:
                with args.answers.open("a") as handle:
                    for hole, answer in zip(holes, answers, strict=True):
                        row = {"key": key, **asdict(hole), **answer}
                        handle.write(json.dumps(row) + "\n")
            if args.json is not None:
                args.json.write_text(json.dumps(report, indent=2))
    print(json.dumps({k: {**v, "verdicts": None} for k, v in report["results"].items()}, indent=2))


if __name__ == "__main__":
    main()
