"""Which LoRA adapter completions use, whether it loaded, and when to look again.

`model.adapter` picks it: empty means the one `hintwise tune` installed for the base GGUF (the
registry in models/files/adapters.py), `none` means no adapter, anything else is a path. An
adapter that cannot be used (a missing file, not a GGUF, a LoRA for another model, a garbled
installed.json) never costs the user their completions: the base model serves and the state
says why, with the fix. The server compares a cheap stamp (the setting, and the mtime of
installed.json or of the adapter file) every few seconds to pick up a new install or a revert
without a restart.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from hintwise.models.files import adapters

CHECK_EVERY_S = 2.0  # how often a completion or a status request may stat installed.json


@dataclass(frozen=True)
class AdapterState:
    """The adapter wanted for completions, and what became of it."""

    source: str  # "installed" (by `hintwise tune`), "setting" (model.adapter = PATH), "none"
    path: Path | None = None
    run_id: str | None = None
    report: dict[str, Any] = field(default_factory=dict)
    loaded: bool = False
    problem: str | None = None

    def fix(self) -> str:
        if self.source == "setting":
            return 'set model.adapter to a GGUF LoRA made for this model, or to "none"'
        return 'run `hintwise tune --revert`, or set model.adapter = "none"'

    def message(self, model: str) -> str:
        """The one message a user gets when the adapter cannot be used."""
        which = f" {self.path}" if self.path else ""
        run = f" (run {self.run_id})" if self.run_id else ""
        return (
            f"hintwise: the adapter{which}{run} cannot be used with {model}: {self.problem}. "
            f"Completions use the base model; to fix it, {self.fix()}."
        )

    def describe(self) -> dict[str, Any]:
        """For `hintwise/status` and `hintwise doctor`."""
        size = self.path.stat().st_size if self.path and self.path.is_file() else None
        return {
            "source": self.source,
            "path": str(self.path) if self.path else None,
            "run_id": self.run_id,
            "size_bytes": size,
            "loaded": self.loaded,
            "problem": self.problem,
            "fix": self.fix() if self.problem else None,
            "report": report_summary(self.report),
        }


def report_summary(report: dict[str, Any]) -> dict[str, Any]:
    """What a run's report.json measured, without its bulk (lists, long texts)."""
    summary: dict[str, Any] = {}
    for key, value in report.items():
        if isinstance(value, bool | int | float) or (isinstance(value, str) and len(value) < 200):
            summary[key] = value
        elif isinstance(value, dict):
            inner = report_summary(value)
            if inner:
                summary[key] = inner
    return summary


def _garbled(data_path: Path, base: Path) -> str | None:
    """Why installed.json cannot be read, when it exists and cannot."""
    path = adapters.model_dir(data_path, base) / adapters.INSTALLED_FILE
    try:
        state = json.loads(path.read_text())
    except FileNotFoundError:
        return None
    except (OSError, ValueError) as error:
        return f"{path} is not readable JSON ({error})"
    if not isinstance(state, dict):
        return f"{path} does not hold a JSON object"
    return None


def pick(setting: str, data_path: Path, base: Path) -> AdapterState:
    """The adapter `setting` (model.adapter) selects for the base GGUF `base`."""
    choice = setting.strip()
    if choice.lower() == "none":
        return AdapterState("none")
    if choice:
        path = Path(choice).expanduser()
        problem = None if path.is_file() else "the file does not exist"
        return AdapterState("setting", path, problem=problem)
    garbled = _garbled(data_path, base)
    if garbled:
        return AdapterState("installed", problem=garbled)
    found = adapters.installed(data_path, base)
    if found is None:
        return AdapterState("none")
    return AdapterState("installed", found.path, found.run_id, found.report)


def loaded(state: AdapterState) -> AdapterState:
    return replace(state, loaded=state.path is not None and state.problem is None)


def refused(state: AdapterState, reason: str) -> AdapterState:
    return replace(state, loaded=False, problem=reason)


def _mtime(path: Path) -> tuple[int, int] | None:
    try:
        found = path.stat()
    except OSError:
        return None
    return (found.st_mtime_ns, found.st_size)


def stamp(setting: str, registry: Path | None) -> tuple:
    """What changes when a different adapter is wanted: the setting, and the mtime of the
    file it names or of the registry's installed.json (`registry`: the base model's folder).
    A stat or two: cheap enough for every completion."""
    choice = setting.strip()
    if choice.lower() == "none":
        return (choice,)
    if choice:
        return (choice, _mtime(Path(choice).expanduser()))
    return (choice, _mtime(registry / adapters.INSTALLED_FILE) if registry else None)
