"""Review and explanation logic: units, parsing the model's answer, filters, ranges, fixes,
tracebacks, SARIF; bad input gives a clear error."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from hintwise.lsp_server.cli import main
from hintwise.lsp_server.cli.review import sarif
from hintwise.lsp_server.code.surprise import candidates
from hintwise.lsp_server.code.syntax import CodeError
from hintwise.lsp_server.code.units import changed_units, find_units
from hintwise.lsp_server.explain.answer import parse_answer
from hintwise.lsp_server.explain.question import question_at, traceback_question
from hintwise.lsp_server.explain.tracebacks import TracebackError, parse_traceback
from hintwise.lsp_server.review.comments import (
    Comment,
    apply_replacement,
    cap_file,
    filter_comments,
    map_range,
    parse_comments,
)
from hintwise.lsp_server.review.question import comment_schema

CODE = """import os


class Empty:
    x = 1


class Box:
    def get(self):
        return self.value

    def put(self, value):
        self.value = value


def mean(values):
    return sum(values) / (len(values) - 1)
"""


def test_units_are_functions_and_classes_without_methods():
    units = find_units(CODE, "python")
    assert [u.key for u in units] == [
        "class Empty",
        "function get",
        "function put",
        "function mean",
    ]
    mean = units[-1]
    assert (mean.start_line, mean.end_line) == (15, 16)
    assert mean.text.startswith("def mean")


def test_only_changed_units_are_reviewed_again():
    units = find_units(CODE, "python")
    reviewed = {u.key: u.digest for u in units}
    edited = CODE.replace("len(values) - 1", "len(values)")
    changed = changed_units(find_units(edited, "python"), reviewed)
    assert [u.key for u in changed] == ["function mean"]


def test_bad_files_give_clear_errors():
    with pytest.raises(CodeError, match="no tree-sitter grammar"):
        find_units("hello", "plaintext")
    with pytest.raises(CodeError, match="too large"):
        find_units("x = 1\n" * 400_000, "python")
    # Unparseable code still has its units (tree-sitter recovers).
    assert [u.key for u in find_units("def f(:\n    return )\n\ndef g():\n    pass\n", "python")]


def test_model_output_that_is_not_json_or_points_elsewhere_is_dropped():
    unit = find_units(CODE, "python")[-1]
    assert parse_comments("{not json", unit) == ([], {"not valid JSON": 1})
    assert parse_comments("[]", unit)[1] == {"no comments list": 1}
    raw = json.dumps(
        {
            "comments": [
                {"line": 17, "severity": "error", "message": "off by one: divides by n - 1"},
                {"line": 3, "severity": "error", "message": "outside"},
                {"line": 17, "severity": "bogus", "message": "x"},
                {"line": True, "severity": "error", "message": "bool line"},
            ]
        }
    )
    comments, dropped = parse_comments(raw, unit)
    assert [(c.line, c.message) for c in comments] == [(16, "off by one: divides by n - 1")]
    assert dropped == {"outside the unit": 1, "no message": 1, "no line": 1}


def test_filters_repeats_flagged_lines_echoes_and_caps():
    lines = CODE.split("\n")
    make = lambda line, message, severity="warning": Comment(line, severity, message)  # noqa: E731
    comments = [
        make(16, "divides by n - 1", "error"),
        make(16, "divides by n - 1"),
        make(15, "17 | def mean(values):"),
        make(15, "The code is correct."),
        make(9, "flagged by pyright already"),
        make(16, "another", "info"),
    ]
    kept, dropped = filter_comments(comments, lines, {9}, max_per_unit=1)
    assert [c.message for c in kept] == ["divides by n - 1"]
    assert dropped == {
        "repeated": 1,
        "echoes the code": 1,
        "says there is no problem": 1,
        "line already has a diagnostic": 1,
        "over the per-function cap": 1,
    }
    many = [make(i, f"m{i}") for i in range(20)]
    assert len(cap_file(many, 10)) == 10


def test_schema_only_allows_the_units_lines():
    unit = find_units(CODE, "python")[-1]
    schema = comment_schema(unit, 2)
    item = schema["properties"]["comments"]["items"]["properties"]
    assert item["line"]["enum"] == [16, 17]
    assert schema["properties"]["comments"]["maxItems"] == 2


def test_range_is_the_statement_and_fixes_must_parse():
    comment = Comment(16, "error", "off by one", replacement="return sum(values) / len(values)")
    map_range(CODE, "python", comment)
    assert (comment.start_character, comment.end_character) == (4, 42)
    fixed = apply_replacement(CODE, "python", comment)
    assert "    return sum(values) / len(values)\n" in fixed
    comment.replacement = "return sum(values / ("
    assert apply_replacement(CODE, "python", comment) is None


PY_TRACEBACK = """Traceback (most recent call last):
  File "/srv/app/stats.py", line 18, in <module>
    main()
  File "/srv/app/stats.py", line 17, in mean
    return sum(values) / (len(values) - 1)
ZeroDivisionError: division by zero
"""


def test_python_traceback_frames_map_to_the_workspace(tmp_path: Path):
    (tmp_path / "stats.py").write_text(CODE)
    parsed = parse_traceback(PY_TRACEBACK)
    assert [(f.path, f.line, f.function) for f in parsed.frames][-1] == (
        "/srv/app/stats.py",
        17,
        "mean",
    )
    assert parsed.error == "ZeroDivisionError: division by zero"
    question, _, notes = traceback_question(PY_TRACEBACK, tmp_path, Path.read_text)
    assert notes == []
    assert question.line == 16 and question.path == "stats.py"
    assert question.code.startswith("def mean")
    assert "in function `mean` (lines 16-17)" in question.facts


def test_node_stack_is_parsed_too():
    stack = "TypeError: x is undefined\n    at f (/w/a.js:3:7)\n    at /w/b.js:10:2\n"
    parsed = parse_traceback(stack)
    assert parsed.language == "javascript"
    assert [(f.path, f.line) for f in parsed.frames] == [("/w/b.js", 10), ("/w/a.js", 3)]


def test_traceback_that_matches_no_file_is_a_clear_error(tmp_path: Path):
    with pytest.raises(TracebackError, match="no frame of the traceback is a file in"):
        traceback_question(PY_TRACEBACK, tmp_path, Path.read_text)
    with pytest.raises(TracebackError, match="no stack frame"):
        traceback_question("just words", tmp_path, Path.read_text)


def test_explanation_answer_that_is_not_json_falls_back_to_the_failing_line():
    question = question_at(CODE, "python", 16, "ZeroDivisionError", "file:///x.py", "x.py")
    assert parse_answer("oops", question)[1:] == (
        16,
        None,
        "the model's answer was not valid JSON",
    )
    good = json.dumps(
        {"explanation": "n - 1 is zero for one value", "culprit_line": 17, "fix": "x"}
    )
    assert parse_answer(good, question)[:2] == ("n - 1 is zero for one value", 16)


def test_sarif_has_the_2_1_0_shape():
    row = {
        "file": "a.py",
        "line": 3,
        "column": 5,
        "end_column": 9,
        "severity": "info",
        "message": "m",
        "replacement": "y = 1",
        "function": "function f",
    }
    document = sarif([row], "gemma3-270m", "0.1")
    assert document["version"] == "2.1.0"
    result = document["runs"][0]["results"][0]
    assert result["level"] == "note"
    assert result["locations"][0]["physicalLocation"]["region"]["startLine"] == 3
    assert (
        result["fixes"][0]["artifactChanges"][0]["replacements"][0]["insertedContent"]["text"]
        == "y = 1\n"
    )


def test_cli_bad_input(tmp_path: Path):
    runner = CliRunner()
    missing = runner.invoke(main, ["explain", "--traceback", str(tmp_path / "nope.txt")])
    assert missing.exit_code == 1 and "cannot read" in missing.output
    no_message = runner.invoke(main, ["explain", f"{tmp_path / 'a.py'}:1"])
    assert no_message.exit_code == 2 and "--message" in no_message.output
    (tmp_path / "tb.txt").write_text(PY_TRACEBACK)
    nowhere = runner.invoke(
        main, ["explain", "--traceback", str(tmp_path / "tb.txt"), "--root", str(tmp_path)]
    )
    assert nowhere.exit_code == 1 and "no frame of the traceback" in nowhere.output
    (tmp_path / "notes.txt").write_text("hello")
    skipped = runner.invoke(
        main, ["review", str(tmp_path / "notes.txt"), str(tmp_path / "gone.py")]
    )
    assert skipped.exit_code == 2
    assert "skipping" in skipped.output and "cannot read" in skipped.output


@pytest.mark.model
def test_cli_review_sarif_with_the_real_model(tmp_path: Path, data_dir: Path, gemma_path: Path):
    from conftest import hintwise_command

    (tmp_path / "stats.py").write_text(CODE)
    run = subprocess.run(
        [
            *hintwise_command(),
            "review",
            "stats.py",
            "--format",
            "sarif",
            "--model",
            str(gemma_path),
            "--fail-on",
            "never",
        ],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=600,
        env={"HINTWISE_DATA_DIR": str(data_dir), "PATH": "/usr/bin:/bin"},
    )
    assert run.returncode == 0, run.stderr
    document = json.loads(run.stdout)
    assert document["version"] == "2.1.0"
    for result in document["runs"][0]["results"]:
        line = result["locations"][0]["physicalLocation"]["region"]["startLine"]
        assert CODE.split("\n")[line - 1].strip()
    assert sys.executable


@pytest.mark.model
def test_cli_explain_with_a_traced_run(tmp_path: Path, data_dir: Path, gemma_path: Path):
    from conftest import hintwise_command

    (tmp_path / "stats.py").write_text(CODE + "\nprint(mean([4]))\n")
    run = subprocess.run(
        [
            *hintwise_command(),
            "explain",
            "stats.py:17",
            "--message",
            "ZeroDivisionError: division by zero",
            "--run",
            "stats.py",
            "--no-repair",
            "--json",
            "--model",
            str(gemma_path),
        ],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=600,
        env={"HINTWISE_DATA_DIR": str(data_dir), "PATH": "/usr/bin:/bin"},
    )
    assert run.returncode == 0, run.stderr
    answer = json.loads(run.stdout)
    assert answer["culprit"]["line"] in (15, 16)  # inside mean, 0-based
    assert answer["culprit_location"] in ("stats.py:16", "stats.py:17")
    assert "runtime: before line 17: values = [4]" in answer["runtime_facts"]
    assert "runtime: outcome failed: ZeroDivisionError: division by zero" in answer["facts"]
    assert answer["markdown"].startswith("**ZeroDivisionError: division by zero**")


def test_review_candidates_are_operators_constants_or_a_missing_negation():
    """What the model would have written differently counts only where a seeded bug could be:
    an operator, constant or keyword token, or a missing `not`; never a piece of a name, nor a
    name the model would replace by a constant or another statement (examples/primes.py had
    three such false comments from the bundled model)."""
    from hintwise.models.engine import TokenScore

    text = (
        "def f(n, limit):\n"
        "    if n % 2 == 0:\n"
        "        return n == 2\n"
        "    ok = is_prime(n)\n"
        "    if ready:\n"
        "        return x !='a'\n"
    )
    [unit] = find_units(text, "python")

    def at(fragment: str, written: str, expected: str) -> TokenScore:
        offset = text.index(fragment) + fragment.index(written)
        return TokenScore(offset, written, -9.0, expected, -0.1)

    scores = [
        at("n % 2 == 0", "==", "!="),  # operator: kept
        at("return n == 2", "n", "False"),  # a name the model would make a constant
        at("ok = is_prime", "is", "n"),  # `is` of `is_prime`
        at("if ready", "ready", "not"),  # a missing negation: kept
        at("x !='a'", "!='", "=="),  # operator glued to a quote: kept
    ]
    found = {c.written: c.line for c in candidates(unit, scores, limit=10)}
    assert found == {"==": 1, "ready": 4, "!='": 5}
    # a score past the unit's end (the model's end-of-text) is no candidate and no crash
    beyond = TokenScore(len(unit.text) + 3, "<", -9.0, ">", -0.1)
    assert candidates(unit, [beyond], limit=10) == []
