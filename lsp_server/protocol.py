"""pygls' protocol without pygls' own copy of each document.

pygls splits lines with `str.splitlines`, which also breaks at form feeds and U+2028 (LSP does
not), so its copy goes wrong on such files; it also re-walks the whole document in Python on every
keystroke. hintwise keeps its own copy (code/documents.py); these overrides hand document
notifications straight to hintwise's handlers.
"""

from __future__ import annotations

import logging
from typing import Any

from lsprotocol import types
from pygls.protocol import LanguageServerProtocol, lsp_method
from pygls.protocol.json_rpc import JsonRPCResponseMessage

log = logging.getLogger("hintwise")


def _is_response(data: Any) -> bool:
    return isinstance(data, dict) and "id" in data and "method" not in data and "error" not in data


class HintwiseProtocol(LanguageServerProtocol):
    """Document notifications go to hintwise's handlers only (see the module docstring)."""

    def structure_message(self, data: dict[str, Any]):
        """A client's answer to our request that does not fit its type (`null` for
        workspace/configuration) reaches the waiting caller as it came, instead of failing
        in pygls, which leaves the caller waiting and shows the user "Invalid Params"."""
        if not _is_response(data):
            return super().structure_message(data)
        expected = self._result_types.get(data["id"])
        try:
            return super().structure_message(data)
        except Exception:
            log.warning("an answer of the client does not fit %s: %.200r", expected, data)
            return self._converter.structure(
                {"id": data["id"], "jsonrpc": data.get("jsonrpc", "2.0"), "result": None},
                JsonRPCResponseMessage,
            )

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
