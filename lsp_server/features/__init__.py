"""The LSP handlers, one module per concern, each a thin layer over the services the server holds:

lifecycle.py    initialize, initialized, configuration changes, shutdown
status.py       hintwise/status
documents.py    didOpen / didChange / didClose, hintwise/didMoveCursor
completion.py   textDocument/inlineCompletion, textDocument/completion
feedback.py     hintwise.accept, hintwise/didShow, didPartiallyAccept, didReject
review.py       didSave, hintwise.review, applyFix, dismissComment, didPublishDiagnostics
explain.py      hintwise.explain, explainTraceback, rateExplanation
actions.py      code actions on diagnostics, hover
editor.py       hintwise.stats, hintwise.exportFeedback
protocol.py     the names of hintwise's commands and notifications; reading their arguments
"""

from __future__ import annotations

from hintwise.lsp_server import config
from hintwise.lsp_server.features import (
    actions,
    completion,
    documents,
    editor,
    explain,
    feedback,
    lifecycle,
    review,
    status,
)
from hintwise.lsp_server.server import HintwiseServer

MODULES = (lifecycle, status, documents, completion, feedback, review, explain, actions, editor)


def create_server(
    settings: config.Settings | None = None, overrides: dict | None = None
) -> HintwiseServer:
    """A server with every handler registered."""
    server = HintwiseServer(settings, overrides)
    for module in MODULES:
        module.register(server)
    return server
