"""Document text and positions: LSP line ends, UTF-16 units, and positions that do not exist."""

from __future__ import annotations

import pytest

from hintwise.lsp_server.code.documents import Document, minimal_change


def doc(text: str, encoding: str = "utf-16") -> Document:
    return Document("file:///t.py", "python", 1, text, encoding)


@pytest.mark.parametrize(
    ("text", "position", "offset"),
    [
        ("abc\ndef", (1, 2), 6),
        ("abc\r\ndef", (1, 0), 5),
        ("abc\rdef", (1, 1), 5),
        # A form feed and U+2028 are not line ends in LSP (str.splitlines thinks they are).
        ("a\x0cb\nc", (1, 0), 4),
        ("a\u2028b\nc", (1, 1), 5),
        # Past the end of a line, past the last line, negative: clamped, never an error.
        ("abc\ndef", (0, 99), 3),
        ("abc\ndef", (7, 3), 7),
        ("abc\ndef", (-1, 0), 0),
        # UTF-16: the emoji is two code units; a column between them rounds down.
        ("x = '😋'\n", (0, 5), 5),
        ("x = '😋'\n", (0, 6), 5),
        ("x = '😋'\n", (0, 7), 6),
    ],
)
def test_offset_at(text, position, offset):
    assert doc(text).offset_at(*position) == offset


def test_utf8_and_utf32_units():
    assert doc("é = 1", "utf-8").offset_at(0, 2) == 1
    assert doc("é = 1", "utf-8").offset_at(0, 1) == 0
    assert doc("😋x", "utf-32").offset_at(0, 1) == 1
    assert doc("😋x", "utf-16").position_at(1) == (0, 2)
    assert doc("😋x", "utf-8").position_at(1) == (0, 4)


def test_incremental_changes_match_the_editor():
    document = doc("def f():\n    pass\n")
    document.apply_change("return 1", (1, 4), (1, 8))
    assert document.text == "def f():\n    return 1\n"
    document.apply_change("x", (0, 4), (0, 5))
    assert document.text == "def x():\n    return 1\n"
    document.apply_change("", (0, 0), (5, 0))  # an end past the document: clamped
    assert document.text == ""
    document.apply_change("whole\ntext", None, None)
    assert document.line_count() == 2
    assert document.line_text(1) == "text"


def test_binary_content_is_recognised():
    assert doc("\x00\x01\x02ELF" + "\x00" * 100).looks_binary()
    assert not doc("def f():\n\tpass\n").looks_binary()


@pytest.mark.parametrize(
    ("old", "new", "edit"),
    [
        ("return x\n", "return xy\n", (8, 8, "y")),
        ("aaa", "aaaa", (3, 3, "a")),  # a repeated character: the edit is at the end
        ("abc", "ac", (1, 2, "")),
        ("same", "same", (4, 4, "")),
        ("", "new", (0, 0, "new")),
        ("a\r\nb", "a\nb", (1, 3, "\n")),  # the line ending is replaced whole
        ("x\r\ny", "x\r\r\ny", (1, 1, "\r")),  # a new line ending is not cut through a \r\n
        ("😀a", "😀ba", (1, 1, "b")),
    ],
)
def test_a_whole_text_change_is_seen_as_its_one_range_edit(old, new, edit):
    start, end, inserted = minimal_change(old, new)
    assert old[:start] + inserted + old[end:] == new
    assert (start, end, inserted) == edit


def test_the_range_edit_of_a_long_file_is_the_keystroke():
    old = "".join(f"line {n}\n" for n in range(20000))
    at = old.index("line 12345") + 4
    start, end, inserted = minimal_change(old, old[:at] + "s" + old[at:])
    assert (start, end, inserted) == (at, at, "s")


def test_lone_surrogates_become_u_fffd_and_positions_stay_right() -> None:
    from hintwise.lsp_server.code.documents import Document, uri_path, without_lone_surrogates

    assert without_lone_surrogates("a\ud800b\udfff") == "a\ufffdb\ufffd"
    assert without_lone_surrogates("😀 ok") == "😀 ok"  # a pair is one code point: untouched
    document = Document("file:///x.py", "python", 1, "x = '\ud800'\ny = 1\n")
    assert document.text == "x = '\ufffd'\ny = 1\n"
    document.apply_change("\udc00", (0, 6), (0, 6))
    assert document.line_text(0) == "x = '\ufffd\ufffd'"
    assert document.offset_at(1, 0) == len("x = '\ufffd\ufffd'\n")
    assert uri_path("file:///tmp/a\ud800.py") is None
