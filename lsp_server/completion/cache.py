"""Suggestions being typed along: a request whose typed text follows a shown suggestion is
answered from here, without the model.

Typing `re` into a shown `return x` must not call the model again: the answer is `turn x`; nor
must asking again at the same place (editors re-ask after a focus change or a re-trigger). An
entry is found by where its cursor was in the document, not by its prompt window, whose start
moves after each answer.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass

from hintwise.lsp_server.completion.context import CursorContext
from hintwise.lsp_server.completion.result import Result

# Open documents keep this many recent suggestions for typing along them.
CACHE_PER_DOCUMENT = 8


@dataclass
class _Shown:
    prefix_start: int
    prefix: str
    line_suffix: str
    result: Result


def _typed_since(entry: _Shown, ctx: CursorContext) -> str | None:
    """What was typed at the entry's cursor since it was shown, or None when the text before
    it changed. Both windows must hold the entry's whole cursor line, and agree on all the text
    they share."""
    cursor = entry.prefix_start + len(entry.prefix)
    line_start = cursor - len(entry.prefix) + entry.prefix.rfind("\n") + 1
    shared = max(entry.prefix_start, ctx.prefix_start)
    if shared > line_start or ctx.offset < cursor:
        return None
    before = entry.prefix[shared - entry.prefix_start :]
    if ctx.prefix[shared - ctx.prefix_start : cursor - ctx.prefix_start] != before:
        return None
    return ctx.prefix[cursor - ctx.prefix_start :]


class TypingCache:
    """Recent suggestions per document, answering a request whose typed text follows one."""

    def __init__(self) -> None:
        self._shown: dict[str, deque[_Shown]] = {}
        self._nothing: dict[str, tuple[str, int, object, Result]] = {}

    def add(self, uri: str, ctx: CursorContext, result: Result) -> None:
        entries = self._shown.setdefault(uri, deque(maxlen=CACHE_PER_DOCUMENT))
        entries.appendleft(_Shown(ctx.prefix_start, ctx.prefix, ctx.line_suffix, result))

    def lookup(self, uri: str, ctx: CursorContext) -> tuple[Result, str] | None:
        """The shown suggestion the typing follows and what is left of it, or None."""
        for entry in self._shown.get(uri, ()):
            text = entry.result.text or ""
            if entry.line_suffix != ctx.line_suffix:
                continue
            typed = _typed_since(entry, ctx)
            if typed is not None and text.startswith(typed) and len(typed) < len(text):
                return entry.result, text[len(typed) :]
        return None

    def forget(self, uri: str) -> None:
        self._shown.pop(uri, None)
        self._nothing.pop(uri, None)

    def add_nothing(self, document_text: str, ctx: CursorContext, key: object, result: Result):
        """Remember that the model's answer here was not worth showing: asked again with the
        same text, place and settings (`key`), the answer is the same, without the model."""
        self._nothing[result.uri] = (document_text, ctx.offset, key, result)

    def nothing(self, uri: str, document_text: str, offset: int, key: object) -> Result | None:
        found = self._nothing.get(uri)
        if found is None:
            return None
        text, at, known, result = found
        if at != offset or known != key or (text is not document_text and text != document_text):
            return None
        return result

    def retire(self, suggestion_id: str) -> None:
        """A rejected suggestion is not offered again from the cache (the model may, afresh)."""
        for uri, entries in self._shown.items():
            kept = [entry for entry in entries if entry.result.id != suggestion_id]
            if len(kept) != len(entries):
                self._shown[uri] = deque(kept, maxlen=CACHE_PER_DOCUMENT)
