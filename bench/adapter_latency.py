"""What a LoRA adapter costs a completion: the same requests with and without one, side by side.

    python bench/adapter_latency.py [--positions 40] [--model NAME|PATH] [--rank 8] [--json OUT]

Two engines on the same GGUF, loaded by the server's own loader (`load_engine`): the base model,
and the base model with a LoRA shaped like the ones `hintwise tune` writes (rank 8 on every
linear layer, float32; 7.6 MB for Gemma 3 270M). Its B matrices are zero, so both engines
generate exactly the same tokens and any difference is the adapter's arithmetic (llama.cpp runs
the LoRA matrix products whatever their values). For each cursor position in real files (Python's
standard library, see latency.py), both engines get the same sequence: a cold request (the
line cut at the cursor, after the previous position's prompt: a partly cached prompt, as when
the user moves to another place) and a warm one (one more character typed: the cached prompt
plus one token). The order alternates per position, so drifts in machine load fall on both.

Reported per kind: p50 and p90 of each engine with bootstrap 95% intervals, and the ratio of the
adapter's p50 to the base's with a paired bootstrap 95% interval (resampling positions).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "bench"))
sys.path.insert(0, str(ROOT / "tests"))

from latency import percentile, positions  # noqa: E402
from lora_file import write_lora  # noqa: E402

from hintwise.lsp_server.config import Settings  # noqa: E402
from hintwise.lsp_server.engines.choice import load_engine, model_path  # noqa: E402
from hintwise.models.engine import CompletionRequest  # noqa: E402

ROUNDS = 2000


def settings_for(model: str, lora: str) -> Settings:
    base = Settings()
    key = "path" if model.endswith(".gguf") else "name"
    chosen = dataclasses.replace(base.model, **{key: model}, adapter=lora)
    return dataclasses.replace(base, model=chosen)


def request(prefix: str, suffix: str) -> CompletionRequest:
    return CompletionRequest(prefix=prefix, suffix=suffix, max_tokens=24, time_limit_s=30)


def timed(engine, req: CompletionRequest) -> tuple[float, str, float | None, float | None]:
    """Total ms, the text, ms per decoded token, ms per evaluated prompt token."""
    started = time.perf_counter()
    result = engine.complete(req, lambda: False)
    total = (time.perf_counter() - started) * 1000
    decode = result.generate_ms / result.generated_tokens if result.generated_tokens else None
    prompt = result.prompt_ms / result.evaluated_tokens if result.evaluated_tokens > 8 else None
    return total, result.text, decode, prompt


def bootstrap(values: list[float], share: float) -> list[float]:
    rng = random.Random(0)
    n = len(values)
    samples = sorted(
        percentile([values[rng.randrange(n)] for _ in range(n)], share) for _ in range(ROUNDS)
    )
    return [round(samples[int(0.025 * ROUNDS)], 1), round(samples[int(0.975 * ROUNDS)], 1)]


def paired_ratios(base: list[float], lora: list[float], shares=(0.5, 0.9)) -> dict:
    """The adapter's percentiles over the base's, with paired bootstrap 95% intervals (the same
    resampled positions for both engines)."""
    rng = random.Random(1)
    draws: dict[float, list[float]] = {share: [] for share in shares}
    for _ in range(ROUNDS):
        picks = [rng.randrange(len(base)) for _ in base]
        with_base, with_lora = [base[i] for i in picks], [lora[i] for i in picks]
        for share, found in draws.items():
            found.append(percentile(with_lora, share) / percentile(with_base, share))
    result = {}
    for share, found in draws.items():
        found.sort()
        result[f"p{round(share * 100)}_ratio"] = {
            "ratio": round(percentile(lora, share) / percentile(base, share), 3),
            "ci95": [round(found[int(0.025 * ROUNDS)], 3), round(found[int(0.975 * ROUNDS)], 3)],
        }
    return result


def describe(base: list[float], lora: list[float]) -> dict:
    return {
        "n": len(base),
        "base": {
            "p50": round(percentile(base, 0.5), 1),
            "p50_ci95": bootstrap(base, 0.5),
            "p90": round(percentile(base, 0.9), 1),
            "p90_ci95": bootstrap(base, 0.9),
        },
        "adapter": {
            "p50": round(percentile(lora, 0.5), 1),
            "p50_ci95": bootstrap(lora, 0.5),
            "p90": round(percentile(lora, 0.9), 1),
            "p90_ci95": bootstrap(lora, 0.9),
        },
        **paired_ratios(base, lora),
        "median_paired_ratio": median_paired_ratio(base, lora),
    }


def median_paired_ratio(base: list[float], lora: list[float]) -> dict:
    """The median over positions of adapter / base, each pair measured seconds apart (robust
    to the machine's load drifting during the run), with a bootstrap 95% interval."""
    ratios = [b and a / b for a, b in zip(lora, base, strict=True)]
    rng = random.Random(2)
    draws = sorted(
        statistics.median(ratios[rng.randrange(len(ratios))] for _ in ratios) for _ in range(ROUNDS)
    )
    return {
        "ratio": round(statistics.median(ratios), 3),
        "ci95": [round(draws[int(0.025 * ROUNDS)], 3), round(draws[int(0.975 * ROUNDS)], 3)],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--positions", type=int, default=40)
    parser.add_argument("--model", default="gemma3-270m")
    parser.add_argument("--rank", type=int, default=8)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    gguf = model_path(settings_for(args.model, "none"))
    with tempfile.TemporaryDirectory() as folder:
        lora_path = write_lora(gguf, Path(folder) / "adapter.gguf", rank=args.rank, zero_b=True)
        size_mb = lora_path.stat().st_size / 1e6
        base = load_engine(settings_for(str(gguf), "none"))
        lora = load_engine(settings_for(str(gguf), str(lora_path)))
    assert lora.info.adapter and not base.info.adapter
    kinds = ("cold", "warm", "decode_ms_per_token", "prompt_ms_per_token")
    times: dict[str, dict[str, list[float]]] = {k: {"base": [], "adapter": []} for k in kinds}
    same = 0
    found = positions(args.positions)
    for index, position in enumerate(found):
        cut = position.document.split("\n")
        prefix = "\n".join(cut[: position.line + 1])
        suffix = "\n".join(cut[position.line + 1 :])
        steps = {
            "cold": request(prefix, suffix),
            "warm": request(prefix + position.rest[:1], suffix),
        }
        order = [("base", base), ("adapter", lora)]
        if index % 2:
            order.reverse()
        texts: dict[str, list[str]] = {"base": [], "adapter": []}
        for name, engine in order:
            for kind, req in steps.items():
                ms, text, decode, prompt = timed(engine, req)
                times[kind][name].append(ms)
                texts[name].append(text)
                times["decode_ms_per_token"][name].append(decode or 0.0)
                if kind == "cold":  # a cold prompt: hundreds of tokens evaluated
                    times["prompt_ms_per_token"][name].append(prompt or 0.0)
        same += texts["base"] == texts["adapter"]
        print(f"{index + 1}/{len(found)}", end="\r", file=sys.stderr)
    report = {
        "model": gguf.name,
        "adapter": {"rank": args.rank, "layers": "all linear", "size_mb": round(size_mb, 1)},
        "threads": base.info.threads,
        "identical_suggestions": f"{same}/{len(found)}",
        **{kind: describe(pair["base"], pair["adapter"]) for kind, pair in times.items()},
    }
    base.close()
    lora.close()
    print(json.dumps(report, indent=2))
    if args.json:
        args.json.write_text(json.dumps(report, indent=2) + "\n")


if __name__ == "__main__":
    main()
