"""didOpen / didChange / didClose and our plugins' cursor notification: keep hintwise's copy of
each document and warm its prompt."""

from __future__ import annotations

import time
from typing import Any

from lsprotocol import types

from hintwise.lsp_server.code.documents import Document, minimal_change, without_lone_surrogates
from hintwise.lsp_server.code.syntax import language_for_path
from hintwise.lsp_server.completion.context import CHARS_PER_TOKEN
from hintwise.lsp_server.features import protocol
from hintwise.lsp_server.server import HintwiseServer


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


def did_open(ls: HintwiseServer, params: types.DidOpenTextDocumentParams) -> None:
    item = params.text_document
    language = item.language_id
    if not language or language == "plaintext":
        language = language_for_path(item.uri)
    document = ls.documents.open(item.uri, language, item.version, item.text)
    document.edited_at = time.monotonic()
    ls.completer.project.opened(document)
    settings = ls.settings.completion
    ls.completer.prewarm(document, opening_offset(document, settings.prefix_tokens), settings)


def _apply(ls: HintwiseServer, document: Document, change: Any) -> int:
    """Apply one content change as a range edit; the offset where its text ends."""
    if isinstance(change, types.TextDocumentContentChangePartial):
        start = document.offset_at(change.range.start.line, change.range.start.character)
        end = max(start, document.offset_at(change.range.end.line, change.range.end.character))
        inserted = change.text
    else:
        start, end, inserted = minimal_change(document.text, without_lone_surrogates(change.text))
    document.replace(start, end, inserted)
    ls.edited(document, start, end - start, inserted)
    return start + len(inserted)


def did_change(ls: HintwiseServer, params: types.DidChangeTextDocumentParams) -> None:
    document = ls.documents.get(params.text_document.uri)
    if document is None:
        return
    end_offset = None
    for change in params.content_changes:
        end_offset = _apply(ls, document, change)
    document.version = params.text_document.version
    now = time.monotonic()
    paused, document.edited_at = now - document.edited_at, now
    settings = ls.settings.completion
    if end_offset is not None and paused * 1000 >= settings.prewarm_pause_ms:
        ls.completer.prewarm(document, end_offset, settings)


def did_move_cursor(ls: HintwiseServer, params: Any) -> None:
    """Our editor plugins report where the cursor rests (on opening a file, after moving).

    LSP tells a server nothing about the cursor until a request comes, so on open only the top
    of a file can be warmed; with this, a file reopened deep inside is warm by the time the user
    types.
    """
    place = protocol.cursor_place(params)
    document = ls.documents.get(place[0]) if place is not None else None
    if place is not None and document is not None:
        ls.completer.project.visited(document, document.offset_at(place[1], place[2]))
        ls.prewarm_when_resting(document, place[1], place[2])


def did_close(ls: HintwiseServer, params: types.DidCloseTextDocumentParams) -> None:
    document = ls.documents.get(params.text_document.uri)
    if document is not None:
        ls.completer.project.closed(document)
    ls.closed(params.text_document.uri)


def register(server: HintwiseServer) -> None:
    server.feature(types.TEXT_DOCUMENT_DID_OPEN)(did_open)
    server.feature(types.TEXT_DOCUMENT_DID_CHANGE)(did_change)
    server.feature(protocol.DID_MOVE_CURSOR)(did_move_cursor)
    server.feature(types.TEXT_DOCUMENT_DID_CLOSE)(did_close)
