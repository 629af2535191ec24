"""Suggestions being typed along: a request whose typed text follows a shown suggestion is
answered from here, without the model.

Typing `re` into a shown `return x` must not call the model again: the answer is `turn x`.
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


class TypingCache:
    """Recent suggestions per document, answering a request whose typed text follows one."""

    def __init__(self) -> None:
        self._shown: dict[str, deque[_Shown]] = {}

    def add(self, uri: str, ctx: CursorContext, result: Result) -> None:
        entries = self._shown.setdefault(uri, deque(maxlen=CACHE_PER_DOCUMENT))
        entries.appendleft(_Shown(ctx.prefix_start, ctx.prefix, ctx.line_suffix, result))

    def lookup(self, uri: str, ctx: CursorContext) -> tuple[Result, str] | None:
        """The shown suggestion the typing follows and what is left of it, or None."""
        for entry in self._shown.get(uri, ()):
            text = entry.result.text or ""
            if entry.prefix_start != ctx.prefix_start or entry.line_suffix != ctx.line_suffix:
                continue
            if not ctx.prefix.startswith(entry.prefix):
                continue
            typed = ctx.prefix[len(entry.prefix) :]
            if text.startswith(typed) and len(typed) < len(text):
                return entry.result, text[len(typed) :]
        return None

    def forget(self, uri: str) -> None:
        self._shown.pop(uri, None)

    def retire(self, suggestion_id: str) -> None:
        """A rejected suggestion is not offered again from the cache (the model may, afresh)."""
        for uri, entries in self._shown.items():
            kept = [entry for entry in entries if entry.result.id != suggestion_id]
            if len(kept) != len(entries):
                self._shown[uri] = deque(kept, maxlen=CACHE_PER_DOCUMENT)
