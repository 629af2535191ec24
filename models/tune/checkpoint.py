"""A training run's checkpoint in its work folder, so that an interrupted run continues.

    <work_dir>/checkpoint/adapter_config.json, adapter_model.safetensors   the PEFT adapter
                         /optimizer.pt                                     AdamW's moments
                         /state.json    step, total, data order, losses, examples' fingerprint

A checkpoint is written beside the current one and swapped in by renames, so a kill at any
moment leaves a complete checkpoint (the new one, or the previous as checkpoint.old).
"""

from __future__ import annotations

import hashlib
import json
import shutil
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from hintwise.models.tune.examples import Example

CHECKPOINT = "checkpoint"
STATE_FILE = "state.json"
OPTIMIZER_FILE = "optimizer.pt"


@dataclass
class State:
    """Where a run is: `order` lists example indices, `step` batches of it are done."""

    fingerprint: str
    order: list[int]
    total: int
    step: int = 0
    losses: list[float] = field(default_factory=list)
    seconds: float = 0.0
    finished: bool = False


def fingerprint(examples: Sequence[Example], config: Any) -> str:
    """Identity of the run's inputs: a checkpoint of other examples or settings is not
    resumed."""
    settings = {k: v for k, v in vars(config).items() if k not in ("save_every", "threads")}
    digest = hashlib.sha256(repr(sorted(settings.items())).encode())
    for example in examples:
        digest.update(
            repr((example.prompt, example.target, example.weight, example.target_tokens)).encode()
        )
    return digest.hexdigest()[:16]


def folder(work_dir: Path) -> Path | None:
    """The latest complete checkpoint, if any."""
    for name in (CHECKPOINT, CHECKPOINT + ".old"):
        candidate = work_dir / name
        if (candidate / STATE_FILE).is_file():
            return candidate
    return None


def read_state(path: Path) -> State:
    return State(**json.loads((path / STATE_FILE).read_text(encoding="utf-8")))


def save(work_dir: Path, state: State, model: Any, optimizer: Any, torch: Any) -> Path:
    """Write the checkpoint atomically; returns its folder."""
    work_dir.mkdir(parents=True, exist_ok=True)
    partial, current, old = (
        work_dir / (CHECKPOINT + ".partial"),
        work_dir / CHECKPOINT,
        work_dir / (CHECKPOINT + ".old"),
    )
    shutil.rmtree(partial, ignore_errors=True)
    model.save_pretrained(str(partial))
    torch.save(optimizer.state_dict(), partial / OPTIMIZER_FILE)
    (partial / STATE_FILE).write_text(json.dumps(asdict(state)), encoding="utf-8")
    shutil.rmtree(old, ignore_errors=True)
    if current.exists():
        current.rename(old)
    partial.rename(current)
    shutil.rmtree(old, ignore_errors=True)
    return current
