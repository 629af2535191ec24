"""Every error the models package raises to its callers, in one place.

Each one carries a message meant for the user (what is wrong and what to do), so a caller can
show `str(error)` as it is. The base classes say how a caller may treat them without knowing
the class: an unavailable model is a RuntimeError, a model that cannot be found a LookupError,
a file that is not a usable model (or gate) a ValueError.
"""

from __future__ import annotations


class ModelUnavailable(RuntimeError):
    """No model is loaded (missing, corrupt, or still failing); the message says why."""


class EngineUnavailable(ModelUnavailable):
    """The server cannot answer now (down, slow, refusing); the message is for the user."""


class ModelLoadError(RuntimeError):
    """The model file could not be loaded; the message is meant for the user."""


class ModelNotFound(LookupError):
    """The configured model cannot be found; the message tells the user what to do."""


class GGUFError(ValueError):
    """The file is not a usable GGUF file; the message says why in words a user can act on."""


class DownloadError(RuntimeError):
    """The download failed; the message says why and what to do."""


class GateModelError(ValueError):
    """A gate model directory that cannot be used; the message says which file and why."""
