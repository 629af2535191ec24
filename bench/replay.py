"""A real package replayed as a user would type it: the bundled model's exact-line rate on its
held-out files, characters saved, time per hole, and the acceptance gate before and after
learning from the replay.

    python bench/replay.py [--package rich | --root PATH] [--held-per-file 12]
        [--train-per-file 4] [--limit N] [--automatic] [--json OUT] [--cache DIR]

The package is one installed in this interpreter's environment (code nobody on the team wrote).
Its files are split 80/20 by a hash of their relative paths (lsp_server/tune/replay_files.py);
held-out holes give the quality figures, training-file holes train the gate. Each hole is asked
through the server's own Completer (replay.py): as an invoked request by default, or
`--automatic` as while typing (fewer candidates, faster; the gate's thresholds set to 0 so it
hides nothing either way). The gate is retrained into a scratch data directory, never the
user's. Rows are cached in `--cache` (one JSON file per split), so an interrupted run resumes.

Rates come with Wilson 95% intervals, the gate's AUC difference with a paired bootstrap
interval (lsp_server/tune/replay_gate.py).
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

from hintwise.lsp_server.config import ModelSettings, Settings
from hintwise.lsp_server.engines.choice import model_path
from hintwise.lsp_server.engines.workers import start_worker
from hintwise.lsp_server.tune.decide import paired, wilson
from hintwise.lsp_server.tune.replay import (
    Hole,
    ReplayRow,
    holes,
    replay,
    split_files,
    summary,
)
from hintwise.lsp_server.tune.replay_gate import retrain_gate


def package_root(name: str) -> Path:
    spec = importlib.util.find_spec(name)
    if spec is None or not spec.submodule_search_locations:
        raise SystemExit(f"{name} is not an installed package here")
    return Path(next(iter(spec.submodule_search_locations)))


class Eta:
    """Progress on stderr: holes done, seconds per hole, time left."""

    def __init__(self, label: str, already: int = 0):
        self.label, self.already, self.started = label, already, time.monotonic()

    def __call__(self, done: int, total: int) -> None:
        spent = time.monotonic() - self.started
        per = spent / done
        left = per * (total - done)
        print(
            f"\r{self.label}: {self.already + done}/{self.already + total} holes, "
            f"{per:.1f} s each, {left / 60:.0f} min left   ",
            end="" if done < total else "\n",
            file=sys.stderr,
            flush=True,
        )


def cached_replay(worker, found: list[Hole], settings, automatic: bool, cache: Path, label: str):
    """Replay `found`, reusing the rows already in `cache` (same holes) and saving as it goes."""
    rows: list[ReplayRow] = []
    if cache.exists():
        rows = [ReplayRow.from_json(row) for row in json.loads(cache.read_text())]
        rows = [row for row, hole in zip(rows, found, strict=False) if row.hole == hole]
    missing = found[len(rows) :]
    progress = Eta(label, len(rows))
    batch = 20
    for start in range(0, len(missing), batch):
        part = missing[start : start + batch]
        rows += replay(
            worker,
            part,
            settings,
            lambda done, _total, start=start: progress(start + done, len(missing)),
            automatic=automatic,
        )
        cache.write_text(json.dumps([row.to_json() for row in rows]))
    return rows


def compare_modes(cache: Path) -> dict | None:
    """Invoked beside automatic requests on the held-out holes both were asked at (when the
    cache holds both): exact-line rates and the paired difference."""
    runs = {}
    for mode in ("invoked", "automatic"):
        path = cache / f"held-{mode}.json"
        if path.exists():
            runs[mode] = {
                row["hole"]["path"] + f":{row['hole']['line']}": row["exact"]
                for row in json.loads(path.read_text())
            }
    if len(runs) < 2:
        return None
    common = sorted(set(runs["invoked"]) & set(runs["automatic"]))
    invoked = [runs["invoked"][key] for key in common]
    automatic = [runs["automatic"][key] for key in common]
    result = paired(automatic, invoked)
    return {
        "n": len(common),
        "automatic": {"exact": sum(automatic), "ci95": wilson(sum(automatic), len(common))},
        "invoked": {"exact": sum(invoked), "ci95": wilson(sum(invoked), len(common))},
        "invoked_minus_automatic": result.to_json(),  # base: automatic, tuned: invoked
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--package", default="rich")
    parser.add_argument("--root", type=Path, help="a repository instead of an installed package")
    parser.add_argument("--held-per-file", type=int, default=12)
    parser.add_argument("--train-per-file", type=int, default=4)
    parser.add_argument("--limit", type=int, default=0, help="at most N holes per split")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--automatic", action="store_true", help="ask as while typing")
    parser.add_argument("--json", type=Path, help="write the figures here")
    parser.add_argument("--cache", type=Path, help="keep the rows here (resumable)")
    parser.add_argument("--no-gate", action="store_true", help="held-out holes only, no gate")
    args = parser.parse_args()

    root = args.root or package_root(args.package)
    train_files, held_files = split_files(root)
    held = holes(held_files, args.held_per_file, args.seed, root)
    train = holes(train_files, args.train_per_file, args.seed, root)
    if args.limit:
        held, train = held[: args.limit], train[: args.limit]
    print(
        f"{root}: {len(held)} held-out holes in {len(held_files)} files, "
        f"{len(train)} training holes in {len(train_files)} files",
        file=sys.stderr,
    )
    scratch = Path(tempfile.mkdtemp(prefix="hintwise-replay-"))
    gguf = model_path(Settings(), lambda message: print(message, file=sys.stderr))
    settings = Settings(data_dir=str(scratch), model=ModelSettings(path=str(gguf)))
    cache = args.cache or scratch / "rows"
    cache.mkdir(parents=True, exist_ok=True)
    mode = "automatic" if args.automatic else "invoked"

    worker = start_worker(settings)
    if not worker.wait_ready():
        raise SystemExit(f"no model: {worker.error}")
    started = time.monotonic()
    held_rows = cached_replay(
        worker, held, settings, args.automatic, cache / f"held-{mode}.json", "held-out"
    )
    held_s = time.monotonic() - started
    train_rows = []
    if not args.no_gate:
        train_rows = cached_replay(
            worker, train, settings, args.automatic, cache / f"train-{mode}.json", "training"
        )
    worker.stop()

    gate = None if args.no_gate else retrain_gate(train_rows, held_rows, settings, install=True)
    figures = {
        "root": str(root),
        "mode": mode,
        "seed": args.seed,
        "files": {"train": len(train_files), "held_out": len(held_files)},
        "held_out": summary(held_rows),
        "train": summary(train_rows),
        "seconds_per_hole_wall": round(held_s / max(1, len(held)), 2),
        "ms_per_hole_median": round(statistics.median(row.ms for row in held_rows), 1)
        if held_rows
        else None,
        "gate": gate,
        "modes": compare_modes(cache),
        "scratch": str(scratch),
    }
    text = json.dumps(figures, indent=2, default=str)
    print(text)
    if args.json:
        args.json.write_text(text + "\n")


if __name__ == "__main__":
    main()
