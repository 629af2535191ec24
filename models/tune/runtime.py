"""The optional `tune` extra: torch, transformers and PEFT, imported only when training.

The server and every other command import nothing of it; `hintwise tune` without the extra
gets TuneUnavailable with the install command instead of an ImportError.
"""

from __future__ import annotations

import importlib
from types import ModuleType

INSTALL = 'pip install "hintwise[tune]"'
_MODULES = ("torch", "transformers", "peft", "safetensors", "gguf")


class TuneUnavailable(Exception):
    """The `tune` extra is not installed: the message carries the install command."""


def require() -> dict[str, ModuleType]:
    """The extra's modules by name; TuneUnavailable names the first one missing."""
    found: dict[str, ModuleType] = {}
    for name in _MODULES:
        try:
            found[name] = importlib.import_module(name)
        except ImportError as error:
            raise TuneUnavailable(
                f"tuning needs {name}, which is not installed ({error}). Install the tune "
                f"extra: {INSTALL}"
            ) from None
    return found
