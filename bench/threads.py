"""Prompt and decode speed by thread count, alone and beside one busy process.

    python bench/threads.py [--model NAME|PATH] [--rounds 3] [--json OUT]
        [--phases speed,cold] [--positions 12]

Why `model.threads` defaults to all cores but one: a laptop is never idle while its owner
types (the editor, a compiler, a browser). With every core given to llama.cpp, one busy
process makes its threads wait for each other; one core left free keeps generation steady.
"busy" here is one process spinning on a core for the whole measurement. Figures are medians
of `--rounds` runs of `LlamaEngine.measure_speed` (what `hintwise doctor` reports).

`cold` (see cold_threads.py): the first request deep in a standard-library file, a full prompt
evaluation, with the prompt on one thread, on every core, and as the engine chooses
(`model.prompt_threads = 0`), idle and beside one busy process, side by side per position.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from hintwise.lsp_server.config import Settings, from_environment  # noqa: E402
from hintwise.lsp_server.engines.choice import model_path  # noqa: E402
from hintwise.models.llama.engine import LlamaEngine  # noqa: E402


def spin(stop_at: float) -> None:
    while time.monotonic() < stop_at:
        pass


def measure(gguf: Path, threads: int, rounds: int) -> dict[str, float]:
    engine = LlamaEngine(gguf, threads=threads)
    try:
        runs = [engine.measure_speed() for _ in range(rounds)]
    finally:
        engine.close()
    return {key: round(statistics.median(run[key] for run in runs), 1) for key in runs[0]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default="gemma3-270m")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--json", type=Path)
    parser.add_argument("--phases", default="speed,cold")
    parser.add_argument("--positions", type=int, default=12, help="cold: cursor positions")
    args = parser.parse_args()
    phases = set(args.phases.split(","))
    settings = from_environment(Settings())
    if Path(args.model).suffix == ".gguf":
        gguf = Path(args.model)
    else:
        settings = Settings(model=type(settings.model)(name=args.model), data_dir=settings.data_dir)
        gguf = model_path(settings)
    cores = os.cpu_count() or 1
    report: dict = {"date": time.strftime("%Y-%m-%d"), "cores": cores, "model": gguf.name}
    for threads in range(1, cores + 1) if "speed" in phases else ():
        report[f"{threads} threads, idle"] = measure(gguf, threads, args.rounds)
        busy = multiprocessing.Process(target=spin, args=(time.monotonic() + 600,), daemon=True)
        busy.start()
        try:
            report[f"{threads} threads, one busy process"] = measure(gguf, threads, args.rounds)
        finally:
            busy.terminate()
        print(json.dumps({k: v for k, v in report.items() if "threads" in k}), file=sys.stderr)
    if "cold" in phases:
        from cold_threads import measure_cold

        report["cold"] = measure_cold(gguf, args.positions, spin)
    text = json.dumps(report, indent=2)
    print(text)
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(text)


if __name__ == "__main__":
    main()
