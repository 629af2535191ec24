"""Open documents: text kept in step with didChange, and LSP positions turned into offsets.

pygls keeps its own copy, but splits lines with `str.splitlines`, which also breaks at form feeds,
U+2028 and other characters that LSP does not count as line ends, so an edit on such a file lands
in the wrong place. Completions read the text from here instead, where lines end only at
`\\n`, `\\r\\n` or `\\r` (the LSP definition) and every position a client sends is clamped into
the document rather than trusted: a line past the end, a column past the end of the line, or a
UTF-16 offset that falls between the two halves of a surrogate pair.
"""

from __future__ import annotations

import re
from bisect import bisect_right
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import unquote, urlparse

from hintwise.lsp_server.code.syntax import DocumentSyntax

_LINE_END = re.compile(r"\r\n|\r|\n")
_LONE_SURROGATE = re.compile("[\ud800-\udfff]")


def without_lone_surrogates(text: str) -> str:
    """`text` with each lone UTF-16 surrogate (valid JSON, sent by some editors, but not
    encodable to UTF-8 for SQLite, tree-sitter or the file system) replaced by U+FFFD. Both take
    one UTF-16 unit and three UTF-8 bytes, so every position the client sends stays right."""
    return _LONE_SURROGATE.sub("\ufffd", text) if _LONE_SURROGATE.search(text) else text


def _units(text: str, encoding: str) -> int:
    """Length of `text` in the client's position units."""
    if encoding == "utf-32":
        return len(text)
    if encoding == "utf-8":
        return len(text.encode("utf-8", errors="surrogatepass"))
    return len(text) + sum(1 for ch in text if ord(ch) > 0xFFFF)


def _column_to_index(line: str, column: int, encoding: str) -> int:
    """Index in `line` of a column in client units, clamped; a split character rounds down."""
    if column <= 0:
        return 0
    if encoding == "utf-32":
        return min(column, len(line))
    if encoding == "utf-16" and line.isascii():
        return min(column, len(line))
    units = 0
    for index, char in enumerate(line):
        width = (
            (len(char.encode("utf-8", errors="surrogatepass")))
            if encoding == "utf-8"
            else (2 if ord(char) > 0xFFFF else 1)
        )
        if units + width > column:
            return index
        units += width
    return len(line)


@dataclass
class Document:
    """One open document's text, with cached line starts and its syntax tree."""

    uri: str
    language_id: str
    version: int
    text: str
    encoding: str = "utf-16"
    syntax: DocumentSyntax = field(init=False)
    edited_at: float = field(default=0.0, init=False)  # time.monotonic() of the last edit
    _line_starts: list[int] | None = field(default=None, init=False, repr=False)

    def __post_init__(self) -> None:
        self.text = without_lone_surrogates(self.text)
        self.syntax = DocumentSyntax(self.language_id)

    @property
    def line_starts(self) -> list[int]:
        if self._line_starts is None:
            self._line_starts = [0, *(match.end() for match in _LINE_END.finditer(self.text))]
        return self._line_starts

    def line_count(self) -> int:
        return len(self.line_starts)

    def line_text(self, line: int) -> str:
        """A line without its line ending."""
        starts = self.line_starts
        start = starts[line]
        end = starts[line + 1] if line + 1 < len(starts) else len(self.text)
        return self.text[start:end].rstrip("\r\n")

    def offset_at(self, line: int, character: int) -> int:
        """Character offset of an LSP position, clamped into the document."""
        starts = self.line_starts
        if line < 0:
            return 0
        if line >= len(starts):
            return len(self.text)
        return starts[line] + _column_to_index(self.line_text(line), character, self.encoding)

    def position_at(self, offset: int) -> tuple[int, int]:
        """LSP (line, character) of a character offset, in the client's units."""
        offset = max(0, min(offset, len(self.text)))
        line = bisect_right(self.line_starts, offset) - 1
        start = self.line_starts[line]
        return line, _units(self.text[start:offset], self.encoding)

    def apply_change(self, text: str, start: tuple[int, int] | None, end: tuple[int, int] | None):
        """Apply one content change: a range edit, or the whole text when `start` is None."""
        text = without_lone_surrogates(text)
        if start is None or end is None:
            self.text = text
        else:
            a = self.offset_at(*start)
            b = max(a, self.offset_at(*end))
            self.text = self.text[:a] + text + self.text[b:]
        self._line_starts = None

    def replace(self, start: int, end: int, text: str) -> None:
        """Replace the characters from offset `start` to `end` with `text`."""
        text = without_lone_surrogates(text)
        self.text = self.text[:start] + text + self.text[end:]
        self._line_starts = None

    def looks_binary(self) -> bool:
        """NUL bytes or mostly control characters near the start: not a text file to complete."""
        head = self.text[:4096]
        if "\x00" in head:
            return True
        controls = sum(1 for ch in head if ord(ch) < 32 and ch not in "\t\n\r\x0c")
        return len(head) > 0 and controls / len(head) > 0.1


def _common_prefix(a: str, b: str, limit: int) -> int:
    """Length of the common start of `a` and `b`, up to `limit`, by bisection on slices
    (string comparison runs in C; a 100 KB file takes well under a millisecond)."""
    low, high = 0, limit
    while low < high:
        middle = (low + high + 1) // 2
        if a[low:middle] == b[low:middle]:
            low = middle
        else:
            high = middle - 1
    return low


def minimal_change(old: str, new: str) -> tuple[int, int, str]:
    """The one range edit that turns `old` into `new`: (start, end in `old`, inserted text).

    Clients may send a whole document for a one-character change even to an incremental-sync
    server; seen as the edit it really is, it keeps typing along a suggestion and its labels
    right. A line ending's `\r\n` is never split.
    """
    shortest = min(len(old), len(new))
    start = _common_prefix(old, new, shortest)
    if 0 < start < len(old) and old[start - 1] == "\r" and old[start] == "\n":
        start -= 1
    tail = _common_prefix(old[start:][::-1], new[start:][::-1], shortest - start)
    end_old, end_new = len(old) - tail, len(new) - tail
    if 0 < end_old < len(old) and old[end_old - 1] == "\r" and old[end_old] == "\n":
        end_old, end_new = end_old + 1, end_new + 1
    return start, end_old, new[start:end_new]


class DocumentStore:
    """The documents the client has open, by URI."""

    def __init__(self) -> None:
        self._documents: dict[str, Document] = {}
        self.encoding = "utf-16"

    def open(self, uri: str, language_id: str, version: int, text: str) -> Document:
        document = Document(uri, language_id or "plaintext", version, text, self.encoding)
        self._documents[uri] = document
        return document

    def get(self, uri: str) -> Document | None:
        return self._documents.get(uri)

    def close(self, uri: str) -> None:
        self._documents.pop(uri, None)

    def text_at(self, path: Path) -> str | None:
        """The text of the open document at a file path, or None."""
        for uri, document in self._documents.items():
            if uri_path(uri) == path:
                return document.text
        return None

    def __len__(self) -> int:
        return len(self._documents)


def uri_path(uri: str) -> Path | None:
    """The file path of a file:// URI, else None (also for a path no file system can hold)."""
    parsed = urlparse(uri)
    if parsed.scheme != "file":
        return None
    path = unquote(parsed.path)
    return None if "\x00" in path or _LONE_SURROGATE.search(path) else Path(path)


def display_path(uri: str) -> str:
    """A file:// URI as the path it names, any other URI as it is (what the store keeps)."""
    parsed = urlparse(uri)
    return unquote(parsed.path) if parsed.scheme == "file" else uri
