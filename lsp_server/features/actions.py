"""Code actions on diagnostics (Explain this error, and on our own comments Apply fix, Dismiss,
Explain in detail) and hover (an explanation shown again on its line)."""

from __future__ import annotations

from lsprotocol import types

from hintwise.lsp_server.features import protocol
from hintwise.lsp_server.features.review import fix_for
from hintwise.lsp_server.server import HintwiseServer


def _action(
    title: str, command: str, argument: dict, item: types.Diagnostic, preferred: bool = False
) -> types.CodeAction:
    return types.CodeAction(
        title=title,
        kind=types.CodeActionKind.QuickFix,
        diagnostics=[item],
        is_preferred=preferred or None,
        command=types.Command(title=title, command=command, arguments=[argument]),
    )


def _actions_for(ls: HintwiseServer, uri: str, item: types.Diagnostic) -> list[types.CodeAction]:
    explain = {"uri": uri, "diagnostic": ls.protocol._converter.unstructure(item)}
    comment_id = item.data.get("id") if isinstance(item.data, dict) else None
    if item.source != protocol.SOURCE or comment_id not in ls.reviews.comments:
        return [_action("Explain this error (hintwise)", protocol.EXPLAIN, explain, item)]
    actions = []
    if fix_for(ls, comment_id) is not None:
        actions.append(_action("Apply fix", protocol.APPLY_FIX, {"id": comment_id}, item, True))
    actions.append(_action("Dismiss", protocol.DISMISS, {"id": comment_id}, item))
    actions.append(_action("Explain in detail", protocol.EXPLAIN, explain, item))
    return actions


def code_action(ls: HintwiseServer, params: types.CodeActionParams) -> list[types.CodeAction]:
    uri = params.text_document.uri
    diagnostics = params.context.diagnostics or []
    foreign = protocol.foreign_lines(diagnostics)
    if foreign:
        ls.reviews.flagged.setdefault(uri, set()).update(foreign)
    return [action for item in diagnostics for action in _actions_for(ls, uri, item)]


def hover(ls: HintwiseServer, params: types.HoverParams) -> types.Hover | None:
    uri, line = params.text_document.uri, params.position.line
    explanation = ls.explanations.at(uri, line)
    if explanation is None:
        return None
    ls.feedback.insights.hovered(explanation.id)
    return types.Hover(
        contents=types.MarkupContent(kind=types.MarkupKind.Markdown, value=explanation.markdown)
    )


def register(server: HintwiseServer) -> None:
    server.feature(
        types.TEXT_DOCUMENT_CODE_ACTION,
        types.CodeActionOptions(code_action_kinds=[types.CodeActionKind.QuickFix]),
    )(code_action)
    server.feature(types.TEXT_DOCUMENT_HOVER)(hover)
