"""pygls' protocol without pygls' own copy of each document.

pygls splits lines with `str.splitlines`, which also breaks at form feeds and U+2028 (LSP does
not), so its copy goes wrong on such files; it also re-walks the whole document in Python on every
keystroke. hintwise keeps its own copy (code/documents.py); these overrides hand document
notifications straight to hintwise's handlers.
"""

from __future__ import annotations

from lsprotocol import types
from pygls.protocol import LanguageServerProtocol, lsp_method


class HintwiseProtocol(LanguageServerProtocol):
    """Document notifications go to hintwise's handlers only (see the module docstring)."""

    def _handler(self, method: str):
        return self.fm.features.get(method)

    @lsp_method(types.TEXT_DOCUMENT_DID_OPEN)
    def lsp_text_document__did_open(self, params: types.DidOpenTextDocumentParams):
        if (handler := self._handler(types.TEXT_DOCUMENT_DID_OPEN)) is not None:
            yield handler, (params,), None

    @lsp_method(types.TEXT_DOCUMENT_DID_CHANGE)
    def lsp_text_document__did_change(self, params: types.DidChangeTextDocumentParams):
        if (handler := self._handler(types.TEXT_DOCUMENT_DID_CHANGE)) is not None:
            yield handler, (params,), None

    @lsp_method(types.TEXT_DOCUMENT_DID_CLOSE)
    def lsp_text_document__did_close(self, params: types.DidCloseTextDocumentParams):
        if (handler := self._handler(types.TEXT_DOCUMENT_DID_CLOSE)) is not None:
            yield handler, (params,), None
