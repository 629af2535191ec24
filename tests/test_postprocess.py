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
    ("python", "x = |\n", "1", None),  # trivial
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
