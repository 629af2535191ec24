"""Verified fixes (`explain.repair`): one-line edits of the suspect function, re-run sandboxed
with the edited source in memory in place of the file, until one makes the failing run pass."""

from __future__ import annotations

import ast
import json
import subprocess
import sys
from pathlib import Path

import pytest

from hintwise.lsp_server.config import ExplainSettings
from hintwise.lsp_server.explain import mutations, repair, tracing
from hintwise.lsp_server.explain.question import traceback_question

LARGEST = '''def largest(values):
    """The largest of the values."""
    best = values[0]
    for v in values:
        if v < best:
            best = v
    return best
'''
TEST = "from shapes import largest\n\n\ndef test_largest():\n    assert largest([3, 9, 4]) == 9\n"


def test_edits_hold_the_swapped_comparison_and_all_parse():
    found = mutations.edits(LARGEST, 0, 6)
    assert mutations.Edit(4, "        if v > best:", "operator", 13) in found
    assert {e.kind for e in found} >= {"operator", "name", "constant", "negation", "delete"}
    for edit in found:
        ast.parse(mutations.apply(LARGEST, edit))  # every edit parses in place


def test_edits_never_touch_the_def_line_or_the_docstring():
    lines = {e.line for e in mutations.edits(LARGEST, 0, 6)}
    assert lines and 0 not in lines and 1 not in lines
    assert mutations.edits("def broken(:\n    pass\n", 0, 1) == []


def test_classic_operators_off_by_one_swaps_and_drops():
    code = "def f(xs, n):\n    total = abs(xs[0] - n) and n\n    return range(1, len(xs))\n"
    lines = {e.code.strip() for e in mutations.edits(code, 0, 2)}
    for expected in (
        "total = abs(xs[0] + n) and n",  # arithmetic operator
        "total = abs(xs[0] - n) or n",  # boolean operator
        "total = abs(n - xs[0]) and n",  # operands exchanged
        "total = xs[0] - n and n",  # a call dropped
        "total = abs(xs[0] - xs) and n",  # another variable in scope
        "total = abs(xs[1] - n) and n",  # a constant off by one
        "return range(len(xs))",  # a bound dropped
        "return range(1, len(xs) + 1)",  # a bound off by one
        "return not (range(1, len(xs)))",  # a negation added
    ):
        assert expected in lines, expected


def test_a_candidate_runs_from_memory_and_the_file_is_unchanged(tmp_path: Path):
    (tmp_path / "script.py").write_text(LARGEST + "\nassert largest([3, 9, 4]) == 9\n")
    before = (tmp_path / "script.py").read_bytes()
    fixed = LARGEST.replace("v < best", "v > best") + "\nassert largest([3, 9, 4]) == 9\n"
    wrong = LARGEST.replace("v < best", "v == best") + "\nassert largest([3, 9, 4]) == 9\n"
    outcomes = tracing.run_candidates(
        "script", "script.py", tmp_path, tmp_path / "script.py", [wrong, fixed, wrong], 5, 20
    )
    assert outcomes == ["failed: AssertionError: ", "passed"]  # stops at the first pass
    assert (tmp_path / "script.py").read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["script.py"]  # no bytecode either


def test_an_imported_module_is_replaced_under_pytest(tmp_path: Path):
    (tmp_path / "shapes.py").write_text(LARGEST)
    (tmp_path / "test_shapes.py").write_text(TEST)
    fixed = LARGEST.replace("v < best", "v > best")
    outcomes = tracing.run_candidates(
        "pytest",
        "test_shapes.py::test_largest",
        tmp_path,
        tmp_path / "shapes.py",
        [LARGEST, fixed],
        20,
        60,
    )
    assert outcomes == ["failed: pytest exit status 1", "passed"]
    assert (tmp_path / "shapes.py").read_text() == LARGEST


def test_the_sandbox_still_refuses_writes_outside_with_an_override(tmp_path: Path):
    outside = tmp_path.parent / f"{tmp_path.name}-outside.txt"
    workspace = tmp_path / "ws"
    workspace.mkdir()
    (workspace / "script.py").write_text("print('original')\n")
    sneaky = f"open({str(outside)!r}, 'w').write('escaped')\n"
    hanging = "while True:\n    pass\n"
    outcomes = tracing.run_candidates(
        "script",
        "script.py",
        workspace,
        workspace / "script.py",
        [sneaky, hanging, "x = 1\n"],
        1,
        20,
    )
    assert outcomes[0].startswith("failed: PermissionError: hintwise sandbox")
    assert outcomes[1:] == ["timeout", "passed"]  # a hanging candidate is stopped, not the search
    assert not outside.exists()
    assert (workspace / "script.py").read_text() == "print('original')\n"


def test_ground_sets_the_verified_fix_and_its_fact(tmp_path: Path):
    script = tmp_path / "shapes.py"
    script.write_text(LARGEST + "\nassert largest([3, 9, 4]) == 9\n")
    done = subprocess.run(
        [sys.executable, "shapes.py"], cwd=tmp_path, capture_output=True, text=True
    )
    question, _, _ = traceback_question(done.stderr, tmp_path, Path.read_text)
    target = tracing.target_from_traceback(done.stderr, tmp_path)
    assert target == ("script", str(script))
    facts, result = repair.ground(
        question, target, tmp_path, ExplainSettings(run=True), lambda q: []
    )
    assert result is not None and question.verified_fix is not None
    assert question.verified_fix.line == 4
    assert question.verified_fix.code in ("if v > best:", "if v >= best:", "if best < v:")
    assert facts[0].startswith("verified: with line 5 as `if ")
    assert facts[1] == "runtime: outcome failed: AssertionError: "
    assert script.read_text() == LARGEST + "\nassert largest([3, 9, 4]) == 9\n"


def test_without_a_passing_edit_the_runtime_facts_remain(tmp_path: Path):
    (tmp_path / "data.py").write_text("def load():\n    return {}['missing']\n\nassert load()\n")
    done = subprocess.run([sys.executable, "data.py"], cwd=tmp_path, capture_output=True, text=True)
    question, _, _ = traceback_question(done.stderr, tmp_path, Path.read_text)
    settings = ExplainSettings(run=True, repair_max_runs=3)
    target = ("script", str(tmp_path / "data.py"))
    facts, result = repair.ground(question, target, tmp_path, settings, lambda q: [])
    assert question.verified_fix is None and result is not None and result.tried == 3
    assert "runtime: line 2 raised KeyError: 'missing'" in facts
    assert facts[-1] == "runtime: none of 3 one-line changes tried made the run pass"


@pytest.mark.model
def test_cli_explain_run_finds_the_swapped_comparison(
    tmp_path: Path, data_dir: Path, gemma_path: Path
):
    """The end to end proof: `hintwise explain --traceback F --run` names the swapped
    comparison as the culprit and offers the right line, and the workspace is not written."""
    from conftest import hintwise_command

    (tmp_path / "shapes.py").write_text(LARGEST)
    (tmp_path / "test_shapes.py").write_text(TEST)
    (tmp_path / "failure.txt").write_text(_failing_pytest(tmp_path))
    before = {p.name: p.read_bytes() for p in tmp_path.iterdir() if p.is_file()}
    command = [*hintwise_command(), "explain", "--traceback", "failure.txt", "--run", "--json"]
    environment = {"HINTWISE_DATA_DIR": str(data_dir), "PATH": "/usr/bin:/bin"}
    done = subprocess.run(
        [*command, "--model", str(gemma_path)],
        cwd=tmp_path,
        env=environment,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, done.stderr
    answer = json.loads(done.stdout)
    assert answer["culprit_location"] == "shapes.py:5"
    assert answer["fix"] in ("if v > best:", "if v >= best:", "if best < v:", "if best <= v:")
    assert any(f.startswith("verified: with line 5 as `if ") for f in answer["facts"])
    assert {p.name: p.read_bytes() for p in tmp_path.iterdir() if p.is_file()} == before


def _failing_pytest(folder: Path) -> str:
    done = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "--tb=native", "-p", "no:cacheprovider"],
        cwd=folder,
        capture_output=True,
        text=True,
        env={"PATH": "/usr/bin:/bin", "PYTHONDONTWRITEBYTECODE": "1"},
    )
    assert done.returncode == 1
    return done.stdout


def test_a_failing_test_leads_to_the_imported_function_never_to_the_assert(tmp_path: Path):
    (tmp_path / "shapes.py").write_text(LARGEST)
    (tmp_path / "test_shapes.py").write_text(TEST)
    output = _failing_pytest(tmp_path)
    question, _, _ = traceback_question(output, tmp_path, Path.read_text)
    assert question.path == "test_shapes.py"
    target = tracing.target_from_traceback(output, tmp_path)
    assert target == ("pytest", "test_shapes.py::test_largest")
    facts, _ = repair.ground(question, target, tmp_path, ExplainSettings(run=True), lambda q: [])
    assert question.path == "shapes.py" and question.function == "largest"
    assert question.verified_fix is not None and question.verified_fix.line == 4
    assert "test_shapes.py:5 calls `largest` (shapes.py lines 1-7)" in question.facts[-1]
    assert facts[0].startswith("verified: with line 5 as `if ")
    assert (tmp_path / "test_shapes.py").read_text() == TEST  # the assert was never the "fix"


@pytest.mark.model
async def test_the_server_explains_a_traceback_with_a_verified_fix(server_env, tmp_path: Path):
    """`hintwise.explainTraceback` with `explain.run` on: the same verified fix, through the
    server (the re-runs off the event loop, the scores on the model thread)."""
    from lsp_session import session, wait_ready
    from lsprotocol import types

    (tmp_path / "shapes.py").write_text(LARGEST)
    (tmp_path / "test_shapes.py").write_text(TEST)
    output = _failing_pytest(tmp_path)
    async with session(server_env, {"explain": {"run": True}}, root=tmp_path) as client:
        await wait_ready(client, timeout=300)
        answer = await client.workspace_execute_command_async(
            types.ExecuteCommandParams(
                command="hintwise.explainTraceback", arguments=[{"text": output, "show": False}]
            )
        )
    assert answer["culprit"] == {"uri": (tmp_path / "shapes.py").as_uri(), "line": 4}
    assert answer["fix"] in ("if v > best:", "if v >= best:", "if best < v:", "if best <= v:")
    assert (tmp_path / "shapes.py").read_text() == LARGEST


def test_a_script_that_only_crashed_gets_no_verified_fix(tmp_path: Path):
    """`return sum(values)` would make `average([])` stop raising, and prove nothing: without a
    check of the results, no fix is claimed; the traced facts are given as before."""
    (tmp_path / "report.py").write_text(
        "def average(values):\n    return sum(values) / len(values)\n\n"
        "groups = {'a': [1, 2], 'b': []}\nprint({k: average(v) for k, v in groups.items()})\n"
    )
    done = subprocess.run(
        [sys.executable, "report.py"], cwd=tmp_path, capture_output=True, text=True
    )
    question, _, _ = traceback_question(done.stderr, tmp_path, Path.read_text)
    target = ("script", str(tmp_path / "report.py"))
    facts, result = repair.ground(
        question, target, tmp_path, ExplainSettings(run=True), lambda q: []
    )
    assert result is None and question.verified_fix is None
    assert "runtime: outcome failed: ZeroDivisionError: division by zero" in facts
