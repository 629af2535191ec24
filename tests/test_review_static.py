"""The review's static checks (lsp_server/review/static.py, intended.py, learning.py) with the
real ruff binary and real tree-sitter: every selected rule fires on a real defect, the fixes are
ruff's own and remove the finding, the precision filters drop the idioms they were chosen for,
and a clean modern file gets nothing."""

from __future__ import annotations

import json
import stat
import subprocess
from pathlib import Path

import pytest
from conftest import hintwise_command

from hintwise.lsp_server.review import static
from hintwise.lsp_server.review.comments import Comment, apply_replacement
from hintwise.lsp_server.review.learning import Learned, label
from hintwise.lsp_server.review.state import FileReviews

# A real defect of each selected rule.
SNIPPETS = {
    "F821": "def f():\n    return undefined_name\n",
    "F822": "__all__ = ['missing']\n",
    "F823": "x = 1\n\n\ndef f():\n    print(x)\n    x = 2\n    return x\n",
    "F632": "def f(x):\n    return x is 'a'\n",
    "F631": "def f(x):\n    assert (x, 'message')\n",
    "F633": "import sys\n\n\ndef f():\n    print >> sys.stderr, 'x'\n",
    "F701": "def f():\n    break\n",
    "F702": "def f():\n    continue\n",
    "F704": "yield 1\n",
    "F706": "return 1\n",
    "F707": "def f():\n    try:\n        pass\n    except:\n        pass\n"
    "    except ValueError:\n        pass\n",
    "F501": "def f(a):\n    return '%(a' % {'a': a}\n",
    "F502": "def f(a):\n    return '%(a)s' % (a,)\n",
    "F503": "def f(a):\n    return '%s %s' % {'a': a}\n",
    "F504": "def f(a):\n    return '%(a)s' % {'a': a, 'b': 1}\n",
    "F505": "def f(a):\n    return '%(a)s %(b)s' % {'a': a}\n",
    "F506": "def f(a):\n    return '%(a)s %s' % {'a': a}\n",
    "F507": "def f(a):\n    return '%s %s' % (a,)\n",
    "F508": "def f(a):\n    return '%(a)*d' % {'a': a}\n",
    "F509": "def f(a):\n    return '%y' % (a,)\n",
    "F521": "def f(a):\n    return '{'.format(a)\n",
    "F522": "def f(a):\n    return '{a}'.format(a=a, b=1)\n",
    "F523": "def f(a):\n    return '{0}'.format(a, 1)\n",
    "F524": "def f(a):\n    return '{0} {1}'.format(a)\n",
    "F525": "def f(a):\n    return '{} {0}'.format(a, a)\n",
    "F601": "def f():\n    return {'a': 1, 'a': 2}\n",
    "F602": "def f(k):\n    return {k: 1, k: 2}\n",
    "F622": "def f(x):\n    *a, *b = x\n",
    "F811": "def g():\n    return 1\n\n\ndef g():\n    return 2\n",
    "F841": "def f():\n    x = compute()\n    return 1\n",
    "E711": "def f(x):\n    return x == None\n",
    "B006": "def f(item, items=[]):\n    items.append(item)\n    return items\n",
    "B015": "def f(x):\n    x == 1\n    return x\n",
    "B016": "def f():\n    raise 'error'\n",
    "B025": "def f():\n    try:\n        pass\n    except ValueError:\n        pass\n"
    "    except ValueError:\n        pass\n",
    "B029": "def f():\n    try:\n        pass\n    except ():\n        pass\n",
    "B030": "def f():\n    try:\n        pass\n    except 1:\n        pass\n",
    "B032": "def f(d):\n    d['a']: 1\n",
    "B033": "def f():\n    return {1, 1}\n",
    "B035": "def f(xs):\n    return {'k': x for x in xs}\n",
    "PLW0127": "def f(x):\n    x = x\n    return x\n",
    "PLW0133": "def f(x):\n    if x:\n        ValueError('bad')\n",
    "PLE1142": "def f(x):\n    await x\n",
    "PLE1205": "import logging\n\n\ndef f(a):\n    logging.error('%s', a, a)\n",
    "PLE1206": "import logging\n\n\ndef f(a):\n    logging.error('%s %s', a)\n",
    "PLE1300": "def f(a):\n    return '%y' % a\n",
    "PLE1307": "def f():\n    return '%d' % 'x'\n",
    "PLE1310": "def f():\n    return 'text'.strip('aab')\n",
    "PLW1501": "def f():\n    return open('x', 'rz')\n",
    "unreachable": "def f(x):\n    return x\n    print(x)\n",
}
ALL_RULES = [*static.RULES, *static.OWN_RULES]


# Rules whose defect above ruff fixes by changing the flagged line (the examples first).
FIXED = ("E711", "F841", "B006", "F632", "PLW0133", "F504", "F522", "F523", "B033")

CLEAN = """\
from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from collections.abc import Iterator

TimeoutError = TimeoutError  # re-exported on purpose


@dataclass
class Box:
    items: list[int] = field(default_factory=list)
    label: str | None = None


def parse(text: str, cache: dict[str, int] = {}) -> int | None:
    if (found := cache.get(text)) is not None:
        return found
    cache[text] = len(text)
    return cache[text]


def configure(widget: object, cnf: dict = {}, **kw: object) -> dict:
    return {**cnf, **kw}


def walk(values: list[int]) -> Iterator[str]:
    for value in values:
        match value:
            case 0:
                yield "zero"
            case int(n) if n < 0:
                yield f"negative {n!r}"
            case _:
                yield f"{value:>4}"


def safe(path: str) -> str | None:
    try:
        return open(path).read()
    except OSError as error:
        return None
    finally:
        pass


def nothing() -> Iterator[str]:
    return
    yield


def first(values: list[int]) -> int:
    for value in values:
        if value:
            return value
        continue
    raise ValueError("empty")


def pattern() -> re.Pattern[str]:
    return re.compile(r"\\d+")
"""


@pytest.mark.parametrize("rule", ALL_RULES)
def test_every_selected_rule_reports_its_defect(rule: str):
    result = static.check(SNIPPETS[rule], "python", "defect.py")
    assert result.problem is None
    assert rule in {finding.code for finding in result.findings}


@pytest.mark.parametrize("rule", FIXED)
def test_ruffs_fix_is_offered_and_removes_the_finding(rule: str):
    text = SNIPPETS[rule]
    findings = [f for f in static.check(text, "python").findings if f.code == rule]
    comments, _ = static.comments_for(text, "python", findings, set())
    assert comments[0].kind == f"ruff:{rule}" and comments[0].replacement, comments[0]
    fixed = apply_replacement(text, "python", comments[0])
    assert fixed is not None
    assert rule not in {f.code for f in static.check(fixed, "python").findings}


def test_comment_message_severity_and_range():
    text = SNIPPETS["F821"]
    comments, _ = static.comments_for(text, "python", static.check(text, "python").findings, set())
    [comment] = comments
    assert comment.message == "Undefined name `undefined_name` [F821]"
    assert comment.severity == "error" and comment.replacement is None
    line = text.split("\n")[comment.line]
    assert line[comment.start_character : comment.end_character] == "undefined_name"


def test_a_clean_modern_file_gets_nothing():
    result = static.check(CLEAN, "python", "clean.py")
    assert result.problem is None
    assert result.findings == []


def test_other_languages_are_not_checked():
    assert static.check("var x = y == null;", "javascript").findings == []


def test_no_comment_on_a_line_another_server_flagged():
    text = "def f(x):\n    if x == None:\n        return undefined\n"
    findings = static.check(text, "python").findings
    comments, dropped = static.comments_for(text, "python", findings, {1})
    assert [c.kind for c in comments] == ["ruff:F821"]
    assert dropped == {"line already has a diagnostic": 1}


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("def f(a, cnf={}):\n    return dict(cnf, a=a)\n", "mutable default only read"),
        ("def f(a, _cache={}):\n    _cache[a] = 1\n", "memo default"),
        ("def f(n=[0]):\n    n[0] += 1\n    return n[0]\n", "one-item cell default"),
        (
            "def f(a, m={}):\n    m = dict(m)\n    m[a] = 1\n    return m\n",
            "mutable default only read",
        ),
        (
            "def f(a, m: dict[str, int] = {}):\n"
            "    if a in m:\n        return m[a]\n    return 0\n",
            "mutable default only read",
        ),
        ("globals().update(x=1)\n\n\ndef f():\n    return x\n", "names defined at run time"),
        ("def f():\n    return a + b + c\n", "names defined at run time"),
        ("TimeoutError = TimeoutError\n", "re-export by self-assignment"),
        (
            "def f():\n    try:\n        pass\n    except OSError as e:\n        pass\n",
            "unused exception name",
        ),
        ("def f(g):\n    dummy = g()\n", "named as unused"),
    ],
)
def test_idioms_are_not_reported(text: str, reason: str):
    result = static.check(text, "python")
    assert result.findings == []
    assert reason in result.dropped


def test_a_mutated_default_with_a_commaed_annotation_is_reported():
    text = "def f(a, m: dict[str, int] = {}):\n    m[a] = 1\n    return m\n"
    assert [f.code for f in static.check(text, "python").findings] == ["B006"]


def test_a_missing_or_broken_analyser_is_a_problem_not_an_error(tmp_path: Path, monkeypatch):
    missing = static.run_ruff("x = 1\n", binary=str(tmp_path / "no-ruff"))
    assert missing.problem and missing.findings == []
    broken = tmp_path / "ruff"
    broken.write_text("#!/bin/sh\necho garbage\nexit 2\n")
    broken.chmod(broken.stat().st_mode | stat.S_IEXEC)
    assert static.run_ruff("x = 1\n", binary=str(broken)).problem
    slow = tmp_path / "slow"
    slow.write_text("#!/bin/sh\nsleep 5\n")
    slow.chmod(slow.stat().st_mode | stat.S_IEXEC)
    monkeypatch.setattr(static, "TIMEOUT_S", 0.3)
    assert "more than" in (static.run_ruff("x = 1\n", binary=str(slow)).problem or "")
    monkeypatch.setattr(static, "find_ruff", lambda: None)
    assert "not installed" in (static.check("x = 1\n", "python").problem or "")


def test_kind_of_code_and_the_dismissal_rule():
    text = "def f(x):\n    y = g(x)\n    if x == None:\n        return 1\n"
    comments, _ = static.comments_for(text, "python", static.check(text, "python").findings, set())
    label(text, "python", comments)
    assert {(c.kind, c.code_kind) for c in comments} == {
        ("ruff:F841", "assignment"),
        ("ruff:F821", "assignment"),
        ("ruff:E711", "if_statement"),
    }
    learned = Learned()
    unused = next(c for c in comments if c.kind == "ruff:F841")
    learned.note(unused, "dismissed")
    assert not learned.hidden(unused)  # once can be "not now"
    learned.note(unused, "dismissed")
    assert learned.hidden(unused)
    kept, hidden = learned.keep(comments)
    assert hidden == 1 and unused not in kept and len(kept) == 2
    learned.note(unused, "applied")  # a fix applied once: dismissals must outweigh it
    assert not learned.hidden(unused)
    for _ in range(2):
        learned.note(unused, "dismissed")
    assert learned.hidden(unused)  # 4 dismissals > 3 x 1 apply
    other_code = Comment(
        line=0, severity="warning", message="m", kind="ruff:F841", code_kind="for_statement"
    )
    assert not learned.hidden(other_code)


def test_static_comments_keep_their_id_and_a_dismissed_one_stays_away():
    text = SNIPPETS["E711"] + SNIPPETS["F841"].replace("def f", "def h")
    reviews = FileReviews()

    def run() -> list[Comment]:
        found = static.check(text, "python").findings
        return reviews.store_static([], static.comments_for(text, "python", found, set())[0])

    first = run()
    assert {c.kind for c in first} == {"ruff:E711", "ruff:F841", "ruff:F821"}
    assert run() == []  # nothing new: same ids, not recorded as shown again
    ids = {c.id for c in reviews.current([], 10)}
    assert ids == {c.id for c in first}
    dismissed = next(c for c in first if c.kind == "ruff:E711")
    reviews.remove(dismissed.id)
    run()
    assert "ruff:E711" not in {c.kind for c in reviews.current([], 10)}


@pytest.mark.model
def test_hintwise_review_reports_each_rule_with_its_fix_and_nothing_on_clean_code(
    server_env: dict[str, str], gemma_path: Path, tmp_path: Path
):
    for rule, text in SNIPPETS.items():
        (tmp_path / f"defect_{rule}.py").write_text(text)
    (tmp_path / "clean.py").write_text(CLEAN)
    env = {**server_env, "HINTWISE_MODEL": str(gemma_path), "HINTWISE_DATA_DIR": str(tmp_path)}
    done = subprocess.run(
        [*hintwise_command(), "review", "--format", "json", *sorted(tmp_path.glob("*.py"))],
        capture_output=True,
        text=True,
        env=env,
        timeout=600,
    )
    assert done.returncode in (0, 1), done.stderr
    rows = json.loads(done.stdout)["comments"]
    static_rows = [row for row in rows if row["rule"] != "hintwise.review"]
    for rule in ALL_RULES:
        mine = [row for row in static_rows if Path(row["file"]).name == f"defect_{rule}.py"]
        kinds = {row["rule"].split(":")[1] for row in mine}
        assert rule in kinds, (rule, mine, done.stderr[-500:])
        if rule in FIXED:
            assert any(row["replacement"] for row in mine if row["rule"] == f"ruff:{rule}"), rule
    assert [row for row in static_rows if row["file"].endswith("clean.py")] == []


def test_sarif_names_the_rule_of_a_static_comment():
    from hintwise.lsp_server.cli.review import sarif

    row = {
        "file": "a.py",
        "line": 2,
        "column": 5,
        "end_column": 6,
        "severity": "warning",
        "message": "Local variable `x` is assigned to but never used [F841]",
        "replacement": "    compute()",
        "function": "function f",
        "rule": "ruff:F841",
    }
    run = sarif([row], "gemma3-270m", "0.1")["runs"][0]
    assert run["results"][0]["ruleId"] == "ruff:F841"
    assert {rule["id"] for rule in run["tool"]["driver"]["rules"]} == {
        "hintwise.review",
        "ruff:F841",
    }


def test_doctor_says_when_the_static_checks_cannot_run(monkeypatch):
    from hintwise.lsp_server.cli.doctor import _static_check, _static_lines
    from hintwise.lsp_server.config import Settings

    problems: list[str] = []
    working = _static_check(Settings(), problems)
    assert problems == [] and working["version"] and "ms" in working
    assert _static_lines(working)[0].startswith("static checks: ruff ")
    monkeypatch.setattr(static, "find_ruff", lambda: None)
    broken = _static_check(Settings(), problems)
    assert problems == [
        "reviews run without static checks: ruff is not installed (pip install ruff)"
    ]
    assert _static_lines(broken) == [
        "static checks: not running (ruff is not installed (pip install ruff))"
    ]


def test_unreachable_code_after_each_jump_and_not_the_empty_generator():
    text = (
        "def f(xs):\n"
        "    for x in xs:\n"
        "        if x:\n"
        "            break\n"
        "            print(x)  # after break\n"
        "        continue\n"
        "        # a comment is not code\n"
        "        x += 1\n"
        "    raise ValueError\n"
        "    return 2\n"
        "\n\n"
        "def g():\n"
        "    return\n"
        "    yield\n"
    )
    findings = static.check(text, "python").findings
    assert [(f.line, f.message) for f in findings] == [
        (4, "Unreachable code: it comes after a `break`"),
        (7, "Unreachable code: it comes after a `continue`"),
        (9, "Unreachable code: it comes after a `raise`"),
    ]
    comments, _ = static.comments_for(text, "python", findings, set())
    assert comments[0].kind == "hintwise:unreachable" and comments[0].severity == "warning"
    assert text.split("\n")[4][comments[0].start_character :].startswith("print(x)")
