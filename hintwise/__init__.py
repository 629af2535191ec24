"""hintwise: a local AI assistant for any LSP editor (completions, explanations, reviews).

This folder holds only the namespace. The code lives in the repository's three top-level
folders, which the wheel installs under this one name (pyproject's `package-dir`), so that a
user's environment never gains generic top-level packages such as `models` or `telemetry`:

    hintwise.lsp_server   ← lsp_server/   the LSP front (server, handlers, CLI); imports the others
    hintwise.models       ← models/       everything that predicts: engines, prompts, the gate
    hintwise.telemetry    ← telemetry/    the local feedback store and its exports
"""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("hintwise")
except PackageNotFoundError:  # imported from a source tree that was never installed
    __version__ = "0.0.0"

__all__ = ["__version__"]
