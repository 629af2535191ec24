"""LoRA training on the real bundled model, and the GGUF adapter llama.cpp loads.

One distinctive completion is taught for one prompt (the token ids llama.cpp builds for it, as
the server records them): after a few steps the adapter, written as GGUF and loaded by the
project's LlamaEngine, makes the greedy completion start with the taught text, which the base
model never writes. Needs the `tune` extra (torch, transformers, PEFT); ~2 minutes, most of it
transformers dequantizing the GGUF.
"""

from __future__ import annotations

import time
from pathlib import Path

import pytest

pytestmark = [pytest.mark.tune, pytest.mark.model]

REASON = 'needs the tune extra (pip install -e ".[tune]"): {} is not installed'
for _module in ("torch", "transformers", "peft"):
    pytest.importorskip(_module, reason=REASON.format(_module))

from hintwise.models.engine import CompletionRequest  # noqa: E402
from hintwise.models.llama.engine import LlamaEngine  # noqa: E402
from hintwise.models.tune.examples import Example  # noqa: E402
from hintwise.models.tune.gguf_lora import write_gguf_lora  # noqa: E402
from hintwise.models.tune.train import TrainConfig, TrainResult, train  # noqa: E402

PREFIX = "def secret_word():\n    return "
TAUGHT = "'zebra cobalt'"


def _complete(gemma_path: Path, adapter: Path | None) -> tuple[tuple[int, ...], str]:
    engine = LlamaEngine(gemma_path, threads=2, adapter=adapter)
    try:
        request = CompletionRequest(prefix=PREFIX, max_tokens=12, time_limit_s=30)
        prompt = engine.build_prompt(request)[0]
        return tuple(prompt), engine.complete(request, lambda: False).text
    finally:
        engine.close()


@pytest.fixture(scope="module")
def taught(gemma_path: Path, tmp_path_factory: pytest.TempPathFactory) -> dict:
    """The base model's completion, then a run teaching TAUGHT for that prompt."""
    prompt, before = _complete(gemma_path, None)
    work = tmp_path_factory.mktemp("tune-work")
    config = TrainConfig(learning_rate=1e-3, batch_size=2, epochs=6, save_every=100)
    seen: list[int] = []
    result = train(
        gemma_path,
        [Example(prompt, TAUGHT, source="test"), Example(prompt, TAUGHT, source="test")],
        work,
        config,
        progress=lambda p: seen.append(p.step),
    )
    return {"prompt": prompt, "before": before, "result": result, "seen": seen, "work": work}


def test_training_runs_every_step_and_lowers_the_loss(taught: dict) -> None:
    result: TrainResult = taught["result"]
    assert result.finished and result.steps == result.total == 6
    assert taught["seen"] == [1, 2, 3, 4, 5, 6]
    assert result.losses[-1] < result.losses[0] / 10
    assert (result.peft_dir / "adapter_model.safetensors").is_file()


def test_the_adapter_teaches_llama_cpp_the_completion(taught: dict, gemma_path: Path) -> None:
    assert not taught["before"].startswith(TAUGHT[:6])  # the base model does not know it
    adapter = write_gguf_lora(taught["result"].peft_dir, gemma_path, taught["work"] / "a.gguf")
    assert adapter.stat().st_size < 8 * 1024 * 1024
    _, after = _complete(gemma_path, adapter)
    assert after.startswith(TAUGHT)


def test_a_finished_run_returns_at_once(taught: dict, gemma_path: Path) -> None:
    examples = [Example(taught["prompt"], TAUGHT, source="test")] * 2
    config = TrainConfig(learning_rate=1e-3, batch_size=2, epochs=6, save_every=100)
    started = time.monotonic()
    again = train(gemma_path, examples, taught["work"], config)
    assert time.monotonic() - started < 10  # loading the base alone takes over a minute
    assert again.finished and again.losses == taught["result"].losses
