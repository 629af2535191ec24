"""What `pip install .` gives a user: declared dependencies, one import name, every file.

A module that is only installed by hand on a developer's machine passes every other test there
and breaks every fresh install; a sub-package missing from pyproject works in an editable install
and is missing from the wheel; a generic top-level name (`models`, `telemetry`) in the wheel
would clash with the user's own project. Each of these is checked here against the source or a
real wheel built the way pip builds it for a newcomer.
"""

from __future__ import annotations

import ast
import asyncio
import importlib.metadata
import re
import shutil
import subprocess
import sys
import tomllib
import zipfile
from pathlib import Path

import pytest
from conftest import hintwise_command
from lsp_session import CAPABILITIES, EXAMPLE, inline, open_document, wait_ready
from lsprotocol import types
from pytest_lsp.client import make_test_lsp_client

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("lsp_server", "models", "telemetry")
MAX_MODULE_LINES = 600
# What a build never needs: version control, venvs, caches, build output, editor dependencies.
NOT_SOURCE = shutil.ignore_patterns(
    ".git", ".venv", "venv", "build", "dist", "node_modules", "__pycache__", "*.egg-info",
    ".*_cache", "artifacts", "*.gguf", "*.vsix",
)  # fmt: skip


# Code that only the `tune` extra's users run (hintwise tune): it may import that extra's packages.
EXTRA_ONLY = {"tune": ROOT / "models" / "tune"}


def _top_level_imports(under: Path | None = None, skip: tuple[Path, ...] = ()) -> set[str]:
    names: set[str] = set()
    folders = [under] if under is not None else [ROOT / package for package in PACKAGES]
    for folder in folders:
        for path in folder.rglob("*.py"):
            if any(path.is_relative_to(other) for other in skip):
                continue
            for node in ast.walk(ast.parse(path.read_text(), str(path))):
                if isinstance(node, ast.Import):
                    names.update(alias.name.split(".")[0] for alias in node.names)
                elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                    names.add(node.module.split(".")[0])
    return names


def _declared_distributions(extra: str | None = None) -> set[str]:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    requirements = project["dependencies"] + project["optional-dependencies"].get(extra, [])
    return {
        re.split(r"[<>=!~\[; ]", requirement, maxsplit=1)[0].lower().replace("_", "-")
        for requirement in requirements
    }


def _undeclared(third_party: set[str], declared: set[str]) -> dict[str, list[str]]:
    providers = importlib.metadata.packages_distributions()
    missing = {}
    for module in sorted(third_party - set(sys.stdlib_module_names) - {"hintwise"}):
        dists = {d.lower().replace("_", "-") for d in providers.get(module, [module])}
        if not dists & declared:
            missing[module] = sorted(dists)
    return missing


def test_every_third_party_import_is_a_declared_dependency():
    # The package's own imports all start with `hintwise.`; a bare `models` would be a bug.
    imports = _top_level_imports(skip=tuple(EXTRA_ONLY.values()))
    missing = _undeclared(imports, _declared_distributions())
    assert not missing, f"imported but not in [project].dependencies: {missing}"
    for extra, folder in EXTRA_ONLY.items():
        missing = _undeclared(_top_level_imports(folder), _declared_distributions(extra))
        assert not missing, f"{folder} imports what neither the dependencies nor [{extra}] have"


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> zipfile.ZipFile:
    """The wheel `pip wheel` builds from a copy of the source tree, with build isolation as for
    a newcomer: pip fetches the setuptools pyproject asks for (a venv's own setuptools, 65.5 from
    `python3 -m venv`, rejects `license = "Apache-2.0"`). The copy keeps a developer's stale
    build/ folder, which setuptools would pack too, out of the wheel."""
    source = tmp_path_factory.mktemp("source") / "hintwise"
    shutil.copytree(ROOT, source, ignore=NOT_SOURCE)
    out = tmp_path_factory.mktemp("wheel")
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", str(out), str(source)],
        check=True,
    )
    [built] = out.glob("hintwise-*.whl")
    return zipfile.ZipFile(built)


def test_the_wheel_claims_no_top_level_name_but_hintwise(wheel: zipfile.ZipFile) -> None:
    names = wheel.namelist()
    [dist_info] = {name.split("/")[0] for name in names if ".dist-info/" in name}
    assert re.fullmatch(r"hintwise-[^-/]+\.dist-info", dist_info)
    assert {name.split("/")[0] for name in names} == {"hintwise", dist_info}
    if f"{dist_info}/top_level.txt" in names:
        assert wheel.read(f"{dist_info}/top_level.txt").decode().split() == ["hintwise"]
    entry_points = wheel.read(f"{dist_info}/entry_points.txt").decode()
    assert re.search(r"^hintwise = hintwise\.lsp_server\.cli:main$", entry_points, re.M)


def test_the_wheel_carries_every_module_and_the_shipped_gate(wheel: zipfile.ZipFile) -> None:
    """setuptools installs only the packages pyproject lists: a sub-package left out works in
    an editable install and is missing from `pip install .` (it happened to lsp_server.features)."""
    names = set(wheel.namelist())
    expected = {f"hintwise/{path.name}" for path in (ROOT / "hintwise").glob("*.py")} | {
        f"hintwise/{path.relative_to(ROOT).as_posix()}"
        for package in PACKAGES
        for path in (ROOT / package).rglob("*")
        if path.is_file() and "__pycache__" not in path.parts and path.suffix != ".pyc"
    }
    assert expected - names == set()
    for shipped in ("pre.txt", "post.txt", "gate.json", "PROVENANCE.md"):
        assert f"hintwise/models/gate/default/{shipped}" in names


def test_no_module_is_over_600_lines() -> None:
    """A module past 600 lines holds more than one idea: split it into a folder."""
    long = {
        str(path.relative_to(ROOT)): lines
        for package in (*PACKAGES, "hintwise")
        for path in (ROOT / package).rglob("*.py")
        if (lines := len(path.read_text().splitlines())) > MAX_MODULE_LINES
    }
    assert not long, f"modules over {MAX_MODULE_LINES} lines: {long}"


# A user's project with packages of its own named like hintwise's folders: one that fails on
# import, one that defines the names hintwise's own packages define.
CLASHING = {
    "models/__init__.py": 'raise ImportError("the project\'s own models package was imported")\n',
    "lsp_server/__init__.py": 'raise ImportError("the project\'s own lsp_server was imported")\n',
    "telemetry/__init__.py": (
        '"""The project\'s own telemetry: same names as hintwise.telemetry, other meanings."""\n'
        "Writer = Event = Suggestion = None\n\n\n"
        "def open_db(*args, **kwargs):\n"
        '    raise RuntimeError("the project\'s own telemetry.open_db was called")\n'
    ),
    "telemetry/store.py": 'raise ImportError("the project\'s own telemetry.store was imported")\n',
}


@pytest.mark.model
@pytest.mark.timeout(300)
@pytest.mark.parametrize("how", ["hintwise serve", "python -m hintwise serve"])
async def test_a_project_with_its_own_models_and_telemetry_packages_does_not_break_the_server(
    how: str, tmp_path: Path, server_env: dict[str, str], gemma_path: Path
) -> None:
    """The editor plugins start the server from the project's own venv, in the project's folder
    (VS Code with `python -m hintwise`): the project's packages are on sys.path there."""
    project = tmp_path / "project"
    for name, text in CLASHING.items():
        (project / name).parent.mkdir(parents=True, exist_ok=True)
        (project / name).write_text(text)
    source = project / "primes.py"
    source.write_text(EXAMPLE)
    # The test's own data directory (its own feedback store), the session's assembled model.
    env = {
        **server_env,
        "PYTHONPATH": str(project),
        "HINTWISE_DATA_DIR": str(tmp_path / "data"),
        "HINTWISE_MODEL": str(gemma_path),
    }
    command = (
        [*hintwise_command(), "serve"]
        if how == "hintwise serve"
        else [sys.executable, "-m", "hintwise", "serve"]
    )
    client = make_test_lsp_client()
    await client.start_io(*command, env=env, cwd=str(project))
    try:
        await client.initialize_session(
            types.InitializeParams(
                capabilities=CAPABILITIES,
                root_uri=project.as_uri(),
                initialization_options={"completion.time_limit_ms": 30000},
            )
        )
        ready = await wait_ready(client, timeout=120)
        assert ready.state == "ready", ready
        uri = source.as_uri()
        open_document(client, uri, EXAMPLE)
        answer = await inline(client, uri, 14, 12, invoked=True)
        assert answer.items, answer
        text = answer.items[0].insert_text
        assert isinstance(text, str) and text.strip(), answer
        await asyncio.wait_for(client.shutdown_session(), 20)
    finally:
        await client.stop()
