"""Explanations from facts: each exception kind's facts worked out from a real traceback (the
program is run by this Python), the culprit the facts decide, the checks of the model's text and
fix, and the real entry point `hintwise explain --traceback` with the bundled model."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from scripted_engine import ScriptedEngine

from hintwise.lsp_server.explain.answer import explain
from hintwise.lsp_server.explain.checks import (
    contradiction,
    explanation_problems,
    fix_problem,
    repetition,
)
from hintwise.lsp_server.explain.question import Question, traceback_question
from hintwise.lsp_server.explain.tracebacks import parse_traceback

AVERAGE = """def average(values):
    return sum(values) / len(values)


def summarize(groups):
    return {k: average(v) for k, v in groups.items()}


def main():
    groups = {"a": [1, 2, 3], "b": []}
    print(summarize(groups))


main()
"""


def traceback_of(folder: Path, source: str, name: str = "app.py") -> str:
    """Run the program with this Python and return the traceback it printed."""
    (folder / name).write_text(source)
    done = subprocess.run(
        [sys.executable, name], cwd=folder, capture_output=True, text=True, timeout=30
    )
    assert done.returncode != 0, done.stdout
    return done.stderr


def question_for(folder: Path, source: str) -> Question:
    text = traceback_of(folder, source)
    question, _, _ = traceback_question(text, folder, Path.read_text)
    return question


def test_the_caret_marks_a_sub_expression(tmp_path: Path):
    parsed = parse_traceback(traceback_of(tmp_path, AVERAGE))
    division = parsed.frames[-1]
    assert division.source == "return sum(values) / len(values)"
    assert (division.marked, division.anchor) == ("sum(values) / len(values)", "/")
    assert parsed.frames[-2].marked == "average(v)"


def test_zero_division_names_the_divisor_and_the_empty_list_at_the_call_site(tmp_path: Path):
    question = question_for(tmp_path, AVERAGE)
    assert question.analysis is not None
    facts = question.facts
    assert "the divisor `len(values)` (right of `/`) was 0" in facts
    assert "`average` got `values` from `average(v)` at app.py:6: the argument `v`" in facts
    assert any("holds an empty list `[]` under the key 'b'" in fact for fact in facts)
    culprit = question.analysis.culprit
    assert culprit is not None and culprit.line == 5  # the call site, 0-based
    assert culprit.code == "return {k: average(v) for k, v in groups.items()}"
    assert "`values` was empty" in question.analysis.summary


NONE_FROM_A_FUNCTION = """def find(users, name):
    for user in users:
        if user == name:
            return user
    return None

def greet(users):
    user = find(users, 'bob')
    return user.upper()

greet(['ann'])
"""

# One program per exception kind, and facts its analysis must state (checked against the code).
KINDS = {
    "zero-division-by-a-local": (
        "def rate(done):\n    total = done - done\n    return done / total\n\nrate(3)\n",
        [
            "the divisor `total` (right of `/`) was 0",
            "`total` is assigned at line 2: `total = done - done`",
        ],
    ),
    "key": (
        'def port(name):\n    ports = {"http": 80, "https": 443}\n    return ports[name]\n\n'
        'port("htps")\n',
        [
            "the key 'htps' is not in `ports`",
            "`ports` has the keys 'http', 'https'",
            "the closest existing key is 'https'",
        ],
    ),
    "index-past-the-end": (
        "def last(items):\n    return items[len(items)]\n\nlast([1, 2])\n",
        [
            "the index `len(items)` was out of range for `items`",
            "`len(items)` is one past the last index",
        ],
    ),
    "index-in-a-loop": (
        "items = [1, 2, 3]\nfor i in range(len(items) + 1):\n    print(items[i])\n",
        [
            "`items` has 3 items: valid indexes are 0 to 2",
            "`i` runs over `range(len(items) + 1)` (line 2)",
        ],
    ),
    "none-attribute": (
        NONE_FROM_A_FUNCTION,
        [
            "`user` was None when line 9 read `.upper`",
            "`user` is assigned at line 8: `user = find(users, 'bob')`",
            "`find` returns None at line 5 (`return None`)",
        ],
    ),
    "none-from-an-in-place-method": (
        "xs = [3, 1].sort()\nxs.reverse()\n",
        ["`.sort()` changes its object in place and returns None"],
    ),
    "arguments": (
        "def area(width, height):\n    return width * height\n\narea(3)\n",
        [
            "`def area(width, height)` is at app.py:1",
            "the call `area(3)` passes 1 positional argument",
        ],
    ),
    "unbound-local": (
        "count = 0\n\ndef bump():\n    count += 1\n    return count\n\nbump()\n",
        [
            "`count` is local to `bump` because line 4 assigns it (`count += 1`)",
            "a module-level `count` is assigned at line 1; `bump` has no `global count`",
        ],
    ),
    "recursion": (
        "def countdown(n):\n    return countdown(n)\n\ncountdown(3)\n",
        [
            "the call `countdown(n)` passes its parameters unchanged",
            "`countdown` has no `if` before the call (no base case)",
        ],
    ),
    "assertion": (
        "def double(x):\n    return x + x + 1\n\ndef test():\n    assert double(2) == 4\n\n"
        "test()\n",
        ["the assertion compares `double(2)` with `4` using `==`"],
    ),
    "undefined-name": (
        "def total(prices):\n    return sum(price)\n\ntotal([1])\n",
        [
            "no `price` is assigned, defined or imported in app.py",
            "names in the file that look alike: `prices`",
        ],
    ),
    "operand-types": (
        "def label(n):\n    return 'item ' + n\n\nlabel(3)\n",
        ["`'item '` (left of `+`) was str; `n` (right) was int"],
    ),
    "operand-types-minus": (
        "def previous(n):\n    return n - 1\n\nprevious('3')\n",
        ["`n` (left of `-`) was str; `1` (right) was int"],
    ),
}


@pytest.mark.parametrize("kind", KINDS)
def test_facts_per_exception_kind(tmp_path: Path, kind: str):
    source, expected = KINDS[kind]
    question = question_for(tmp_path, source)
    missing = [fact for fact in expected if fact not in question.facts]
    assert not missing, question.facts
    assert question.analysis is not None and question.analysis.summary
    assert question.analysis.culprit is None  # no bad literal passed in: the raising line


def test_a_zero_set_in_the_function_is_the_culprit_and_precedence_is_explained(tmp_path: Path):
    source = (
        "def largest_factor(n):\n"
        "    for i in range(n):\n"
        "        if n % i == 0:\n"
        "            return i\n\n"
        "largest_factor(10)\n"
    )
    question = question_for(tmp_path, source)
    assert "`range(n)` starts at 0" in question.facts
    assert question.analysis is not None and question.analysis.culprit is not None
    assert question.analysis.culprit.line == 1  # the `for` line, 0-based
    median = "def median(l):\n    return l[len(l) - 1 // 2]\n\nmedian([1, 2, 3])\n"
    question = question_for(tmp_path, median)
    assert "`1 // 2` is 0, so `len(l) - 1 // 2` is `len(l)`, one past the end" in question.facts


def test_the_assertion_in_a_test_lets_the_model_pick_inside_the_function_under_test(
    tmp_path: Path,
):
    question = question_for(tmp_path, KINDS["assertion"][0])
    assert question.model_picks_culprit and question.function == "double"
    recursion = question_for(tmp_path, KINDS["recursion"][0])
    assert any(f.startswith("`countdown` calls itself at app.py:2 (") for f in recursion.facts)


def test_checks_find_contradictions_repetition_and_rename_only_fixes():
    assert contradiction("The model did not expect `main` there (it expected `main`).")
    assert contradiction("`x` is unexpected; it expected `y`.") is None
    assert contradiction("`len(values)` is not zero here.", [("len(values)", "0")])
    assert contradiction("`len(values)` is zero.", [("len(values)", "0")]) is None
    assert repetition("The list is empty. The list is empty.")
    assert repetition("It divides by zero zero zero zero.")
    assert repetition("The assertion found `f([1,1,1,1,0])` == `1` false.") is None
    assert explanation_problems("Division.", "ZeroDivisionError: division by zero")
    restating = "A ZeroDivisionError occurred because of a division by zero."
    assert explanation_problems(restating, "ZeroDivisionError: division by zero") == [
        "only restates the error message"
    ]
    assert fix_problem("def average(values):", "def main(values):")
    assert fix_problem("return a / b", "return  a / b")
    assert fix_problem("return a / b", "return a / b if b else 0") is None
    assert fix_problem("if a < b:", "if a <= b:") is None
    assert fix_problem("count = 0", "#count = 0") == "the fix is a comment"


def test_a_contradictory_model_answer_gives_the_facts_based_text(tmp_path: Path):
    """The answer that started issue 13, replayed: neither the contradiction nor the rename
    reaches the user, and the `def` line is not the culprit."""
    question = question_for(tmp_path, AVERAGE)
    answer = json.dumps(
        {
            "explanation": "The model did not expect `main` there (it expected `main`).",
            "culprit_line": 1,
            "fix": "def main(values):",
        }
    )
    result = explain(ScriptedEngine(generations=[answer]), question, lambda: False)
    assert result is not None
    assert result.explained_by == "facts"
    assert result.explanation == question.analysis.summary  # type: ignore[union-attr]
    assert "_Explanation built from the facts below" in result.markdown
    assert result.culprit is not None and result.culprit["line"] == 5
    assert result.fix is None
    assert not any(contradiction(fact) for fact in result.facts)


def test_a_sound_model_answer_is_kept_and_said_to_be_the_models(tmp_path: Path):
    question = question_for(tmp_path, AVERAGE)
    text = "The group 'b' is an empty list, so len(values) is 0 and average divides by it."
    fix = "return {k: average(v) for k, v in groups.items() if v}"
    result = explain(
        ScriptedEngine(generations=[json.dumps({"explanation": text, "fix": fix})]),
        question,
        lambda: False,
    )
    assert result is not None and result.explained_by == "model"
    assert result.explanation == text and result.fix == fix
    assert "_Explanation written by the model from the facts below._" in result.markdown


@pytest.mark.model
def test_cli_explains_the_zero_division_from_facts(tmp_path: Path, data_dir: Path, gemma_path):
    from conftest import run_hintwise

    (tmp_path / "tb.txt").write_text(traceback_of(tmp_path, AVERAGE))
    run = run_hintwise(["explain", "--traceback", "tb.txt", "--json"], tmp_path, data_dir)
    assert run.returncode == 0, run.stderr
    answer = json.loads(run.stdout)
    assert answer["culprit"]["line"] in (1, 5)  # the division or the call site, never the def
    assert "the divisor `len(values)` (right of `/`) was 0" in answer["facts"]
    assert any("empty list `[]`" in fact for fact in answer["facts"])
    message = "ZeroDivisionError: division by zero"
    assert not explanation_problems(answer["explanation"], message)
    assert not any(contradiction(fact) for fact in answer["facts"])
    lines = AVERAGE.split("\n")
    assert fix_problem(lines[answer["culprit"]["line"]], answer["fix"]) is None
    assert answer["explained_by"] in ("model", "facts")
    assert answer["markdown"].startswith(f"**{message}**")


@pytest.mark.model
def test_a_cut_off_model_answer_gives_the_facts_based_text(tmp_path: Path, data_dir: Path):
    """The real model given 4 tokens cannot finish its JSON: the user reads the facts-based
    explanation, and the markdown says so."""
    from hintwise.lsp_server.config import Settings
    from hintwise.lsp_server.engines.choice import load_engine

    question = question_for(tmp_path, AVERAGE)
    engine = load_engine(Settings(data_dir=str(data_dir)))
    try:
        result = explain(engine, question, lambda: False, max_tokens=4)
    finally:
        engine.close()
    assert result is not None and result.explained_by == "facts"
    assert result.explanation == question.analysis.summary  # type: ignore[union-attr]
    assert "_Explanation built from the facts below" in result.markdown


def test_a_rename_only_fix_is_never_offered(tmp_path: Path):
    question = question_for(tmp_path, KINDS["key"][0])
    text = "The name 'htps' is a typo of 'https', so the dictionary lookup on line 3 fails."
    answer = json.dumps({"explanation": text, "fix": "return port[name]"})
    result = explain(ScriptedEngine(generations=[answer]), question, lambda: False)
    assert result is not None and result.culprit is not None
    assert result.culprit["line"] == 2  # the raising line (0-based)
    assert result.fix is None and "the fix only renames an identifier" in result.problems
    assert result.explained_by == "model"


# No dict literal to read the keys from: only a sandboxed run knows them.
PORTS = (
    "def port(name):\n"
    "    ports = dict(zip(['http', 'https'], [80, 443]))\n"
    "    return ports[name]\n\n"
    "port('htps')\n"
)


def test_recorded_values_give_the_keys_a_dict_really_had(tmp_path: Path):
    """No dict literal to read: the keys come from the sandboxed run's record."""
    from hintwise.lsp_server.explain import tracing
    from hintwise.lsp_server.explain.question import add_runtime_values

    question = question_for(tmp_path, PORTS)
    assert not any(fact.startswith("`ports` has the keys") for fact in question.facts)
    run = tracing.run_traced(
        "script", str(tmp_path / "app.py"), tmp_path, tmp_path / "app.py", question.function
    )
    add_runtime_values(question, run.events)
    assert "`ports` has the keys 'http', 'https'" in question.facts
    assert "the closest existing key is 'https'" in question.facts
    assert question.facts.count("the key 'htps' is not in `ports`") == 1


def test_the_run_of_explain_run_adds_the_recorded_values(tmp_path: Path):
    """`explain.run` (repair.ground, what the CLI and the server call) re-analyses with the
    values its sandboxed run recorded, not only the tests above."""
    from hintwise.lsp_server.config import ExplainSettings
    from hintwise.lsp_server.explain import repair

    question = question_for(tmp_path, PORTS)
    target = ("script", str(tmp_path / "app.py"))
    repair.ground(question, target, tmp_path, ExplainSettings(run=True), lambda q: [])
    assert "`ports` has the keys 'http', 'https'" in question.facts


def test_the_model_picks_among_code_lines_only_never_the_def_or_docstring(tmp_path: Path):
    source = (
        "def double(x):\n"
        '    """Twice x.\n\n    Not a place for a bug.\n    """\n'
        "    # add it to itself\n"
        "    return x + x + 1\n\n"
        "def test():\n    assert double(2) == 4\n\ntest()\n"
    )
    question = question_for(tmp_path, source)
    engine = ScriptedEngine(generations=[json.dumps({"explanation": "x", "culprit_line": 7})])
    result = explain(engine, question, lambda: False)
    schema = engine.generation_requests[0].json_schema
    assert schema["properties"]["culprit_line"]["enum"] == [7]
    assert result is not None and result.culprit is not None and result.culprit["line"] == 6


def test_a_verified_fix_is_shown_as_verified(tmp_path: Path):
    """A fix the failing run passes with says so, and the markdown does not claim the culprit
    came from the model's surprises."""
    from hintwise.lsp_server.explain.question import VerifiedFix

    source = "def double(x):\n    return x + x + 1\n\nassert double(2) == 4\n"
    question = question_for(tmp_path, source)
    question.verified_fix = VerifiedFix(1, "    return x + x", "the script asserts and passes")
    engine = ScriptedEngine(generations=[json.dumps({"explanation": "x", "culprit_line": 2})])
    result = explain(engine, question, lambda: False)
    assert result is not None and result.fix == "    return x + x"
    assert "**Verified fix** (the failing run passes with it):" in result.markdown
    assert "**Suggested fix:**" not in result.markdown
    assert "whose code the model found least expected" not in result.markdown
