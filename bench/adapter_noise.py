"""How much does any LoRA adapter move the quantized model, however small its weights?

    python bench/adapter_noise.py [--files 6] [--tokens 300] [--model NAME|PATH] [--json OUT]
        [--replay REPO [--holes-per-file 14] [--placebos 3]]

A near-zero adapter (B ~ 1e-6) moved llama.cpp's logits by a norm of 160-230 where transformers
(float32) moved them by 0.02 (docs/tune.md). This measures whether that is a floor every adapter
pays rather than something wrong with the adapter files: adapters shaped like `hintwise tune`'s
(rank 8, every linear layer, float32, A ~ N(0, 0.02)) whose B is scaled from zero up, on every
layer, on the first block only, and on the last block only. With zero B llama.cpp's output is
bit for bit the base's; a floor shows as a change that does not shrink with B once B is not zero.

Reported for each adapter, over every position of the first `--tokens` tokens of `--files`
standard-library modules (code nobody on the team wrote), fed one token at a time: the share of
positions whose greedy next token differs from the base model's (95% Wilson interval) and the
median logit change relative to the base's logit norm.

With --replay, what that costs where it counts: the held-out files' lines of REPO replayed as
`hintwise tune` does (bench/tune.py's held-out set), answered through the completion pipeline by
the base model, by a zero-B adapter (the control: must change nothing) and by `--placebos`
adapters that learned nothing (B ~ N(0, 1e-4), other seeds): the paired change in exact lines
each costs, in points with its 95% interval. An adapter `hintwise tune` trains has to beat that.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import sysconfig
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))

from lora_file import write_lora  # noqa: E402

from hintwise.lsp_server.cli.common import overrides, settings_with  # noqa: E402
from hintwise.lsp_server.engines.choice import model_path  # noqa: E402
from hintwise.lsp_server.tune.decide import wilson  # noqa: E402
from hintwise.models.llama.loading import open_context  # noqa: E402

B_SCALES = (0.0, 1e-9, 1e-6, 1e-4, 1e-2)


def sequences(count: int, tokens: int, llm) -> list[list[int]]:
    """The first `tokens` tokens of `count` standard-library modules of a fair size."""
    root = Path(sysconfig.get_paths()["stdlib"])
    chosen = [p for p in sorted(root.glob("*.py")) if 4_000 < p.stat().st_size < 60_000]
    step = max(1, len(chosen) // count)
    texts = [path.read_text(encoding="utf-8") for path in chosen[::step][:count]]
    return [llm.tokenize(text.encode(), add_bos=True)[:tokens] for text in texts]


def logits_along(llm, ids: list[int]):
    """The logits after each token, the sequence fed one token at a time (the KV cache kept)."""
    import llama_cpp
    import numpy as np

    llm.reset()
    rows = []
    for token in ids:
        llm.eval([token])
        pointer = llama_cpp.llama_get_logits_ith(llm.ctx, -1)
        rows.append(np.ctypeslib.as_array(pointer, shape=(llm.n_vocab(),)).astype(np.float32))
    return np.array(rows)


def compare(base: list, other: list) -> dict:
    import numpy as np

    flips, n, relative = 0, 0, []
    for b, o in zip(base, other, strict=True):
        flips += int((b.argmax(1) != o.argmax(1)).sum())
        n += len(b)
        relative += list(np.linalg.norm(o - b, axis=1) / np.linalg.norm(b, axis=1))
    return {
        "greedy_changed": round(flips / n, 4),
        "greedy_changed_ci95": [round(x, 4) for x in wilson(flips, n)],
        "positions": n,
        "median_relative_change": round(float(statistics.median(relative)), 5),
    }


def replay_costs(repo: Path, per_file: int, placebos: int, gguf: Path) -> list[dict]:
    """Exact lines on the held-out files: the base model against no-op and placebo adapters."""
    from hintwise.lsp_server.config import apply
    from hintwise.lsp_server.engines.workers import start_worker
    from hintwise.lsp_server.tune import cases as tune_cases
    from hintwise.lsp_server.tune import replay
    from hintwise.lsp_server.tune.decide import paired

    settings = settings_with(overrides(str(gguf)))
    held = replay.repo_cases(repo, lambda line: print(line, file=sys.stderr), per_file)[1]

    def exact(adapter: Path | None) -> list[bool]:
        chosen, _ = apply(settings, {"model.adapter": str(adapter) if adapter else "none"})
        worker = start_worker(chosen)
        try:
            if not worker.wait_ready():
                sys.exit(f"the model did not load: {worker.error}")
            return [answer.exact for answer in tune_cases.ask(worker, held, chosen)]
        finally:
            worker.stop()

    base = exact(None)
    rows = []
    with tempfile.TemporaryDirectory() as folder:
        variants = [("zero B", 0.0, 0)] + [("placebo", 1e-4, seed) for seed in range(placebos)]
        for name, scale, seed in variants:
            path = Path(folder) / f"{name.replace(' ', '-')}-{seed}.gguf"
            write_lora(gguf, path, b_std=scale, zero_b=scale == 0.0, seed=seed)
            change = paired(base, exact(path))
            row = {"adapter": name, "b_std": scale, "seed": seed, "cases": change.n}
            row |= {"base": round(change.base, 4), "with_adapter": round(change.tuned, 4)}
            row |= {"gain_points": round(change.gain_points, 2), "ci95": change.ci95}
            row |= {"only_base": change.only_base, "only_adapter": change.only_tuned}
            rows.append(row)
            print(json.dumps(row), file=sys.stderr, flush=True)
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--files", type=int, default=6)
    parser.add_argument("--tokens", type=int, default=300)
    parser.add_argument("--model", default="", help="A GGUF path (default: the bundled model).")
    parser.add_argument("--json", type=Path)
    parser.add_argument("--replay", type=Path, help="Also measure exact lines on this repository.")
    parser.add_argument("--holes-per-file", type=int, default=14)
    parser.add_argument("--placebos", type=int, default=3)
    parser.add_argument("--skip-logits", action="store_true", help="Only the --replay part.")
    args = parser.parse_args()

    gguf = model_path(settings_with(overrides(args.model or None)))
    results: dict = {"model": str(gguf)}
    if not args.skip_logits:
        results |= logit_changes(gguf, args.files, args.tokens)
    if args.replay:
        results["replay"] = replay_costs(args.replay, args.holes_per_file, args.placebos, gguf)
    text = json.dumps(results, indent=1)
    print(text)
    if args.json:
        args.json.write_text(text + "\n")


def logit_changes(gguf: Path, files: int, tokens: int) -> dict:
    """Greedy-token and logit changes of adapters whose B is scaled from zero up."""
    base_llm = open_context(gguf, 1024, 1, 0)
    seqs = sequences(files, tokens, base_llm)
    base = [logits_along(base_llm, ids) for ids in seqs]
    results: dict = {"adapters": []}
    two_threads = open_context(gguf, 1024, 2, 0)
    results["two_threads"] = compare(base, [logits_along(two_threads, ids) for ids in seqs])
    del two_threads
    with tempfile.TemporaryDirectory() as folder:
        for where in ("every layer", "first block", "last block"):
            for scale in B_SCALES:
                path = Path(folder) / "adapter.gguf"
                write_lora(gguf, path, b_std=scale, blocks=_blocks(where))
                llm = open_context(gguf, 1024, 1, 0, adapter=path)
                row = {"where": where, "b_std": scale}
                row |= compare(base, [logits_along(llm, ids) for ids in seqs])
                llm.close()
                results["adapters"].append(row)
                print(json.dumps(row), file=sys.stderr, flush=True)
    return results


def _blocks(where: str) -> str:
    return {"every layer": "all", "first block": "first", "last block": "last"}[where]


if __name__ == "__main__":
    main()
