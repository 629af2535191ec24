"""Every third-party module the package imports is declared in pyproject's dependencies.

A module that is only installed by hand on a developer's machine passes every other test there
and breaks every fresh install; this test catches it from the source alone.
"""

from __future__ import annotations

import ast
import importlib.metadata
import re
import sys
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("lsp_server", "models", "telemetry")


def _top_level_imports() -> set[str]:
    names: set[str] = set()
    for package in PACKAGES:
        for path in (ROOT / package).rglob("*.py"):
            for node in ast.walk(ast.parse(path.read_text(), str(path))):
                if isinstance(node, ast.Import):
                    names.update(alias.name.split(".")[0] for alias in node.names)
                elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                    names.add(node.module.split(".")[0])
    return names


def _declared_distributions() -> set[str]:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    return {
        re.split(r"[<>=!~\[; ]", requirement, maxsplit=1)[0].lower().replace("_", "-")
        for requirement in project["dependencies"]
    }


def test_every_third_party_import_is_a_declared_dependency():
    # The package's own imports all start with `hintwise.`; a bare `models` would be a bug.
    third_party = _top_level_imports() - set(sys.stdlib_module_names) - {"hintwise"}
    providers = importlib.metadata.packages_distributions()
    declared = _declared_distributions()
    missing = {}
    for module in sorted(third_party):
        dists = {d.lower().replace("_", "-") for d in providers.get(module, [module])}
        if not dists & declared:
            missing[module] = sorted(dists)
    assert not missing, f"imported but not in [project].dependencies: {missing}"


def test_the_wheel_carries_every_module_and_the_shipped_gate(tmp_path):
    """setuptools installs only the packages pyproject lists: a sub-package left out works in
    an editable install and is missing from `pip install .` (it happened to lsp_server.features)."""
    import subprocess
    import zipfile

    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q",
         "-w", str(tmp_path), str(ROOT)],
        check=True,
    )  # fmt: skip
    wheel = next(tmp_path.glob("hintwise-*.whl"))
    names = set(zipfile.ZipFile(wheel).namelist())
    expected = {
        str(path.relative_to(ROOT))
        for package in PACKAGES
        for path in (ROOT / package).rglob("*")
        if path.is_file() and "__pycache__" not in path.parts
    }
    assert expected - names == set()
    assert "models/gate/default/post.txt" in names
