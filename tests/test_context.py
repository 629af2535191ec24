"""Cursor context: windows cut at line starts and kept stable; the single/multi/none decision."""

from __future__ import annotations

import pytest

from hintwise.lsp_server.code.documents import Document
from hintwise.lsp_server.completion import context
from hintwise.lsp_server.config import CompletionSettings

SETTINGS = CompletionSettings()


def at_cursor(source: str, language: str, automatic: bool = True, anchor=None, settings=SETTINGS):
    offset = source.index("|")
    document = Document("file:///x", language, 1, source.replace("|", "", 1))
    return context.build(document, offset, settings, anchor=anchor, automatic=automatic)


@pytest.mark.parametrize(
    ("language", "source", "mode"),
    [
        ("python", "def f(x):\n    |\n", "multi"),  # empty body after an opener
        ("python", "def f(x):|\n", "multi"),  # end of the opener line itself
        ("python", "def f(x):\n    y = x\n    |\n\ndef g():\n    pass\n", "multi"),  # block end
        # Inside a body that goes on: several lines only if they lead back to the code below.
        ("python", "def f(x):\n    y = 1\n    |\n    return y\n", "multi"),
        ("python", "for c in s:\n    |\n        n += 1\n", "multi"),  # the body follows
        # Column 0 (no auto-indent) at the end of an inner block: the previous line's depth.
        ("python", "def f(x):\n    if x:\n        y = 1\n|\n    return y\n", "multi"),
        ("python", "def f(x):|\n    return x\n", "single"),  # the opener has a body
        ("python", "def f(x):\n    return x.low|\n", "single"),
        ("python", "print(|)\n", "single"),
        ("python", "value = comp|uted()\n", "none"),  # inside a word
        ("python", "x = |call(a, b, c, d, e)\n", "none"),  # too much text right of the cursor
        ("python", "|    return x\n", "none"),  # before the code on the line
        ("javascript", "function f(a) {\n  |\n}\n", "multi"),
        ("javascript", "const xs = items.map((x) => |);\n", "single"),
        ("typescript", "interface A {\n  name: string;\n  |\n}\n", "multi"),
        ("go", "func main() {\n\tfmt.Println(|)\n}\n", "single"),
        ("go", "func main() {\n\t|\n}\n", "multi"),
        (
            "rust",
            'fn main() {\n    let v = vec![1, 2];\n    |\n    println!("{:?}", v);\n}\n',
            "multi",
        ),
        ("java", "class A {\n  int f() {\n    |\n  }\n}\n", "multi"),
        ("c", "int main(void) {\n    int x = |\n", "single"),
        ("cpp", "struct S {\n  int a;\n};\n|", "multi"),
        ("plaintext", "Dear team,\n|", "multi"),
    ],
)
def test_mode_decision(language, source, mode):
    assert at_cursor(source, language).mode == mode


def test_invoked_requests_ignore_the_automatic_only_rules():
    assert at_cursor("value = comp|uted()\n", "python", automatic=False).mode == "single"
    # Asked for at the start of a line with code: a new line above it.
    for source in ("|    return x\n", "    |return x\n", "  |  return x\n"):
        context = at_cursor(source, "python", automatic=False)
        assert (context.mode, context.inserts_line) == ("single", True)
    assert at_cursor("|    return x\n", "python", automatic=True).mode == "none"


def test_binary_documents_get_nothing():
    assert at_cursor("\x00\x00ELF|\x00", "plaintext", automatic=False).mode == "none"


def test_multiline_setting_overrides():
    never = CompletionSettings(multiline="never")
    always = CompletionSettings(multiline="always")
    assert at_cursor("def f(x):\n    |\n", "python", settings=never).mode == "single"
    assert at_cursor("x = 1|\n", "python", settings=always).mode == "multi"


def test_prefix_window_starts_at_a_line_and_keeps_its_anchor():
    lines = [f"value_{i} = {i}\n" for i in range(3000)]
    source = "".join(lines) + "|"
    settings = CompletionSettings(prefix_tokens=256)
    first = at_cursor(source, "python", settings=settings)
    assert first.prefix_start > 0
    assert first.prefix.startswith("value_")
    assert first.prefix_start == source.index(first.prefix.split("\n")[0])
    # Typing on: the anchor is kept, so the prompt's start (and llama.cpp's cache) stays put.
    typed = source.replace("|", "result = |")
    second = at_cursor(typed, "python", anchor=first.prefix_start, settings=settings)
    assert second.prefix_start == first.prefix_start
    # An anchor that is no longer usable (cursor moved above it) is replaced.
    moved = "".join(lines[:10]) + "|" + "".join(lines[10:])
    third = at_cursor(moved, "python", anchor=first.prefix_start, settings=settings)
    assert third.prefix_start == 0


@pytest.mark.parametrize(
    ("language", "source", "generated", "kept"),
    [
        ("python", "x = |\n", "compute(1)\ny = 2", "compute(1)"),
        (
            "python",
            "def f(x):\n    |\n",
            "y = x * 2\n    return y\n\ndef g():\n",
            "y = x * 2\n    return y",
        ),
        ("python", "def f(x):\n    |\n", "a = 1\n\n\n    b = 2", "a = 1\n"),
        (
            "javascript",
            "function f() {\n  |\n}\n",
            "const a = 1;\n  return a;\n}\nfunction g",
            "const a = 1;\n  return a;",
        ),
        ("go", "func f() {\n\t|\n}\n", "if x {\n\t\ty()\n\t}\n}\n", "if x {\n\t\ty()\n\t}"),
        # At column 0 the suggestion's own first line sets the block it must stay in.
        (
            "python",
            "def f(x):\n    if not x:\n|\n    return x\n",
            "        return None\n    y = 2\n",
            "        return None",
        ),
    ],
)
def test_stop_rule_cuts_where_the_suggestion_should_end(language, source, generated, kept):
    ctx = at_cursor(source, language, automatic=False)
    cut = context.stop_rule(ctx, max_lines=8)(generated)
    assert (generated[:cut] if cut is not None else generated).rstrip() == kept.rstrip()


def test_stop_rule_caps_lines():
    ctx = at_cursor("def f(x):\n    |\n", "python", automatic=False)
    text = "".join(f"a{i} = {i}\n    " for i in range(20))
    cut = context.stop_rule(ctx, max_lines=3)(text)
    assert text[:cut].count("\n") == 2


@pytest.mark.parametrize(
    ("language", "source", "code_expected", "needs_indent"),
    [
        ("python", "def f(x):\n    y = 1\n|\n    return y\n", True, True),  # column 0, in a body
        ("python", "def f(x):\n|\n", True, True),  # an empty body
        ("python", "x = 1\n|\ny = 2\n", True, False),  # top level: column 0 is right
        ("python", "def f(x):\n    # step one\n    |\n", False, False),  # a comment block
        ("python", "def f(x):\n    y = 1  # note |\n", False, False),  # inside a comment
        ("python", 'x = """\n|\n"""\n', False, False),  # inside a string
        ("go", "func f() {\n\t|\n}\n", True, False),
        ("plaintext", "Dear team,\n|", False, False),
    ],
)
def test_what_an_empty_line_expects(language, source, code_expected, needs_indent):
    ctx = at_cursor(source, language, automatic=False)
    assert ctx.code_expected() == code_expected
    assert ctx.needs_indent() == needs_indent


@pytest.mark.parametrize(
    ("source", "char"),
    [
        ("def f(x):\n    y = 1\n|\n    return y\n", " "),
        ("def f(x):\n\ty = 1\n|\n\treturn y\n", "\t"),
        ("def f(x):\n|\n\treturn x\n", "\t"),  # only the line below says
        ("def f(x):\n|\n", " "),  # nothing says: PEP 8
    ],
)
def test_the_indentation_character_comes_from_the_file(source, char):
    assert at_cursor(source, "python", automatic=False).indent_char() == char


ALWAYS = CompletionSettings(multiline="always")


@pytest.mark.parametrize(
    ("source", "generated", "kept"),
    [
        # The model filled the gap and goes on with the line already below: cut before it.
        (
            "def f(x):\n    y = 1\n    |\n    return y\n",
            "z = y + 1\n    w = z * 2\n    return y\n    print(w)\n",
            "z = y + 1\n    w = z * 2",
        ),
        # Deeper or shallower, the same code line ends the gap.
        (
            "def f(xs):\n    for x in xs:\n|\n    return xs\n",
            "        if x:\n            xs.append(x)\n    return xs\n",
            "        if x:\n            xs.append(x)",
        ),
        # A lone bracket line says nothing about where the gap ends.
        (
            "values = [\n|\n]\n",
            "1,\n]\n2,\n",
            "1,\n]\n2,",
        ),
    ],
)
def test_stop_rule_ends_where_the_code_below_begins(source, generated, kept):
    offset = source.index("|")
    document = Document("file:///x", "python", 1, source.replace("|", "", 1))
    ctx = context.build(document, offset, ALWAYS, automatic=False)
    cut = context.stop_rule(ctx, max_lines=8)(generated)
    assert (generated[:cut] if cut is not None else generated).rstrip() == kept


def test_stop_rule_stops_at_once_when_the_first_line_copies_the_next_one():
    ctx = at_cursor("def f(x):\n    y = 1\n    |\n    return y\n", "python", settings=ALWAYS)
    assert context.stop_rule(ctx, max_lines=8)("return y\n    ") == len("return y")


@pytest.mark.parametrize(
    ("source", "gap"),
    [
        ("def f(x):\n    y = 1\n    |\n    return y\n", True),  # inside a body
        ("for c in s:\n    |\n        n += 1\n", True),  # before a body that is there
        ("def f(x):\n    |\n", False),  # an empty body: the whole body is wanted
        ("def f(x):\n    if x:\n        y = 1\n|\n    return y\n", False),  # block end
        ("def f(x):\n    if x:\n        y = 1\n        |\n    return y\n", False),
        ("def f(x):\n    return x.low|\n", False),  # single
    ],
)
def test_gaps_ask_for_lines_that_lead_back_to_the_code_below(source, gap):
    assert at_cursor(source, "python").fills_gap() == gap
