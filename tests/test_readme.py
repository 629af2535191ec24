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


def test_the_architecture_map_names_every_module():
    """The README's map is how a newcomer finds their way: a module missing from it is lost."""
    for package in ("lsp_server", "models", "telemetry"):
        for path in (ROOT / package).glob("*.py"):
            if path.name != "__init__.py":
                assert f"  {path.name} " in README, (
                    f"{package}/{path.name} is not in the README map"
                )
