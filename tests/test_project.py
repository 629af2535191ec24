"""The rest of the project in the prompt: the ring of chunks, definitions read with tree-sitter,
and a preamble that changes only for a reason (never while typing in the file)."""

from __future__ import annotations

from pathlib import Path

import pytest

from hintwise.lsp_server.code import definitions
from hintwise.lsp_server.code.documents import Document
from hintwise.lsp_server.completion.project import (
    CHUNK_LINES,
    RING_CHUNKS,
    Chunk,
    Project,
    Ring,
    lines_around,
    resolve_module,
    similarity,
)

UTIL = '''"""Helpers."""

import os

DEFAULT_WIDTH = 80


def make_parser(prog: str, width: int = DEFAULT_WIDTH) -> "Parser":
    """Build the command-line parser for `prog`.

    Longer explanation that does not belong in a prompt.
    """
    parser = Parser(prog)
    parser.width = width
    parser.add_help()
    parser.add_version()
    parser.finish()
    return parser


def short(a, b):
    return a + b


class Parser:
    """A parser of command lines."""

    def __init__(
        self,
        prog: str,
        width: int = 80,
    ) -> None:
        self.prog = prog
        self.width = width
        self.options = []
        self.seen = set()

    def add_help(self):
        pass
'''

MAIN = '''"""The program."""

from .util import Parser, make_parser
from . import util as helpers
import os


def main(argv):
    print(helpers.short(1, 2))
    parser = make_parser("prog")
    return parser
'''


def chunk(words: str, path: str = "a.py") -> Chunk:
    return Chunk(path, "\n".join(f"{word} = {word}_value + 1" for word in words.split()))


def test_similarity_is_llama_vims_word_overlap():
    assert similarity("a b c", "a b c") == 1.0
    assert similarity("a b", "c d") == 0.0
    assert similarity("", "") == 1.0
    assert similarity("a b c d", "a b x y") == pytest.approx(0.5)


def test_ring_ignores_duplicates_and_tiny_chunks_and_counts_its_changes():
    ring = Ring()
    assert ring.add(chunk("alpha beta gamma"))
    assert not ring.add(chunk("alpha beta gamma"))  # identical: already there
    assert not ring.add(Chunk("a.py", "x = 1\n\n"))  # under three lines of code
    assert ring.generation == 1 and len(ring.chunks) == 1


def test_a_very_similar_chunk_evicts_the_older_one():
    ring = Ring()
    ring.add(chunk("alpha beta gamma delta epsilon zeta eta theta iota kappa"))
    ring.add(chunk("one two three four"))
    newer = chunk("alpha beta gamma delta epsilon zeta eta theta iota kappa lambda")
    ring.add(newer)
    assert [c.text for c in ring.chunks] == [chunk("one two three four").text, newer.text]


def test_the_ring_keeps_the_newest_chunks():
    ring = Ring()
    for number in range(RING_CHUNKS + 3):
        ring.add(chunk(f"w{number}a w{number}b w{number}c"))
    assert len(ring.chunks) == RING_CHUNKS
    assert ring.chunks[0] == chunk("w3a w3b w3c") and ring.chunks[-1] == chunk("w18a w18b w18c")


def test_lines_around_a_line_stay_within_the_file():
    text = "\n".join(str(n) for n in range(200))
    assert lines_around(text, 0).splitlines()[0] == "0"
    assert len(lines_around(text, 100).splitlines()) == CHUNK_LINES
    assert lines_around(text, 100).splitlines()[0] == str(100 - CHUNK_LINES // 2)
    assert lines_around(text, 199).splitlines()[-1] == "199"


def test_definitions_short_whole_long_as_signature_and_docstring_line():
    found = definitions.definitions(UTIL)
    assert found["short"] == "def short(a, b):\n    return a + b"
    assert found["make_parser"] == (
        'def make_parser(prog: str, width: int = DEFAULT_WIDTH) -> "Parser":\n'
        '    """Build the command-line parser for `prog`."""\n'
        "    ..."
    )
    assert found["DEFAULT_WIDTH"] == "DEFAULT_WIDTH = 80"
    assert found["Parser"] == (
        "class Parser:\n"
        '    """A parser of command lines."""\n'
        "    def __init__(self, prog: str, width: int = 80) -> None: ...\n"
        "    ..."
    )
    assert "os" not in found


def test_definitions_of_a_file_that_does_not_parse_keep_what_does():
    broken = UTIL + "\ndef half(x:\n"
    assert "make_parser" in definitions.definitions(broken)


def test_imports_relative_aliased_and_inside_functions():
    source = (
        "from .util import a, b as c\nfrom . import mod\n"
        "def f():\n    from ..pkg.m import (d,\n e)\n"
    )
    found = [(i.module, i.level, i.name, i.alias) for i in definitions.imports(source)]
    assert found == [
        ("util", 1, "a", "a"),
        ("util", 1, "b", "c"),
        ("", 1, "mod", "mod"),
        ("pkg.m", 2, "d", "d"),
        ("pkg.m", 2, "e", "e"),
    ]


@pytest.fixture
def workspace(tmp_path: Path) -> Path:
    package = tmp_path / "pkg"
    package.mkdir()
    (package / "__init__.py").write_text("")
    (package / "util.py").write_text(UTIL)
    (package / "main.py").write_text(MAIN)
    return tmp_path


def test_modules_resolve_relative_absolute_and_not_outside(workspace: Path):
    main = workspace / "pkg" / "main.py"
    util = workspace / "pkg" / "util.py"
    assert resolve_module("util", 1, main, []) == util
    assert resolve_module("pkg.util", 0, main, [workspace]) == util
    assert resolve_module("pkg.util", 0, main, []) == util  # the importer's own package root
    assert resolve_module("os", 0, main, [workspace]) is None
    assert resolve_module("", 1, main, []) == workspace / "pkg" / "__init__.py"


def document_at(path: Path, text: str | None = None) -> Document:
    return Document(path.as_uri(), "python", 1, text if text is not None else path.read_text())


def test_the_preamble_holds_the_imported_definitions_with_their_path(workspace: Path):
    project = Project()
    project.roots = [workspace]
    main = document_at(workspace / "pkg" / "main.py")
    preamble = project.preamble(main, main.text.index("parser = "), 512)
    assert preamble.startswith("# path: pkg/util.py\n")
    assert 'def make_parser(prog: str, width: int = DEFAULT_WIDTH) -> "Parser":' in preamble
    assert "class Parser:" in preamble
    assert "def short(a, b):" in preamble  # used as helpers.short: a module alias
    # The name used nearest the cursor comes last, closest to the code.
    assert preamble.rindex("make_parser") > preamble.rindex("short")
    assert project.preamble(main, 0, 0) == ""  # completion.project_tokens = 0: off


def test_the_preamble_stays_within_its_budget(workspace: Path):
    project = Project()
    main = document_at(workspace / "pkg" / "main.py")
    preamble = project.preamble(main, main.text.index("parser = "), 60)
    assert 0 < len(preamble) <= 60 * 3
    assert "make_parser" in preamble  # the nearest name is the one kept


def test_typing_in_the_file_does_not_change_the_preamble(workspace: Path):
    project = Project()
    other = document_at(workspace / "pkg" / "util.py")
    project.opened(other)
    main = document_at(workspace / "pkg" / "main.py")
    project.opened(main)
    offset = main.text.index("    return parser")
    before = project.preamble(main, offset, 512)
    assert "# path: " in before
    for typed in ("r", "re", "ret", "retu", "return"):
        main.apply_change(typed[-1], main.position_at(offset), main.position_at(offset))
        offset += 1
        assert project.preamble(main, offset, 512) == before
    # An import typed in the file counts only once the file is saved.
    main.apply_change("from .util import DEFAULT_WIDTH\n", (0, 0), (0, 0))
    assert project.preamble(main, offset, 512) == before
    project.saved(main)
    after = project.preamble(main, offset, 512)
    assert after != before and "DEFAULT_WIDTH = 80" in after


def test_switching_files_adds_a_chunk_of_the_file_left(workspace: Path):
    project = Project()
    util = document_at(workspace / "pkg" / "util.py")
    scratch = document_at(workspace / "scratch.py", "\n".join(f"v{n} = {n}" for n in range(10)))
    project.preamble(util, util.text.index("class Parser"), 512)
    generation = project.generation
    first = project.preamble(scratch, 0, 512)
    assert project.generation == generation + 1
    assert "# path: pkg/util.py\n" in first and "class Parser:" in first
    # Back and forth without edits: the same chunks, the same preamble.
    project.preamble(util, util.text.index("class Parser"), 512)
    assert project.preamble(scratch, 0, 512) == first


def test_a_chunk_like_the_code_at_the_cursor_is_left_out(workspace: Path):
    project = Project()
    util = document_at(workspace / "pkg" / "util.py")
    project.opened(util)
    assert project.preamble(util, 10, 512) == ""  # its own top: already in the prompt


def test_workspace_files_are_read_in_the_background_then_used(workspace: Path):
    jobs = []
    project = Project(schedule=jobs.append)
    project.roots = [workspace]
    main = document_at(workspace / "pkg" / "main.py")
    offset = main.text.index("parser = ")
    assert project.preamble(main, offset, 512) == ""  # nothing read yet, nothing waited for
    assert len(jobs) == 1
    jobs.pop()()
    assert "def make_parser" in project.preamble(main, offset, 512)


def test_an_open_document_is_read_rather_than_its_file(workspace: Path):
    util_path = workspace / "pkg" / "util.py"
    edited = UTIL.replace("def short(a, b):", "def short(a, b, c=0):")
    project = Project(open_text=lambda path: edited if path == util_path else None)
    main = document_at(workspace / "pkg" / "main.py")
    assert "def short(a, b, c=0):" in project.preamble(main, main.text.index("print"), 512)


def test_the_http_engine_sends_the_preamble_before_the_prefix_within_its_budget():
    from hintwise.models.engine import CompletionRequest
    from hintwise.models.http.engine import HttpEngine

    engine = HttpEngine.__new__(HttpEngine)  # _windows needs no connection
    preamble = "".join(f"value_{n} = {n}\n" for n in range(100))
    request = CompletionRequest(prefix="x = ", preamble=preamble, preamble_budget=20)
    prefix, _, cut = engine._windows(request)
    assert prefix.endswith("value_99 = 99\nx = ") and cut == 0
    assert len(prefix) <= 20 * 3 + 4 and prefix.startswith("value_")
    assert (
        engine._windows(CompletionRequest(prefix="x = ", preamble=preamble, preamble_budget=0))[0]
        == "x = "
    )
