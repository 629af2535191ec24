"""Shared fixtures: the real bundled model, prepared once per test session, and paths."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
SHARED_DATA = ROOT.parent / "shared" / "data"


def hintwise_command() -> list[str]:
    """The installed console script: tests go through the real entry point."""
    script = Path(sys.executable).with_name("hintwise")
    if script.exists():
        return [str(script)]
    found = shutil.which("hintwise")
    if found is None:
        pytest.fail("the `hintwise` command is not installed (pip install -e '.[test]')")
    return [found]


def run_hintwise(args: list[str], cwd: Path, data_dir: Path) -> subprocess.CompletedProcess:
    """`hintwise ARGS` in `cwd` with the test session's data directory and a bare PATH."""
    return subprocess.run(
        [*hintwise_command(), *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=600,
        env={"HINTWISE_DATA_DIR": str(data_dir), "PATH": "/usr/bin:/bin"},
    )


@pytest.fixture(scope="session")
def data_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A data directory holding the assembled bundled model, shared by the session's servers."""
    from hintwise.lsp_server.config import Settings
    from hintwise.lsp_server.engines.choice import model_path

    directory = tmp_path_factory.mktemp("hintwise-data")
    model_path(Settings(data_dir=str(directory)))
    return directory


@pytest.fixture(scope="session")
def gemma_path(data_dir: Path) -> Path:
    return next((data_dir / "models").glob("*.gguf"))


@pytest.fixture(scope="session")
def server_env(data_dir: Path) -> dict[str, str]:
    env = {key: value for key, value in os.environ.items() if not key.startswith("HINTWISE_")}
    env["HINTWISE_DATA_DIR"] = str(data_dir)
    return env


@pytest.fixture
def clock_env(server_env: dict[str, str], gemma_path: Path, tmp_path: Path) -> dict[str, str]:
    """A server on the manual clock (moved with `lsp_session.advance`), with a fresh data
    directory per test (its own telemetry.db) and the shared model file."""
    return {
        **server_env,
        "HINTWISE_DATA_DIR": str(tmp_path),
        "HINTWISE_MODEL": str(gemma_path),
        "HINTWISE_TEST_CLOCK": "1",
    }


@pytest.fixture(scope="session")
def gemma_engine(gemma_path: Path):
    """One loaded engine for the tests that call the model directly."""
    from hintwise.models.llama.engine import LlamaEngine

    engine = LlamaEngine(gemma_path, name="gemma3-270m")
    engine.prepare()
    yield engine
    engine.close()
