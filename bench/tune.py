"""Does tuning on a repository make completions on its other files better?

    python bench/tune.py --repo PATH [--max-examples 240] [--holes-per-file 8]
        [--fim ../shared/data/fim/humaneval_single_line.jsonl] [--regression-size 100]
        [--max-minutes 120] [--objective lines|text] [--learning-rate LR] [--epochs N]
        [--general-share F] [--data-dir DIR]
        [--json OUT]

Runs the real command, `hintwise tune --from-repo PATH`, in a fresh data directory (no feedback
store, no adapter, the shipped gate): 80% of the repository's files give the training examples,
the held-out 20% are replayed by the base model and by the tuned one side by side in the same
run, and the regression set (a slice of HumanEval single-line infilling) checks that the adapter
did not get worse elsewhere. A run the time limit pauses (exit 3) is resumed until it finishes.

Reported (issue 14's targets): exact-line acceptance on the held-out files before and after
with the paired gain and its 95% interval (target ≥ +5 points), characters saved, the regression
set's change (no loss beyond noise), the adapter's size (≤ 8 MB), the tuning time, and the
acceptance gate's AUC on the held-out files before and after it was retrained on the replay.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
FIM = ROOT.parent / "shared" / "data" / "fim" / "humaneval_single_line.jsonl"
PAUSED = 3


def run_tune(args: argparse.Namespace, data_dir: Path) -> tuple[dict, float, int]:
    """The command until it finishes: (its JSON, wall seconds, rounds)."""
    command = [
        sys.executable, "-m", "hintwise", "tune", "--json",
        "--from-repo", str(args.repo),
        "--max-examples", str(args.max_examples),
        "--holes-per-file", str(args.holes_per_file),
        "--regression-size", str(args.regression_size),
        "--max-minutes", str(args.max_minutes),
    ]  # fmt: skip
    if args.fim.exists():
        command += ["--regression", str(args.fim)]
    if args.objective:
        command += ["--objective", args.objective]
    if args.general_share is not None:
        command += ["--general-share", str(args.general_share)]
    if args.learning_rate:
        command += ["--learning-rate", str(args.learning_rate)]
    if args.epochs:
        command += ["--epochs", str(args.epochs)]
    env = dict(os.environ, HINTWISE_DATA_DIR=str(data_dir))
    if args.model:
        env["HINTWISE_MODEL"] = args.model
    started, rounds = time.monotonic(), 0
    while True:
        rounds += 1
        done = subprocess.run(command, env=env, capture_output=True, text=True)
        if done.returncode != PAUSED:
            break
        print(f"paused after round {rounds}; resuming", file=sys.stderr)
    if done.returncode != 0:
        sys.exit(f"hintwise tune failed ({done.returncode}):\n{done.stderr[-3000:]}")
    return json.loads(done.stdout), time.monotonic() - started, rounds


def report(result: dict, seconds: float, rounds: int) -> dict:
    figures = result["figures"]
    held, regression, gain = figures["held_out"], figures["regression"], figures["gain"]
    gate = figures.get("gate", {})
    return {
        "installed": result["installed"],
        "decision": result["decision"],
        "held_out_cases": held["base"]["n"],
        "exact_base": held["base"]["exact"],
        "exact_tuned": held["tuned"]["exact"],
        "exact_gain_points": gain["gain_points"],
        "exact_gain_ci95": gain["ci95"],
        "chars_saved_base": held["base"]["chars_saved"],
        "chars_saved_tuned": held["tuned"]["chars_saved"],
        "regression_cases": regression["base"]["n"],
        "regression_base": regression["base"]["exact"],
        "regression_tuned": regression["tuned"]["exact"],
        "regression_gain_ci95": figures["regression_gain"]["ci95"],
        "examples": figures["examples"],
        "examples_by_source": figures.get("examples_by_source", {}),
        "training_steps": figures["training"]["steps"],
        "training_minutes": round(figures["training"]["seconds"] / 60, 1),
        "run_minutes": round(seconds / 60, 1),
        "rounds": rounds,
        "adapter_mb": round(figures["adapter_bytes"] / 1e6, 2),
        "gate_auc_before": gate.get("auc_current"),
        "gate_auc_after": gate.get("auc_new"),
        "gate": gate.get("reason"),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--repo", type=Path, required=True)
    parser.add_argument("--model", default="", help="A GGUF path (default: the bundled model).")
    parser.add_argument("--max-examples", type=int, default=240)
    parser.add_argument("--holes-per-file", type=int, default=8)
    parser.add_argument("--fim", type=Path, default=FIM)
    parser.add_argument("--regression-size", type=int, default=100)
    parser.add_argument("--max-minutes", type=float, default=120)
    parser.add_argument("--objective", choices=["lines", "text"], default=None)
    parser.add_argument("--learning-rate", type=float, default=None)
    parser.add_argument("--epochs", type=float, default=None)
    parser.add_argument("--general-share", type=float, default=None)
    parser.add_argument("--json", type=Path, default=None)
    parser.add_argument(
        "--data-dir",
        type=Path,
        default=None,
        help="Keep the run here (default: a temporary folder); the same folder resumes it.",
    )
    args = parser.parse_args()
    if args.data_dir is not None:
        result, seconds, rounds = run_tune(args, args.data_dir)
    else:
        with tempfile.TemporaryDirectory(prefix="hintwise-tune-bench-") as data_dir:
            result, seconds, rounds = run_tune(args, Path(data_dir))
    summary = report(result, seconds, rounds)
    summary["repo"] = str(args.repo)
    for key, value in summary.items():
        print(f"{key:>20}: {value}")
    if args.json:
        args.json.write_text(json.dumps({"summary": summary, "result": result}, indent=2) + "\n")


if __name__ == "__main__":
    main()
