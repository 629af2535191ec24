"""The exports are usable for real: TRL trains on them as they are.

DPO and KTO files exported from a small real store are loaded with Hugging Face `datasets` and
drive one optimisation step of TRL's `DPOTrainer` and `KTOTrainer` on a tiny randomly initialised
Llama built here from a config, with a BPE tokenizer trained here on the exported text: nothing
is downloaded (HF_HUB_OFFLINE=1), nothing is saved, nothing is reported.

Needs the `tune` extra (`pip install -e ".[tune]"`: torch, transformers, datasets, accelerate,
trl); skipped without it, as in the default `[test]` install.
"""

from __future__ import annotations

import copy
import json
import os
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest

os.environ["HF_HUB_OFFLINE"] = "1"  # before any Hugging Face import: no hub request, ever
os.environ["HF_DATASETS_OFFLINE"] = "1"
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

# CI installs the tune extra after the README's test command and runs these with `pytest -m tune`.
pytestmark = pytest.mark.tune

REASON = 'needs the tune extra (pip install -e ".[tune]"): {} is not installed'
for _module in ("torch", "trl", "transformers", "datasets", "tokenizers"):
    pytest.importorskip(_module, reason=REASON.format(_module))

import torch  # noqa: E402
from datasets import load_dataset  # noqa: E402
from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers  # noqa: E402
from transformers import LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast  # noqa: E402
from trl import DPOConfig, DPOTrainer, KTOConfig, KTOTrainer  # noqa: E402

from hintwise.telemetry import Event, Suggestion, Writer  # noqa: E402
from hintwise.telemetry.export import export  # noqa: E402
from hintwise.telemetry.store import to_epoch_ms  # noqa: E402

T0 = to_epoch_ms(datetime(2026, 11, 2, 9, 0))
SPECIAL = {"pad_token": "<pad>", "eos_token": "<eos>", "bos_token": "<bos>", "unk_token": "<unk>"}

# (prompt, accepted text, rejected text, what the user wrote instead of the rejected one)
CASES = [
    ("def add(a, b):\n    return ", "a + b", "a - b", "a + b"),
    ("def area(r):\n    return ", "math.pi * r ** 2", "r * r", "3.14159 * r * r"),
    ('if __name__ == "__main__":\n    ', "main()", "pass", "sys.exit(main())"),
    ("for item in items:\n    ", "print(item)", "continue", "total += item"),
]


@pytest.fixture(scope="module")
def exported(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """A store written by the real Writer, with accepted, rejected and replaced suggestions,
    exported as DPO and KTO JSON Lines."""
    directory = tmp_path_factory.mktemp("tune")
    writer = Writer.start(directory / "telemetry.db")
    clock = T0
    for n, (prompt, good, bad, replacement) in enumerate(CASES):
        for suffix, text, outcomes in (
            ("a", good, [Event("", "accepted"), Event("", "survival", check_after_s=30)]),
            ("r", bad, [Event("", "rejected", reason="explicit")]),
        ):
            clock += 1000
            sid = f"{n}{suffix}"
            writer.record(
                Suggestion(id=sid, created_ms=clock, language="python", prompt=prompt, text=text)
            )
            for event in (Event("", "shown"), *outcomes):
                event.suggestion_id, event.time_ms = sid, clock + 500
                event.similarity = 1.0 if event.kind == "survival" else None
                writer.record(event)
        writer.record(Event(f"{n}r", "replacement", time_ms=clock + 9000, text=replacement))
    assert writer.close()
    files = {fmt: directory / f"{fmt}.jsonl" for fmt in ("dpo", "kto")}
    assert export(directory / "telemetry.db", "dpo", files["dpo"]) == 7  # one replacement = good
    assert export(directory / "telemetry.db", "kto", files["kto"]) == 8
    return files


def texts(files: dict[str, Path]) -> Iterator[str]:
    for path in files.values():
        for line in path.read_text(encoding="utf-8").splitlines():
            yield from (value for value in json.loads(line).values() if isinstance(value, str))


def tiny_tokenizer(corpus: Iterator[str]) -> PreTrainedTokenizerFast:
    """A byte-level BPE trained on the exported text: any string encodes, nothing downloaded."""
    tokenizer = Tokenizer(models.BPE(unk_token=SPECIAL["unk_token"]))
    tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tokenizer.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=400,
        special_tokens=list(SPECIAL.values()),
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tokenizer.train_from_iterator(corpus, trainer=trainer)
    return PreTrainedTokenizerFast(tokenizer_object=tokenizer, **SPECIAL)


def tiny_model(tokenizer: PreTrainedTokenizerFast) -> LlamaForCausalLM:
    """Two layers, hidden size 32, random weights (seeded)."""
    torch.manual_seed(0)
    config = LlamaConfig(
        vocab_size=len(tokenizer),
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=2,
        num_attention_heads=2,
        num_key_value_heads=2,
        max_position_embeddings=256,
        pad_token_id=tokenizer.pad_token_id,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
    )
    return LlamaForCausalLM(config)


def training_options(output_dir: Path) -> dict[str, Any]:
    """One step on the CPU, in float32, with no checkpoint, log file or report."""
    return {
        "output_dir": str(output_dir),
        "max_steps": 1,
        "per_device_train_batch_size": 4,  # KTO needs more than 1 for its KL estimate
        "learning_rate": 1e-2,
        "use_cpu": True,
        "bf16": False,
        "activation_checkpointing": False,  # TRL turns it on by default; pointless here
        "report_to": [],
        "save_strategy": "no",
        "logging_strategy": "no",
        "disable_tqdm": True,
        "max_length": 64,
        "dataloader_num_workers": 0,
    }


def changed(before: dict[str, torch.Tensor], model: LlamaForCausalLM) -> bool:
    after = model.state_dict()
    return any(not torch.equal(before[name], after[name]) for name in before)


def run(trainer_class: Any, config: Any, files: dict[str, Path], fmt: str, out: Path) -> None:
    """Load the export with `datasets`, take one step, and check the step really trained."""
    dataset = load_dataset("json", data_files=str(files[fmt]), split="train")
    tokenizer = tiny_tokenizer(texts(files))
    model = tiny_model(tokenizer)
    before = {name: tensor.clone() for name, tensor in model.state_dict().items()}
    trainer = trainer_class(
        model=model,
        ref_model=copy.deepcopy(model),
        args=config,
        train_dataset=dataset,
        processing_class=tokenizer,
    )
    result = trainer.train()
    assert result.global_step == 1
    assert torch.isfinite(torch.tensor(result.training_loss))
    assert changed(before, model)
    assert not any(out.glob("checkpoint-*"))


def test_dpo_export_trains_one_step(exported: dict[str, Path], tmp_path: Path) -> None:
    rows = load_dataset("json", data_files=str(exported["dpo"]), split="train")
    assert rows.column_names == ["prompt", "chosen", "rejected"]
    assert rows[0]["prompt"] == CASES[0][0]
    config = DPOConfig(**training_options(tmp_path))
    run(DPOTrainer, config, exported, "dpo", tmp_path)


def test_kto_export_trains_one_step(exported: dict[str, Path], tmp_path: Path) -> None:
    rows = load_dataset("json", data_files=str(exported["kto"]), split="train")
    assert rows.column_names == ["prompt", "completion", "label"]
    assert rows["label"] == [True, False] * len(CASES)
    config = KTOConfig(**training_options(tmp_path))
    run(KTOTrainer, config, exported, "kto", tmp_path)
