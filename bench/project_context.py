"""Completing a call of a name imported from a sibling module, with and without the rest of
the project in the prompt.

    python bench/project_context.py [--packages click,rich,...] [--limit N] [--json OUT]

Cases come from real multi-module packages installed beside hintwise (site-packages: click,
rich, jinja2, pygls, lsprotocol, cattrs, httpx, starlette by default): in one module, a line that
calls a function or class imported from a sibling module (`from .util import make` … `make(`),
the cursor put just before the imported name, the rest of the line hidden (removed from the
document). The answer is the rest of the line. Each case is asked twice, side by side on one
model (the order of the two alternates from case to case):

  without  the pipeline as shipped before (completion.project_tokens = 0);
  with     the rest of the project in the prompt (lsp_server.completion.project): the package's
           folder is the workspace, the defining module was opened before (a ring chunk of its
           top), the definitions of the names the file imports from its siblings come first.

Scores: exact match of the rest of the line, and edit similarity (1 − Levenshtein distance /
longer length), with paired bootstrap 95% intervals for the differences. Latency: each cold
request is followed by a warm one (the user typed the name's first character; the typing cache
is cleared so the model runs) whose latency measures what the longer prompt costs per keystroke;
reported as the ratio of medians with a bootstrap interval. The pipeline gets a 20 s generation
limit so that quality, not this shared machine's momentary load, is measured.
"""

from __future__ import annotations

import argparse
import asyncio
import importlib
import json
import random
import re
import statistics
import sys
import time
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = "click,rich,jinja2,pygls,lsprotocol,cattrs,httpx,starlette"


@dataclass(frozen=True)
class Case:
    package: str
    path: Path  # the module being edited
    defining: Path  # the sibling that defines the name
    name: str
    document: str  # the module with the rest of the line removed
    offset: int  # the cursor: just before the name
    answer: str  # the rest of the line


def find_cases(package: str, per_module: int, per_package: int, rng: random.Random) -> list[Case]:
    """Lines of `package` that call a name imported from a sibling module."""
    from hintwise.lsp_server.code import definitions
    from hintwise.lsp_server.completion.project import resolve_module

    folder = Path(importlib.import_module(package).__file__ or "").parent
    cases = []
    for path in sorted(folder.rglob("*.py")):
        text = path.read_text(encoding="utf-8", errors="replace")
        if len(text) > definitions.MAX_SOURCE_BYTES:
            continue
        found = []
        for entry in definitions.imports(text):
            module = resolve_module(entry.module, entry.level, path, [folder.parent])
            if (
                module is None
                or module == path
                or entry.name
                not in definitions.definitions(module.read_text(encoding="utf-8", errors="replace"))
            ):
                continue
            pattern = re.compile(rf"(?<![\w.]){re.escape(entry.alias)}\(")
            for match in pattern.finditer(text):
                line_start = text.rfind("\n", 0, match.start()) + 1
                line_end = text.find("\n", match.start())
                line_end = len(text) if line_end < 0 else line_end
                head, rest = text[line_start : match.start()], text[match.start() : line_end]
                if head.lstrip().startswith(("#", "from ", "import ", "def ", "class ")):
                    continue
                if len(rest.rstrip()) < 6 or match.start() < 200:
                    continue
                document = text[: match.start()] + text[line_end:]
                found.append(
                    Case(package, path, module, entry.alias, document, match.start(), rest.rstrip())
                )
        rng.shuffle(found)
        cases.extend(found[:per_module])
    rng.shuffle(cases)
    return cases[:per_package]


def edit_similarity(a: str, b: str) -> float:
    if not a and not b:
        return 1.0
    previous = list(range(len(b) + 1))
    for i, ca in enumerate(a, 1):
        current = [i]
        for j, cb in enumerate(b, 1):
            current.append(min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + (ca != cb)))
        previous = current
    return 1.0 - previous[-1] / max(len(a), len(b))


def paired(a: list[float], b: list[float], rounds: int = 2000) -> dict:
    """Difference of means b − a (×100) with a paired bootstrap 95% interval."""
    rng = random.Random(0)
    n = len(a)
    samples = []
    for _ in range(rounds):
        picks = [rng.randrange(n) for _ in range(n)]
        samples.append(100 * sum(b[i] - a[i] for i in picks) / n)
    samples.sort()
    return {
        "points": round(100 * (sum(b) - sum(a)) / n, 1),
        "ci95": [round(samples[int(0.025 * rounds)], 1), round(samples[int(0.975 * rounds)], 1)],
    }


def ratio_of_medians(a: list[float], b: list[float], rounds: int = 2000) -> dict:
    """median(b) / median(a), with a paired bootstrap 95% interval."""
    rng = random.Random(1)
    n = len(a)
    samples = []
    for _ in range(rounds):
        picks = [rng.randrange(n) for _ in range(n)]
        samples.append(
            statistics.median(b[i] for i in picks)
            / max(statistics.median(a[i] for i in picks), 1e-9)
        )
    samples.sort()
    return {
        "ratio": round(statistics.median(b) / max(statistics.median(a), 1e-9), 2),
        "ci95": [round(samples[int(0.025 * rounds)], 2), round(samples[int(0.975 * rounds)], 2)],
    }


async def ask(completer, case: Case, settings, arm: str, number: int) -> dict:
    """One cold request at the cursor, then a warm one after typing the name's first letter."""
    from hintwise.lsp_server.code.documents import Document
    from hintwise.lsp_server.completion.project import Project

    project = Project()
    project.roots = [_package_root(case.path)]
    if arm == "with":
        defining = Document(
            case.defining.as_uri(), "python", 1, case.defining.read_text(), "utf-32"
        )
        project.opened(defining)
    completer.project = project
    uri = case.path.as_uri() + f"#{number}-{arm}"
    document = Document(uri, "python", 1, case.document, "utf-32")
    started = time.perf_counter()
    result = await completer.complete(document, case.offset, settings, automatic=True)
    cold_ms = (time.perf_counter() - started) * 1000
    text = (result.text or "").split("\n")[0]
    engine = result.engine
    typed = case.answer[0]
    warm_doc = Document(
        uri,
        "python",
        2,
        case.document[: case.offset] + typed + case.document[case.offset :],
        "utf-32",
    )
    completer.cache.forget(uri)
    started = time.perf_counter()
    warm = await completer.complete(warm_doc, case.offset + 1, settings, automatic=True)
    warm_ms = (time.perf_counter() - started) * 1000
    completer.forget(uri)
    return {
        "text": text,
        "exact": float(text.rstrip() == case.answer),
        "similarity": edit_similarity(text.rstrip(), case.answer),
        "cold_ms": cold_ms,
        "warm_ms": warm_ms,
        "warm_evaluated": warm.engine.evaluated_tokens if warm.engine else 0,
        "prompt_tokens": engine.prompt_tokens if engine else 0,
        "preamble_tokens": engine.preamble_tokens if engine else 0,
    }


def _package_root(path: Path) -> Path:
    folder = path.parent
    while (folder / "__init__.py").is_file():
        folder = folder.parent
    return folder


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--packages", default=PACKAGES)
    parser.add_argument("--limit", type=int, default=200, help="at most N cases")
    parser.add_argument("--per-module", type=int, default=3)
    parser.add_argument("--per-package", type=int, default=40)
    parser.add_argument("--model", default="gemma3-270m")
    parser.add_argument("--project-tokens", type=int, default=512)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--prefix-tokens", type=int, default=1024)
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args()

    sys.path.insert(0, str(ROOT))
    from hintwise.lsp_server.completion.completer import Completer
    from hintwise.lsp_server.config import CompletionSettings, Settings, from_environment
    from hintwise.lsp_server.engines.choice import model_path
    from hintwise.models.llama.engine import LlamaEngine
    from hintwise.models.worker import ModelWorker

    rng = random.Random(12)
    cases = [
        case
        for name in args.packages.split(",")
        for case in find_cases(name, args.per_module, args.per_package, rng)
    ]
    rng.shuffle(cases)
    cases = cases[: args.limit]
    print(f"{len(cases)} cases", file=sys.stderr, flush=True)
    settings = from_environment(Settings())
    settings = Settings(model=type(settings.model)(name=args.model), data_dir=settings.data_dir)
    gguf = model_path(settings, lambda message: print(message, file=sys.stderr))
    arms = {
        "without": CompletionSettings(
            time_limit_ms=20000, prewarm=False, project_tokens=0, prefix_tokens=args.prefix_tokens
        ),
        "with": CompletionSettings(
            time_limit_ms=20000,
            prewarm=False,
            project_tokens=args.project_tokens,
            prefix_tokens=args.prefix_tokens,
        ),
    }
    worker = ModelWorker(lambda: LlamaEngine(gguf, threads=args.threads)).start()
    worker.wait_ready()
    worker.submit(lambda engine, cancelled: engine.prepare()).future.result()
    completer = Completer(worker)
    answers: dict[str, list[dict]] = {arm: [] for arm in arms}

    started = time.perf_counter()

    async def run_all() -> None:
        for number, case in enumerate(cases):
            order = list(arms) if number % 2 == 0 else list(reversed(arms))
            for arm in order:
                answers[arm].append(await ask(completer, case, arms[arm], arm, number))
            # Saved after every case: a run stopped early still reports what it measured.
            report = _report(args, cases[: number + 1], answers, started)
            if args.json is not None:
                args.json.write_text(json.dumps(report, indent=2))
            print(f"{number + 1}: {json.dumps(_summary(answers))}", file=sys.stderr, flush=True)

    asyncio.run(run_all())
    worker.stop()
    print(json.dumps(_report(args, cases, answers, started), indent=2))


def _report(args, cases: list[Case], answers: dict[str, list[dict]], started: float) -> dict:
    return {
        "date": time.strftime("%Y-%m-%d"),
        "model": args.model,
        "cases": len(cases),
        "packages": {
            name: sum(1 for c in cases if c.package == name) for name in args.packages.split(",")
        },
        "project_tokens": args.project_tokens,
        "prefix_tokens": args.prefix_tokens,
        "threads": args.threads,
        "minutes": round((time.perf_counter() - started) / 60, 1),
        **_summary(answers),
        "examples": [
            {
                "file": f"{case.package}:{case.path.name}",
                "answer": case.answer,
                "without": answers["without"][i]["text"],
                "with": answers["with"][i]["text"],
            }
            for i, case in enumerate(cases[:12])
        ],
    }


def _summary(answers: dict[str, list[dict]]) -> dict:
    without, with_ = answers["without"], answers["with"]
    n = len(with_)
    out: dict = {"n": n}
    for arm, rows in answers.items():
        out[arm] = {
            "exact_match": round(100 * sum(r["exact"] for r in rows) / n, 1),
            "edit_similarity": round(100 * sum(r["similarity"] for r in rows) / n, 1),
            "cold_p50_ms": round(statistics.median(r["cold_ms"] for r in rows), 1),
            "warm_p50_ms": round(statistics.median(r["warm_ms"] for r in rows), 1),
            "prompt_tokens_p50": statistics.median(r["prompt_tokens"] for r in rows),
            "preamble_tokens_p50": statistics.median(r["preamble_tokens"] for r in rows),
        }
    out["exact_match_difference"] = paired(
        [r["exact"] for r in without], [r["exact"] for r in with_]
    )
    out["edit_similarity_difference"] = paired(
        [r["similarity"] for r in without], [r["similarity"] for r in with_]
    )
    out["warm_latency_ratio"] = ratio_of_medians(
        [r["warm_ms"] for r in without], [r["warm_ms"] for r in with_]
    )
    out["cold_latency_ratio"] = ratio_of_medians(
        [r["cold_ms"] for r in without], [r["cold_ms"] for r in with_]
    )
    return out


if __name__ == "__main__":
    main()
