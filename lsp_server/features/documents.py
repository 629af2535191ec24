"""didOpen / didChange / didClose: keep hintwise's copy of each document and warm its prompt."""

from __future__ import annotations

import time

from lsprotocol import types

from hintwise.lsp_server.context import CHARS_PER_TOKEN
from hintwise.lsp_server.documents import Document
from hintwise.lsp_server.server import HintwiseServer
from hintwise.lsp_server.syntax import language_for_path


def opening_offset(document: Document, prefix_tokens: int) -> int:
    """Where to warm a freshly opened file: the end of its first prompt window.

    Windows start at the top of files shorter than the budget, so warming that window makes
    every position in such a file warm; in longer files it covers the top, where editors
    usually put the cursor on open.
    """
    limit = prefix_tokens * CHARS_PER_TOKEN // 2
    if len(document.text) <= limit:
        return len(document.text)
    end = document.text.rfind("\n", 0, limit)
    return end if end > 0 else limit


CURSOR_NOTIFICATION = "hintwise/didMoveCursor"


def cursor_place(params) -> tuple[str, int, int] | None:
    """(uri, line, character) from `{"textDocument": {"uri"}, "position": {"line",
    "character"}}`, or None when the params do not say that (bad input is ignored)."""

    def get(value, name):
        return value.get(name) if isinstance(value, dict) else getattr(value, name, None)

    uri = get(get(params, "textDocument"), "uri") or get(get(params, "text_document"), "uri")
    position = get(params, "position")
    line, character = get(position, "line"), get(position, "character")
    if not isinstance(uri, str) or not isinstance(line, int) or not isinstance(character, int):
        return None
    return uri, max(0, line), max(0, character)


def register(server: HintwiseServer) -> None:
    @server.feature(types.TEXT_DOCUMENT_DID_OPEN)
    def did_open(ls: HintwiseServer, params: types.DidOpenTextDocumentParams) -> None:
        item = params.text_document
        language = item.language_id
        if not language or language == "plaintext":
            language = language_for_path(item.uri)
        document = ls.documents.open(item.uri, language, item.version, item.text)
        ls.last_change[item.uri] = time.monotonic()
        if ls.completer is not None:
            settings = ls.settings.completion
            ls.completer.prewarm(
                document, opening_offset(document, settings.prefix_tokens), settings
            )

    @server.feature(types.TEXT_DOCUMENT_DID_CHANGE)
    def did_change(ls: HintwiseServer, params: types.DidChangeTextDocumentParams) -> None:
        document = ls.documents.get(params.text_document.uri)
        if document is None:
            return
        end_offset = None
        for change in params.content_changes:
            if isinstance(change, types.TextDocumentContentChangePartial):
                start = (change.range.start.line, change.range.start.character)
                end = (change.range.end.line, change.range.end.character)
                start_offset = document.offset_at(*start)
                removed = max(0, document.offset_at(*end) - start_offset)
                document.apply_change(change.text, start, end)
                end_offset = start_offset + len(change.text)
                if ls.feedback is not None:
                    ls.feedback.document_changed(document, start_offset, removed, change.text)
                if ls.gate is not None and ls.clock is not None:
                    ls.gate.session.edited(ls.clock.now(), len(change.text))
            else:
                document.apply_change(change.text, None, None)
        document.version = params.text_document.version
        now = time.monotonic()
        paused = now - ls.last_change.get(document.uri, 0.0)
        ls.last_change[document.uri] = now
        settings = ls.settings.completion
        warm = end_offset is not None and paused * 1000 >= settings.prewarm_pause_ms
        if warm and ls.completer is not None:
            ls.completer.prewarm(document, end_offset, settings)

    @server.feature(CURSOR_NOTIFICATION)
    def did_move_cursor(ls: HintwiseServer, params) -> None:
        """Our editor plugins report where the cursor rests (on opening a file, after moving).

        LSP tells a server nothing about the cursor until a request comes, so on open only the
        top of a file can be warmed; with this, a file reopened deep inside is warm by the time
        the user types. Warmed once the cursor has rested `completion.prewarm_pause_ms`, so
        scrolling through a file does not keep the CPU busy.
        """
        place = cursor_place(params)
        document = ls.documents.get(place[0]) if place else None
        if document is None or ls.completer is None or ls.clock is None or place is None:
            return
        uri, line, character = place
        pending = ls.cursor_timers.pop(uri, None)
        if pending is not None:
            pending.cancel()
        settings = ls.settings.completion

        def rested() -> None:
            ls.cursor_timers.pop(uri, None)
            if ls.completer is not None and ls.documents.get(uri) is document:
                ls.completer.prewarm(document, document.offset_at(line, character), settings)

        ls.cursor_timers[uri] = ls.clock.call_later(settings.prewarm_pause_ms / 1000, rested)

    @server.feature(types.TEXT_DOCUMENT_DID_CLOSE)
    def did_close(ls: HintwiseServer, params: types.DidCloseTextDocumentParams) -> None:
        uri = params.text_document.uri
        ls.documents.close(uri)
        ls.last_change.pop(uri, None)
        pending = ls.cursor_timers.pop(uri, None)
        if pending is not None:
            pending.cancel()
        if ls.feedback is not None:
            ls.feedback.closed(uri)
        if ls.completer is not None:
            ls.completer.forget(uri)
