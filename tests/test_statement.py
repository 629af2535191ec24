"""Does a one-line suggestion break the statement being typed, or complete it (tree-sitter)?"""

from __future__ import annotations

import pytest

from hintwise.lsp_server.code.documents import Document
from hintwise.lsp_server.completion import context, statement
from hintwise.lsp_server.config import CompletionSettings

MEAN = "def mean(values):\n    total = sum(values)\n    {}\n    print(total)\n"
TRY = "try:\n    pass\nexcept {}\n    pass\n"
IF = "if a:\n    pass\n{}\n    pass\n"


def check(template: str, line: str, suggestion: str, language: str = "python"):
    source = template.format(line)
    document = Document("file:///x", language, 1, source.replace("|", "", 1))
    ctx = context.build(document, source.index("|"), CompletionSettings(), automatic=False)
    return statement.check(ctx, document, suggestion)


BREAKS = [
    (MEAN, "return t|", " = total / len(values)"),  # the Neovim report
    (MEAN, "return t|", "otal)"),
    (MEAN, "x = 1|", " 2"),
    (MEAN, "x = foo(|)", "a, b)"),  # the line closes it already
    (MEAN, "x = foo(|)", "a = = b"),
    (IF, "el|", "se if b:"),
    (IF, "else|", " if b:"),  # not Python
    ("function f(a) {\n  return a|;\n}\n", "", " = = 1", "javascript"),
]

INCOMPLETE_OR_FINE = [
    (MEAN, "return t|", "otal / len(values)"),
    (MEAN, "return t|", "otal("),  # waits for its arguments
    (MEAN, "return t|", "otal(values"),
    (MEAN, "x = foo(a|", ", b"),
    (MEAN, "for x in|", " values"),  # the `:` is still to come
    (MEAN, 'print("hello|', " world"),  # an open string
    (MEAN, "x = [i for i in|", " values"),
    (MEAN, "x = a|", " +"),
    (MEAN, "x = foo(|)", "a, b"),
    (TRY, "ValueError as |", "e"),
    (MEAN, 'return f"{|', "total}"),
    (MEAN, "raise Value|", "Error('x')"),
    ("function f(a) {\n  if (a|\n}\n", "", ") {", "javascript"),
]

COMPLETES = [
    (MEAN, "x = foo(a|", ")"),
    (MEAN, "x = foo(a|", ", b)"),
    (MEAN, "x = {|", "'a': 1}"),
    (MEAN, 'print("hello|', ' world")'),
    (MEAN, "for x in|", " values:"),
    (MEAN, "x = [i for i in|", " values]"),
    (TRY, "ValueError as e|", ":"),
    (TRY, "ValueError as |", "e:"),
    (IF, "else|", ":"),
    ("def f(a, b|\n    return a\n", "", "):"),
    ("x = |\n", "", "1"),
]

NOT_COMPLETING = [
    (MEAN, "x = 1|", "0"),  # the statement was complete already
    (MEAN, "return t|", "otal"),
    (MEAN, "x = foo(a|", ", b"),  # still open
    (TRY, "ValueError as |", "e"),  # still no `:`
    (MEAN, "x = foo(|)", "a"),  # code right of the cursor
    (IF, "el|", "se:"),  # `el` is a name: complete before as after
]


def _args(case: tuple) -> tuple:
    template, line, suggestion, *language = case
    if not line:  # the template has the cursor itself
        return "{}", template.replace("{", "{{").replace("}", "}}"), suggestion, *language
    return template, line, suggestion, *language


@pytest.mark.parametrize("case", BREAKS)
def test_a_suggestion_that_makes_the_statement_an_error_breaks_it(case):
    assert check(*_args(case)).breaks


@pytest.mark.parametrize("case", INCOMPLETE_OR_FINE + COMPLETES)
def test_an_incomplete_or_complete_statement_is_not_broken(case):
    assert not check(*_args(case)).breaks


@pytest.mark.parametrize("case", COMPLETES)
def test_a_suggestion_that_finishes_the_statement_completes_it(case):
    assert check(*_args(case)).completes


@pytest.mark.parametrize("case", NOT_COMPLETING + BREAKS)
def test_other_suggestions_do_not_complete_it(case):
    assert not check(*_args(case)).completes


def test_no_judgement_without_a_tree_or_for_several_lines():
    assert check("{}", "x = foo(a|", ")", "plaintext") == statement.LineCheck()
    assert check(MEAN, "return t|", " = 1\n    x = = 2") == statement.LineCheck()


@pytest.mark.parametrize(
    ("line", "language", "expected"),
    [
        ("foo(a, [b, {c", "python", "}])"),
        ("print('it''s (', x", "python", ")"),
        ('print("a \\" (b', "python", '")'),
        ("x = f(a)  # (", "python", ""),
        ("f(a) // (", "javascript", ""),
        ("s = `${a", "javascript", "`"),
        ("x = a)]", "python", ""),
    ],
)
def test_closers(line, language, expected):
    assert statement.closers(line, language) == expected
