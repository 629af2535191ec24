"""The README's promises that can drift: its two quickstart commands and what CI runs."""

from __future__ import annotations

import re

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
