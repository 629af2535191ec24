"""Post-processing: what the model wrote → what the editor shows (real code, several languages)."""

from __future__ import annotations

import pytest

from hintwise.lsp_server.code.documents import Document
from hintwise.lsp_server.completion import context, postprocess
from hintwise.lsp_server.config import CompletionSettings


def finish(source: str, language: str, raw: str, truncated: bool = False):
    offset = source.index("|")
    document = Document("file:///x", language, 1, source.replace("|", "", 1))
    ctx = context.build(document, offset, CompletionSettings(), automatic=False)
    return postprocess.finish(ctx, document, raw, max_lines=8, min_chars=3, truncated=truncated)


CASES = [
    # (language, document with | at the cursor, raw model text, expected suggestion or None)
    ("python", "def f(a, b):\n    return |\n", "a + b\n\ndef g():", "a + b"),
    ("python", 'print("hello|")\n', ' world")', " world"),  # the line already closes it
    ("python", "total = sum(|)\n", "values)", "values"),
    ("python", "total = max(len(a), |\n", "len(b)) + 1", "len(b)) + 1"),
    ("python", "x = foo(|\n", "1, 2)) + 3", "1, 2)"),  # one closer too many
    ("python", "def f(x):\n    |\n    return y\n", "return y", None),  # repeats the next line
    ("python", "    a = 1\n    |\n", "a = 1", None),  # repeats the previous line
    ("python", "x = |\n", "  ", None),
    ("python", "x = 1|\n", "0", None),  # trivial: the line was a statement already
    ("python", "x = |\n", "1", "1"),  # short, but it finishes the statement
    (
        "python",
        "def area(r):\n    |\n\ndef other():\n    pass\n",
        "pi = 3.14159\n    return pi * r * r\n",
        "pi = 3.14159\n    return pi * r * r",
    ),
    (  # the model goes on to re-write the code that follows the cursor: cut there
        "python",
        "def f(x):\n    |\n    y = x + 1\n    return y\n",
        "x = abs(x)\n    y = x + 1\n    return y",
        "x = abs(x)",
    ),
    (
        "python",
        "def f(x):\n    |\n    y = x + 1\n    return y\n",
        "x = abs(x)\n    z = 2\n    y = x + 1\n    return y",
        "x = abs(x)\n    z = 2",  # it leads back to the code below: these lines fill the gap
    ),
    (  # cut by the token cap in the middle of a statement: keep the whole lines only
        "python",
        "def f(items):\n    |\n",
        "total = 0\n    for item in items:\n        total += item\n    return (total +",
        "total = 0\n    for item in items:\n        total += item",
    ),
    (
        "javascript",
        "function add(a, b) {\n  |\n}\n",
        "const sum = a + b;\n  return sum;\n}\n\nfunction sub",
        "const sum = a + b;\n  return sum;",
    ),
    ("typescript", "const name: string = |;\n", "user.name;", "user.name"),
    ("go", "func f() {\n\tfmt.Println(|)\n}\n", '"hi")', '"hi"'),
    (
        "rust",
        "fn square(x: i32) -> i32 {\n    |\n}\n",
        "let y = x * x;\n    y\n}\n",
        "let y = x * x;\n    y",
    ),
    ("java", "class A {\n  int twice(int x) {\n    return |\n  }\n}\n", "x * 2;\n  }", "x * 2;"),
    ("c", "int main(void) {\n    printf(|);\n}\n", '"%d\\n", 1);', '"%d\\n", 1'),
    (
        "cpp",
        "int sum(const std::vector<int>& v) {\n    |\n}\n",
        "int s = 0;\n    for (int x : v) {\n        s += x;\n    }\n    return s;\n}\n",
        "int s = 0;\n    for (int x : v) {\n        s += x;\n    }\n    return s;",
    ),
]


@pytest.mark.parametrize(("language", "source", "raw", "expected"), CASES)
def test_finish(language, source, raw, expected):
    truncated = raw.endswith("(total +")
    assert finish(source, language, raw, truncated=truncated).text == expected


def test_tree_sitter_keeps_the_longest_run_of_lines_that_parses():
    # The third line opens a bracket that is never closed: it would add a parse error.
    raw = "a = 1\n    b = [\n    c = 3"
    result = finish("def f():\n    |\n", "python", raw, truncated=True)
    assert result.text == "a = 1"


# -- a suggestion that repeats its own lines (issue 12, defect 5) -----------------------------

REPEATS = [
    (  # a model stuck in a loop
        "def show(x, y, z):\n    |\n",
        "print(x,y,z)\n    print(x,y,z)\n    print(x,y,z)",
        "print(x,y,z)",
    ),
    (  # a cycle of two lines
        "def f(items):\n    |\n",
        "total = 0\n    count = 0\n    total = 0\n    count = 0",
        "total = 0\n    count = 0",
    ),
    (  # the same flow statement ending two branches is no loop
        "def sign(x):\n    |\n",
        "if x < 0:\n        return None\n    if x > 9:\n        return None\n    return x",
        "if x < 0:\n        return None\n    if x > 9:\n        return None\n    return x",
    ),
    (  # nor blank lines and closers; the same line at another depth is another statement
        "function f(a) {\n  |\n}\n",
        "if (a) {\n    g(a);\n  }\n\n  g(a);\n\n  if (b) {\n    h();\n  }",
        "if (a) {\n    g(a);\n  }\n\n  g(a);\n\n  if (b) {\n    h();\n  }",
    ),
    (  # real code repeats single lines (ipaddress.py): no loop unless the next line repeats too
        "def parse(text):\n    |\n",
        "try:\n        return v4(text)\n    except (ValueError, TypeError):\n        pass\n"
        "    try:\n        return v6(text)\n    except (ValueError, TypeError):\n        pass",
        "try:\n        return v4(text)\n    except (ValueError, TypeError):\n        pass\n"
        "    try:\n        return v6(text)\n    except (ValueError, TypeError):\n        pass",
    ),
    (  # but a flow statement right after itself is
        "def f(x):\n    |\n",
        "if x:\n        return x\n        return x",
        "if x:\n        return x",
    ),
]


@pytest.mark.parametrize(("source", "raw", "expected"), REPEATS)
def test_a_suggestion_is_cut_where_it_repeats_its_own_lines(source, raw, expected):
    language = "javascript" if source.startswith("function") else "python"
    assert finish(source, language, raw).text == expected


def test_real_function_bodies_are_hardly_ever_cut_as_repeats():
    """The first 8 lines of function bodies of the standard library (4 of 4,822 cut in its first
    120 modules, each a line written twice in a row), taken as suggestions."""
    import ast
    import sysconfig
    from pathlib import Path

    from hintwise.lsp_server.completion.postprocess import _self_repeat

    bodies = cut = 0
    for path in sorted(Path(sysconfig.get_paths()["stdlib"]).glob("*.py"))[:40]:
        source = path.read_text(errors="replace")
        lines = source.split("\n")
        for node in ast.walk(ast.parse(source)):
            if isinstance(node, ast.FunctionDef) and node.end_lineno:
                docstring = ast.get_docstring(node) is not None and len(node.body) > 1
                start = node.body[1 if docstring else 0].lineno - 1
                block = lines[start : min(start + 8, node.end_lineno)]
                indent = block[0][: len(block[0]) - len(block[0].lstrip())]
                suggestion = [block[0][len(indent) :], *block[1:]]
                bodies += 1
                cut += _self_repeat(suggestion, indent) < len(suggestion)
    assert bodies > 1000
    assert cut <= bodies // 200


# -- the statement being typed: never broken, shown when finished (defects 4 and 7) -----------

MEAN = "def mean(values):\n    total = sum(values)\n    {}\n    print(total)\n"


def test_a_suggestion_that_makes_the_line_a_syntax_error_is_dropped():
    result = finish(MEAN.format("return t|"), "python", " = total / len(values)")
    assert result.text is None and result.broken and result.worth_a_second_try
    assert result.reason == "would make the line a syntax error"
    fine = finish(MEAN.format("return t|"), "python", "otal / len(values)")
    assert fine.text == "otal / len(values)" and not fine.broken
    unfinished = finish(MEAN.format("return t|"), "python", "otal(values, ")
    assert unfinished.text == "otal(values,"


@pytest.mark.parametrize(
    ("source", "raw", "expected"),
    [
        ("if a:\n    pass\nelse|\n    pass\n", ":", ":"),
        ("try:\n    pass\nexcept ValueError as |\n    pass\n", "e:", "e:"),
        (MEAN.format("x = foo(a|"), ")", ")"),
        (MEAN.format("x = foo(a, b|"), "))", ")"),  # one closer too many: cut
    ],
)
def test_a_short_suggestion_that_finishes_the_statement_is_shown(source, raw, expected):
    assert finish(source, "python", raw).text == expected


@pytest.mark.parametrize(
    ("source", "raw"),
    [
        (MEAN.format("x = 1|"), "0"),  # complete already
        (MEAN.format("x = foo(a|"), ","),  # still open
        (MEAN.format("x = foo(|)"), "a"),  # code right of the cursor
    ],
)
def test_other_short_suggestions_are_still_dropped(source, raw):
    assert finish(source, "python", raw).reason == "fewer than 3 characters"


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("x = abs(x)\n    z = 2\n    w = 3\n    v", "x = abs(x)"),
        ("x = max(\n        x, 0\n    )\n    z = 2\n    w", "x = max(\n        x, 0\n    )"),
        ("for x in xs:\n        n += x\n    print(n)\n    n", "for x in xs:\n        n += x"),
    ],
)
def test_a_gap_cut_by_the_cap_keeps_only_its_first_statement(raw, expected):
    """Lines that never lead back to the code below nor end by themselves: the model was
    rambling, so only the first statement, whole, is offered."""
    source = "def f(x, xs):\n    n = 0\n    |\n    y = x + 1\n    return y\n"
    assert finish(source, "python", raw, truncated=True).text == expected


def test_a_gap_that_ends_by_itself_is_kept():
    source = "class P:\n    def __init__(self, x, y):\n        |\n        self.n = 2\n"
    raw = "self.x = x\n        self.y = y\n    def norm(self):"
    assert finish(source, "python", raw).text == "self.x = x\n        self.y = y"


def test_a_block_header_whose_body_is_below_comes_alone():
    # The hole is the loop's header: its body is already below the cursor.
    source = "def f(xs):\n    n = 0\n|\n        n += x\n    return n\n"
    raw = "    for x in xs:\n        n += 2 * x\n    return n\n"
    assert finish(source, "python", raw).text == "    for x in xs:"
