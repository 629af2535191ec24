"""The LoRA adapters `hintwise tune` installed, per base model, in the data directory.

    <data>/adapters/<model key>/runs/<run id>/adapter.gguf   the GGUF LoRA llama.cpp loads
                                             /report.json    what the run measured and decided
    <data>/adapters/<model key>/installed.json               {"current": run id | null,
                                                              "history": [earlier run ids]}

An adapter only fits the base model it was trained on, so each base GGUF has its own folder,
keyed by the file's size and the sha256 of its first megabyte (hashing 250 MB at every start
would cost seconds; a different model of the same size and header is not a real risk).
`installed.json` is replaced atomically, so a kill -9 during an install leaves the previous
adapter in place. Reverting pops the history: the adapter before, or none.
"""

from __future__ import annotations

import hashlib
import json
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ADAPTER_FILE = "adapter.gguf"
REPORT_FILE = "report.json"
INSTALLED_FILE = "installed.json"
_HEAD = 1 << 20


def model_key(base: Path) -> str:
    """A short stable identity of a base GGUF: its stem, size and the hash of its first MB."""
    size = base.stat().st_size
    with base.open("rb") as handle:
        digest = hashlib.sha256(handle.read(_HEAD)).hexdigest()[:12]
    return f"{base.stem[:40]}-{size}-{digest}"


def model_dir(data_path: Path, base: Path) -> Path:
    return data_path / "adapters" / model_key(base)


def new_run_dir(data_path: Path, base: Path, now: float | None = None) -> Path:
    """A fresh, not yet existing run folder named by the UTC time (unique within the model)."""
    stamp = time.strftime("%Y%m%d-%H%M%S", time.gmtime(time.time() if now is None else now))
    runs = model_dir(data_path, base) / "runs"
    run, n = runs / stamp, 1
    while run.exists():
        n += 1
        run = runs / f"{stamp}-{n}"
    return run


@dataclass(frozen=True)
class Adapter:
    """One run's adapter and what its run reported."""

    run_id: str
    path: Path
    report: dict[str, Any] = field(default_factory=dict)

    @property
    def size_bytes(self) -> int:
        return self.path.stat().st_size if self.path.exists() else 0


def _state(data_path: Path, base: Path) -> dict[str, Any]:
    path = model_dir(data_path, base) / INSTALLED_FILE
    try:
        state = json.loads(path.read_text())
    except (OSError, ValueError):
        return {"current": None, "history": []}
    if not isinstance(state, dict):
        return {"current": None, "history": []}
    history = [run for run in state.get("history", []) if isinstance(run, str)]
    current = state.get("current")
    return {"current": current if isinstance(current, str) else None, "history": history}


def _write_state(data_path: Path, base: Path, state: dict[str, Any]) -> None:
    folder = model_dir(data_path, base)
    folder.mkdir(parents=True, exist_ok=True)
    temporary = folder / f".{INSTALLED_FILE}.{os.getpid()}"
    temporary.write_text(json.dumps(state, indent=2) + "\n")
    os.replace(temporary, folder / INSTALLED_FILE)


def read_report(run: Path) -> dict[str, Any]:
    try:
        report = json.loads((run / REPORT_FILE).read_text())
    except (OSError, ValueError):
        return {}
    return report if isinstance(report, dict) else {}


def _adapter(data_path: Path, base: Path, run_id: str) -> Adapter | None:
    run = model_dir(data_path, base) / "runs" / run_id
    path = run / ADAPTER_FILE
    if not path.is_file():
        return None
    return Adapter(run_id, path, read_report(run))


def installed(data_path: Path, base: Path) -> Adapter | None:
    """The adapter installed for `base`, or None (none installed, reverted, or its file gone)."""
    current = _state(data_path, base)["current"]
    return _adapter(data_path, base, current) if current else None


def install(data_path: Path, base: Path, run: Path) -> Adapter:
    """Make `run` (a folder holding adapter.gguf) the installed adapter of `base`."""
    if not (run / ADAPTER_FILE).is_file():
        raise FileNotFoundError(f"{run / ADAPTER_FILE} does not exist")
    state = _state(data_path, base)
    if state["current"] and state["current"] != run.name:
        state["history"].append(state["current"])
    state["current"] = run.name
    _write_state(data_path, base, state)
    return Adapter(run.name, run / ADAPTER_FILE, read_report(run))


def revert(data_path: Path, base: Path) -> Adapter | None:
    """Go back to the adapter installed before the current one (None: no adapter at all)."""
    state = _state(data_path, base)
    previous = None
    while state["history"] and previous is None:
        previous = _adapter(data_path, base, state["history"].pop())
    state["current"] = previous.run_id if previous else None
    _write_state(data_path, base, state)
    return previous


def runs(data_path: Path, base: Path) -> list[Adapter]:
    """Every run that wrote an adapter for `base`, oldest first (installed or not)."""
    folder = model_dir(data_path, base) / "runs"
    if not folder.is_dir():
        return []
    found = (_adapter(data_path, base, run.name) for run in sorted(folder.iterdir()))
    return [adapter for adapter in found if adapter is not None]
