"""The README's promises that can drift: its two quickstart commands and what CI runs."""

from __future__ import annotations

import re
from pathlib import Path

from conftest import ROOT

README = (ROOT / "README.md").read_text()


def quickstart_commands() -> list[str]:
    section = README.split("## Quickstart", 1)[1].split("\n## ", 1)[0]
    return [block.strip() for block in re.findall(r"```sh\n(.*?)```", section, re.S)]


def test_quickstart_has_exactly_two_commands():
    commands = quickstart_commands()
    assert len(commands) == 2
    assert all("\n" not in command for command in commands)
    assert "hintwise complete examples/primes.py:15:13" in commands[0]
    assert commands[1].endswith("pytest")


def test_ci_runs_the_readme_test_command():
    script = (ROOT / ".ci" / "run").read_text()
    [command] = re.findall(r"^TEST_COMMAND='(.*)'$", script, re.M)
    assert command == quickstart_commands()[1]


def test_the_example_line_is_the_one_the_quickstart_completes():
    lines = (ROOT / "examples" / "primes.py").read_text().split("\n")
    assert lines[14] == " " * 12  # line 15: the body of `if n % divisor == 0:` is missing


def _map_paths() -> set[str]:
    """The files and folders the README's map names (`name.py` or `name/`, indented two spaces
    per level), as repository paths."""
    block = README.split("## How it is built", 1)[1].split("```", 2)[1]
    paths: set[str] = set()
    parents: list[str] = []
    for line in block.split("\n"):
        match = re.match(r"^( *)(\S+\.py|\S+/)(\s|$)", line)
        if match is None:
            continue
        depth = len(match.group(1)) // 2
        parents = [*parents[:depth], match.group(2).rstrip("/")]
        paths.add("/".join(parents) + ("/" if match.group(2).endswith("/") else ""))
    return paths


def test_the_architecture_map_names_every_module():
    """The README's map is how a newcomer finds their way: a module or folder missing from it is
    lost, and one it names that does not exist sends them nowhere."""
    named = _map_paths()
    for package in ("lsp_server", "models", "telemetry"):
        for path in (ROOT / package).rglob("*.py"):
            if path.name != "__init__.py":
                relative = str(path.relative_to(ROOT))
                assert relative in named, f"{relative} is not in the README map"
                folder = str(path.parent.relative_to(ROOT)) + "/"
                assert folder in named, f"{folder} is not in the README map"
    for path in named:
        assert (ROOT / path).exists(), f"the README map names {path}, which does not exist"


# Where the README and docs/ point into the repository: folders and files named in the text
# (`lsp_server/explain/tracebacks.py`, `bench/latency.py`, ...) and relative links, each
# checked to exist.
DOCUMENTS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
REPOSITORY_PATH = re.compile(
    r"(?<![\w./~<>$-])"  # not the tail of a longer path, a home folder or a placeholder
    r"((?:lsp_server|models|telemetry|tests|bench|editors|examples|docs|\.ci)/[\w./-]*"
    r"|hintwise/[\w/]*\.py)"  # `hintwise/didShow` and its kind are LSP methods, not files
)
# Made by a build or a test run, named in the docs as where to find them.
GENERATED = {"editors/vscode/hintwise.vsix", "tests/artifacts/"}


def _anchors(document: Path) -> set[str]:
    """GitHub's anchors for a markdown file's headings."""
    text = re.sub(r"```.*?```", "", document.read_text(), flags=re.S)
    headings = re.findall(r"^#+ (.+)$", text, re.M)
    return {re.sub(r"[^\w\- ]", "", h.strip().lower()).replace(" ", "-") for h in headings}


def test_every_repository_path_the_docs_mention_exists():
    missing = []
    for document in DOCUMENTS:
        text = document.read_text()
        name = document.relative_to(ROOT)
        for found in REPOSITORY_PATH.findall(text):
            path = found.rstrip(".")
            if path not in GENERATED and not (ROOT / path).exists():
                missing.append(f"{name}: {path}")
        for target in re.findall(r"\]\(([^)\s]+)\)", text):
            if re.match(r"[a-z]+:", target):
                continue  # https:, mailto:
            file, _, anchor = target.partition("#")
            linked = (document.parent / file).resolve() if file else document
            if not linked.exists():
                missing.append(f"{name}: link to {target}")
            elif anchor and linked.suffix == ".md" and anchor not in _anchors(linked):
                missing.append(f"{name}: link to {target} (no such heading)")
    assert not missing, missing


def test_the_moved_sections_are_linked_from_the_readme():
    for doc in ("docs/performance.md", "docs/team-server.md"):
        assert f"]({doc})" in README, f"the README does not link {doc}"
