"""Tree-sitter: grammars for every promised language, incremental parsing, cursor state."""

from __future__ import annotations

from pathlib import Path

import pytest

from hintwise.lsp_server.code.syntax import (
    DocumentSyntax,
    count_errors,
    grammar,
    language_for_path,
    state_at,
)

LANGUAGES = [
    "python",
    "javascript",
    "typescript",
    "typescriptreact",
    "go",
    "rust",
    "java",
    "c",
    "cpp",
]


@pytest.mark.parametrize("language", LANGUAGES)
def test_every_promised_grammar_is_installed(language):
    assert grammar(language) is not None


def test_unknown_language_has_no_grammar():
    assert grammar("cobol") is None
    syntax = DocumentSyntax("cobol")
    assert syntax.update("IDENTIFICATION DIVISION.") is None


def test_file_names_map_to_languages():
    assert language_for_path("/a/b.py") == "python"
    assert language_for_path("x.TSX") == "typescriptreact"
    assert language_for_path("Makefile") == "plaintext"


def test_incremental_reparse_matches_a_fresh_parse():
    source = Path(__file__).with_name("conftest.py").read_text()
    syntax = DocumentSyntax("python")
    syntax.update(source)
    edits = [
        source.replace("def data_dir", "def data_directory"),
        source.replace("import os\n", "import os\nimport json\n"),
        source + "\n\ndef extra():\n    return 1\n",
        "x = 'é😋'\n" + source,
    ]
    for edited in edits:
        incremental = syntax.update(edited)
        fresh = DocumentSyntax("python")
        assert str(incremental.root_node) == str(fresh.update(edited).root_node)


@pytest.mark.parametrize(
    ("language", "text", "in_comment", "in_string"),
    [
        ("python", "x = 1  # note |", True, False),
        ("python", "x = 'abc|def'", False, True),
        ("python", "x = f'{valu|e}'", False, False),
        ("python", "x = 'abc'|", False, False),
        ("javascript", "// todo |\nlet a = 1;", True, False),
        ("javascript", "let s = `a ${b|} c`;", False, False),
        ("go", 'package main\nvar s = "he|llo"', False, True),
        ("rust", "fn main() { /* a | */ }", True, False),
        ("java", 'class A { String s = "x|"; }', False, True),
        ("c", "int main(void) { return 0; } // end|", True, False),
        ("cpp", 'auto s = R"(raw|)";', False, True),
    ],
)
def test_cursor_state(language, text, in_comment, in_string):
    offset = text.index("|")
    source = text.replace("|", "")
    syntax = DocumentSyntax(language)
    tree = syntax.update(source)
    state = state_at(tree, len(source[:offset].encode()))
    assert (state.in_comment, state.in_string) == (in_comment, in_string)
    assert state.node_kinds


def test_error_counting():
    syntax = DocumentSyntax("python")
    assert count_errors(syntax.update("def f():\n    return 1\n").root_node) == 0
    assert count_errors(syntax.update("def f(:\n    return 1\n").root_node) > 0


def test_a_what_if_edit_parses_like_a_fresh_parse_and_leaves_the_document_alone():
    source = (Path(__file__).parent.parent / "lsp_server" / "completion" / "context.py").read_text()
    syntax = DocumentSyntax("python")
    tree = syntax.update(source)
    before = str(tree.root_node)
    line = source.index("    return width\n")
    edits = [
        (line, line + 16, "    return width = 2"),  # an error
        (line, line + 16, "    return (width"),  # an open bracket
        (line, line, "é😋 "),  # characters of several UTF-8 and UTF-16 widths
        (0, 0, "x = 'é😋'\n"),
        (len(source), len(source), "\ndef extra(:\n"),
    ]
    for start, end, replacement in edits:
        variant = syntax.edited_variant(start, end, replacement)
        fresh = syntax.parse_variant(source[:start] + replacement + source[end:])
        assert str(variant.root_node) == str(fresh.root_node)
        assert count_errors(variant.root_node) == count_errors(fresh.root_node)
    assert syntax.tree is tree and str(tree.root_node) == before and syntax.text == source
    assert DocumentSyntax("plaintext").edited_variant(0, 0, "x") is None
