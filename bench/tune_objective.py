"""Which training objective teaches the model a repository rather than its lines? Side by side.

    python bench/tune_objective.py --repo PATH [--holes-per-file 14] [--steps 40]
        [--lines-lr 5e-4] [--files-lr 3e-4] [--keep 192] [--model GGUF] [--json OUT]

`hintwise tune` trains on replayed lines (the prompt the server built, the hidden line as the
target). On `rich` its adapters lowered the loss of the lines they saw and not of the held-out
files' lines, and were refused (docs/tune.md). This compares, for the same number of steps of
the same batch size on the same 80% of the files:

- lines: `hintwise tune`'s own training (models/tune/train.py) on the replayed training lines;
- files: LoRA on windows of the training files' text, the loss on each window's last `--keep`
  tokens (more target tokens per step, and the repository's own code rather than single lines).

Reported for each: the training minutes, and the mean target loss of the held-out files' replayed
lines (what the user would be suggested there) and of a sample of the training lines, as the
paired change from the base model with a 95% interval over batches. A lower held-out loss is
the precondition for more exact lines, not the proof: bench/tune.py measures those.
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
from typing import Any

BATCH, WINDOW = 4, 384


def replayed_examples(repo: Path, per_file: int, model: str) -> dict[str, list[Any]]:
    """The training and held-out lines as `hintwise tune` builds them (server prompts)."""
    from hintwise.lsp_server.cli.common import overrides, settings_with
    from hintwise.lsp_server.engines.workers import start_worker
    from hintwise.lsp_server.tune import cases as tune_cases
    from hintwise.lsp_server.tune import replay

    settings = settings_with(overrides(model or None))
    train, held = replay.repo_cases(repo, lambda line: print(line, file=sys.stderr), per_file)
    worker = start_worker(settings)
    try:
        if not worker.wait_ready():
            sys.exit(f"the model did not load: {worker.error}")
        built = {
            name: tune_cases.prompts(worker, cases, settings)
            for name, cases in (("train", train), ("held", held))
        }
    finally:
        worker.stop()
    found = {name: [a.example() for a in answers] for name, answers in built.items()}
    return {name: [e for e in examples if e is not None] for name, examples in found.items()}


def file_windows(repo: Path, base: Any) -> list[list[int]]:
    """Overlapping token windows of the training files' text, shuffled."""
    from hintwise.lsp_server.tune.replay_files import split_files

    windows = []
    for path in split_files(repo)[0]:
        ids = [base.bos, *base.tokenize(path.read_text(encoding="utf-8", errors="replace"))]
        windows += [ids[s : s + WINDOW] for s in range(0, max(1, len(ids) - WINDOW), WINDOW // 2)]
    random.Random(0).shuffle(windows)
    return windows


def train_on_files(base: Any, windows: list[list[int]], steps: int, lr: float, keep: int) -> Any:
    """A LoRA shaped like `hintwise tune`'s, trained on file windows; the PEFT model."""
    import peft
    import torch

    model = peft.get_peft_model(
        base.model,
        peft.LoraConfig(r=8, lora_alpha=16, target_modules="all-linear", task_type="CAUSAL_LM"),
    )
    model.train()
    optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=lr)
    for step in range(steps):
        batch = windows[(step * BATCH) % len(windows) :][:BATCH]
        width = max(len(row) for row in batch)
        ids = torch.zeros((len(batch), width), dtype=torch.long)
        mask = torch.zeros_like(ids)
        for r, row in enumerate(batch):
            ids[r, width - len(row) :], mask[r, width - len(row) :] = torch.tensor(row), 1
        logits = model(
            input_ids=ids,
            attention_mask=mask,
            position_ids=(mask.cumsum(1) - 1).clamp(min=0),
            logits_to_keep=keep + 1,
            use_cache=False,
        ).logits[:, :keep, :]
        value = torch.nn.functional.cross_entropy(
            logits.float().reshape(-1, logits.shape[-1]), ids[:, -keep:].reshape(-1)
        )
        optimizer.zero_grad()
        value.backward()
        optimizer.step()
        print(f"files step {step + 1}/{steps} loss {float(value):.3f}", file=sys.stderr)
    return model


def target_losses(model: Any, examples: list[Any], base: Any) -> list[float]:
    """Mean target loss per batch of examples, as training computes it."""
    import torch

    from hintwise.models.tune.batches import collate, encode, loss

    encoded = [encode(e, base.tokenize, WINDOW, base.bos) for e in examples]
    kept = [e for e in encoded if e is not None]
    model.eval()
    with torch.no_grad():
        return [
            float(loss(model, collate(kept[i : i + BATCH], 0, torch), torch))
            for i in range(0, len(kept), BATCH)
        ]


def change(tuned: list[float], base: list[float]) -> dict[str, Any]:
    """The paired change in loss with a normal 95% interval over batches."""
    diffs = [t - b for t, b in zip(tuned, base, strict=True)]
    mean, half = statistics.fmean(diffs), 1.96 * statistics.stdev(diffs) / len(diffs) ** 0.5
    return {
        "base": round(statistics.fmean(base), 4),
        "tuned": round(statistics.fmean(tuned), 4),
        "change": round(mean, 4),
        "ci95": [round(mean - half, 4), round(mean + half, 4)],
        "batches": len(diffs),
    }


def judged(model: Any, base: Any, sets: dict[str, list[Any]]) -> dict[str, Any]:
    found = {}
    for name, examples in sets.items():
        tuned = target_losses(model, examples, base)
        with model.disable_adapter():
            before = target_losses(model, examples, base)
        found[name] = change(tuned, before)
    return found


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--repo", type=Path, required=True)
    parser.add_argument("--holes-per-file", type=int, default=14)
    parser.add_argument("--steps", type=int, default=40)
    parser.add_argument("--lines-lr", type=float, default=5e-4)
    parser.add_argument("--files-lr", type=float, default=3e-4)
    parser.add_argument("--keep", type=int, default=192)
    parser.add_argument("--model", default="", help="A GGUF path (default: the bundled model).")
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()

    import peft
    import torch

    from hintwise.lsp_server.cli.common import overrides, settings_with
    from hintwise.lsp_server.engines.choice import model_path
    from hintwise.models.tune import base as base_model
    from hintwise.models.tune import train
    from hintwise.models.tune.runtime import require

    torch.manual_seed(0)
    gguf = model_path(settings_with(overrides(args.model or None)))
    examples = replayed_examples(args.repo, args.holes_per_file, args.model)
    sets = {"held": examples["held"], "train_sample": examples["train"][::6]}
    # the dequantized base is cached here once (about 2 min and 1.1 GB for Gemma 3 270M)
    cache = Path(tempfile.gettempdir()) / "hintwise-tune-objective"
    results: dict[str, Any] = {"repo": str(args.repo), "steps": args.steps, "batch": BATCH}

    config = train.TrainConfig(
        learning_rate=args.lines_lr, epochs=args.steps * BATCH / len(examples["train"])
    )
    started = time.monotonic()
    lines = train.train(gguf, examples["train"], cache / "lines", config)
    minutes = (time.monotonic() - started) / 60
    base = base_model.load(gguf, require(), cache_parent=cache)
    model = peft.PeftModel.from_pretrained(base.model, str(lines.peft_dir))
    results["lines"] = {"minutes": round(minutes, 1), "steps": lines.steps}
    results["lines"] |= judged(model, base, sets)

    base = base_model.load(gguf, require(), cache_parent=cache)  # PEFT wrapped the last one
    started = time.monotonic()
    model = train_on_files(
        base, file_windows(args.repo, base), args.steps, args.files_lr, args.keep
    )
    results["files"] = {"minutes": round((time.monotonic() - started) / 60, 1)}
    results["files"] |= judged(model, base, sets)

    text = json.dumps(results, indent=1)
    print(text)
    if args.json:
        args.json.write_text(text + "\n")


if __name__ == "__main__":
    main()
