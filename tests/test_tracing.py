"""Execution grounding: a sandboxed, traced run of a script or one pytest test."""

from __future__ import annotations

import time
from pathlib import Path

from hintwise.lsp_server.explain import tracing

SCRIPT = """def mean(values):
    total = 0
    for v in values:
        total += v
    return total / (len(values) - 1)


print(mean([4]))
"""


def test_locals_are_recorded_line_by_line(tmp_path: Path):
    (tmp_path / "stats.py").write_text(SCRIPT)
    result = tracing.run_traced("script", "stats.py", tmp_path, tmp_path / "stats.py", "mean")
    assert result.facts[:4] == [
        "runtime: before line 2: values = [4]",
        "runtime: before line 3: total = 0",
        "runtime: before line 4: v = 4",
        "runtime: before line 3: total = 4",
    ]
    assert result.outcome == "failed: ZeroDivisionError: division by zero"
    assert any("line 5 raised ZeroDivisionError" in fact for fact in result.facts)


def test_a_pytest_node_id_runs_one_test(tmp_path: Path):
    (tmp_path / "stats.py").write_text(SCRIPT.replace("print(mean([4]))", ""))
    (tmp_path / "test_stats.py").write_text(
        "from stats import mean\n\ndef test_one():\n    assert mean([2, 4]) == 3\n\n"
        "def test_other():\n    assert True\n"
    )
    result = tracing.run_traced(
        "pytest", "test_stats.py::test_one", tmp_path, tmp_path / "stats.py", "mean"
    )
    assert "runtime: before line 3: total = 6" in result.facts
    assert result.outcome.startswith("failed: pytest exit status 1")


def test_a_hanging_run_is_killed_at_the_timeout(tmp_path: Path):
    (tmp_path / "hang.py").write_text("import os\nwhile True:\n    pass\n")
    started = time.monotonic()
    result = tracing.run_traced("script", "hang.py", tmp_path, None, "nothing", timeout_s=2)
    assert time.monotonic() - started < 6
    assert result.outcome == "timeout"
    assert result.facts == ["runtime: the run did not finish in 2 s and was stopped"]


def test_forks_network_and_writes_outside_the_workspace_are_refused(tmp_path: Path):
    outside = tmp_path.parent / f"{tmp_path.name}-outside.txt"
    workspace = tmp_path / "ws"
    workspace.mkdir()
    (workspace / "bad.py").write_text(
        "import os, socket, subprocess\n"
        "def attempt():\n"
        "    for action in (\n"
        f"        lambda: open({str(outside)!r}, 'w'),\n"
        "        lambda: os.fork(),\n"
        "        lambda: subprocess.run(['true']),\n"
        "        lambda: socket.create_connection(('127.0.0.1', 9)),\n"
        "    ):\n"
        "        try:\n"
        "            action()\n"
        "        except PermissionError:\n"
        "            pass\n"
        "    open('inside.txt', 'w').write('ok')\n"
        "attempt()\n"
    )
    result = tracing.run_traced("script", "bad.py", workspace, None, "attempt")
    assert not outside.exists()
    assert (workspace / "inside.txt").read_text() == "ok"
    refused = " ".join(result.blocked)
    for what in (str(outside), "os.fork", "subprocess.Popen", "socket."):
        assert what in refused, (what, result.blocked)
    assert result.outcome == "passed"


def test_a_memory_hog_is_stopped(tmp_path: Path):
    (tmp_path / "hog.py").write_text("data = bytearray(2 * 1024 ** 3)\n")
    result = tracing.run_traced("script", "hog.py", tmp_path, None, None, memory_mb=256)
    assert result.outcome.startswith("failed: MemoryError")


def test_target_found_in_a_traceback(tmp_path: Path):
    (tmp_path / "stats.py").write_text(SCRIPT)
    text = (
        f'Traceback (most recent call last):\n  File "{tmp_path}/stats.py", line 8, in <module>\n'
    )
    assert tracing.target_from_traceback(text, tmp_path) == ("script", str(tmp_path / "stats.py"))
    assert tracing.target_from_traceback("FAILED tests/t.py::test_x - boom", tmp_path) == (
        "pytest",
        "tests/t.py::test_x",
    )
    assert (
        tracing.target_from_traceback('  File "/etc/x.py", line 1, in <module>', tmp_path) is None
    )
