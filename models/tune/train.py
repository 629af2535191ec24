"""Supervised LoRA training of the completion model on what the user kept, on CPU.

The base is the GGUF the server runs, loaded by transformers (base.py); PEFT adds LoRA
matrices to every linear layer of the transformer blocks (not the embeddings or the output
head, which llama.cpp ties); the loss is the cross-entropy of the target tokens after the
prompt (batches.py). The run is resumable: every `save_every` steps and when the deadline
comes, the adapter, the optimizer and the position in the data are saved (checkpoint.py), and
calling `train` again with the same work folder and examples continues from there.

Measured on this machine (2 cores shared with other work, load average 6-11; Gemma 3 270M,
float32, batch 4 x 384 tokens, targets of ~20 tokens): 25-45 s a step with 1 torch thread,
70-160 s with 2; bfloat16 autocast 25-41 s against 28-57 s for float32 side by side (not
adopted: small and noisy gain). Peak memory ~6.7 GB, mostly activations; gradient
checkpointing would halve it (3.7 GB) for ~60% more time a step.
"""

from __future__ import annotations

import math
import os
import random
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from hintwise.models.tune import base as base_model
from hintwise.models.tune import checkpoint
from hintwise.models.tune.batches import Encoded, collate, encode, loss
from hintwise.models.tune.examples import Example
from hintwise.models.tune.runtime import require

ADAPTER = "adapter"


@dataclass(frozen=True)
class TrainConfig:
    rank: int = 8
    alpha: int = 16
    learning_rate: float = 2e-4
    batch_size: int = 4
    max_tokens: int = 384  # prompt tail + target per example
    epochs: float = 1.0
    seed: int = 0
    save_every: int = 10  # steps between checkpoints
    # torch threads; 0: every core but one, for the editor and the server (on 2 busy cores
    # one thread ran a step faster than two: 25-57 s against 70-158 s, see the report)
    threads: int = 0


@dataclass
class Progress:
    step: int
    total: int
    loss: float | None
    elapsed_s: float


@dataclass
class TrainResult:
    peft_dir: Path  # the PEFT folder (adapter_config.json, adapter_model.safetensors)
    steps: int
    total: int
    finished: bool
    seconds: float
    losses: list[float] = field(default_factory=list)


def data_order(n: int, config: TrainConfig) -> list[int]:
    """Example indices in training order: a seeded shuffle per epoch, a fraction of an epoch
    taking the first part of the last shuffle."""
    rng = random.Random(config.seed)
    order: list[int] = []
    for _ in range(max(1, math.ceil(config.epochs))):
        epoch = list(range(n))
        rng.shuffle(epoch)
        order.extend(epoch)
    return order[: max(1, round(n * config.epochs))]


def _result(work_dir: Path, state: checkpoint.State) -> TrainResult:
    done = work_dir / ADAPTER
    peft_dir = done if state.finished else work_dir / checkpoint.CHECKPOINT
    return TrainResult(
        peft_dir=peft_dir,
        steps=state.step,
        total=state.total,
        finished=state.finished,
        seconds=state.seconds,
        losses=list(state.losses),
    )


def _peft_model(model: Any, config: TrainConfig, resume: Path | None, peft: Any) -> Any:
    if resume is not None:
        return peft.PeftModel.from_pretrained(model, str(resume), is_trainable=True)
    lora = peft.LoraConfig(
        r=config.rank,
        lora_alpha=config.alpha,
        target_modules="all-linear",
        lora_dropout=0.0,
        bias="none",
        task_type="CAUSAL_LM",
    )
    return peft.get_peft_model(model, lora)


def _encode_all(examples: Sequence[Example], base: Any, config: TrainConfig) -> list[Encoded]:
    encoded = [encode(example, base.tokenize, config.max_tokens, base.bos) for example in examples]
    kept = [item for item in encoded if item is not None]
    if not kept:
        raise ValueError("no example has a non-empty target: nothing to train on")
    return kept


def train(
    base_gguf: Path,
    examples: Sequence[Example],
    work_dir: Path,
    config: TrainConfig,
    deadline: float | None = None,
    progress: Callable[[Progress], None] = lambda p: None,
) -> TrainResult:
    """Train (or continue training) a LoRA adapter for `base_gguf` on `examples`.

    `deadline` is a time.monotonic() value: no step starts that would end after it (judged
    by the last step's time), and the run saves a checkpoint when it stops there."""
    work_dir = Path(work_dir)
    key = checkpoint.fingerprint(examples, config)
    saved = checkpoint.folder(work_dir)
    state = checkpoint.read_state(saved) if saved is not None else None
    if state is not None and state.fingerprint != key:
        saved, state = None, None  # other examples or settings: a new run
    if state is not None and state.finished:
        return _result(work_dir, state)
    modules = require()
    torch = modules["torch"]
    torch.manual_seed(config.seed)
    torch.set_num_threads(config.threads or max(1, (os.cpu_count() or 1) - 1))
    base = base_model.load(Path(base_gguf), modules, cache_parent=work_dir.parent)
    encoded = _encode_all(examples, base, config)
    if state is None:
        order = data_order(len(encoded), config)
        state = checkpoint.State(key, order, math.ceil(len(order) / config.batch_size))
    model = _peft_model(base.model, config, saved, modules["peft"])
    model.train()
    optimizer = torch.optim.AdamW(
        [p for p in model.parameters() if p.requires_grad], lr=config.learning_rate
    )
    if saved is not None:
        optimizer.load_state_dict(torch.load(saved / checkpoint.OPTIMIZER_FILE))
    _loop(model, optimizer, encoded, state, work_dir, config, deadline, progress, torch)
    if state.finished:
        model.save_pretrained(str(work_dir / ADAPTER))
    checkpoint.save(work_dir, state, model, optimizer, torch)
    return _result(work_dir, state)


def _loop(
    model: Any,
    optimizer: Any,
    encoded: list[Encoded],
    state: checkpoint.State,
    work_dir: Path,
    config: TrainConfig,
    deadline: float | None,
    progress: Callable[[Progress], None],
    torch: Any,
) -> None:
    """Run steps until the end or the deadline, checkpointing every `save_every` steps."""
    last_step_s = 0.0
    while state.step < state.total:
        if deadline is not None and time.monotonic() + last_step_s > deadline:
            return
        started = time.monotonic()
        start = state.step * config.batch_size
        batch = [encoded[i] for i in state.order[start : start + config.batch_size]]
        value = loss(model, collate(batch, base_pad(model), torch), torch)
        optimizer.zero_grad()
        value.backward()
        optimizer.step()
        last_step_s = time.monotonic() - started
        state.step += 1
        state.seconds += last_step_s
        state.losses.append(float(value.detach()))
        state.finished = state.step >= state.total
        progress(Progress(state.step, state.total, state.losses[-1], state.seconds))
        if not state.finished and state.step % config.save_every == 0:
            checkpoint.save(work_dir, state, model, optimizer, torch)


def base_pad(model: Any) -> int:
    """The padding id: any id works under the attention mask; the config's if it has one."""
    pad = getattr(model.config, "pad_token_id", None)
    return 0 if pad is None else int(pad)
