"""textDocument/inlineCompletion and textDocument/completion: the pipeline's answer as items that
carry the `hintwise.accept` command and the gate's scores."""

from __future__ import annotations

import logging
import re

from lsprotocol import types

from hintwise.lsp_server.code.documents import Document
from hintwise.lsp_server.completion.cache import TypingCache
from hintwise.lsp_server.completion.result import Result
from hintwise.lsp_server.features import protocol
from hintwise.lsp_server.server import HintwiseServer

log = logging.getLogger("hintwise")

_WORD_BEFORE = re.compile(r"[\w$]*$")


def _gate(result: Result) -> dict:
    """The gate's scores, for plugins that adapt their debounce to them (as Copilot does)."""
    scores = result.gate_scores()
    return {"gate": scores.get("post", scores.get("pre")), "pre": scores.get("pre")}


def _accept(result: Result) -> types.Command:
    return types.Command(
        title="Accept suggestion", command=protocol.ACCEPT, arguments=[result.id, _gate(result)]
    )


def _position(document: Document, offset: int) -> types.Position:
    line, character = document.position_at(offset)
    return types.Position(line=line, character=character)


def check_adapter(ls: HintwiseServer) -> None:
    """Reload the model (on its worker thread) when `hintwise tune` installed or reverted an
    adapter; the suggestions cached for typing along came from the old one."""
    if ls.engines.check_adapter():
        ls.completer.cache = TypingCache()


async def suggest(
    ls: HintwiseServer, uri: str, position: types.Position, automatic: bool
) -> tuple[Document, Result] | None:
    """Run the completion pipeline for a client request; None when there is nothing to show."""
    document = ls.documents.get(uri)
    if document is None:
        return None
    offset = document.offset_at(position.line, position.character)
    outcomes = ls.feedback.completions
    outcomes.moved_to(uri, offset)
    check_adapter(ls)
    result = await ls.completer.complete(document, offset, ls.settings.completion, automatic)
    log.debug(
        "completion %s:%d → %r (%s, %.0f ms)",
        uri,
        offset,
        result.text,
        result.reason,
        result.latency_ms.get("total", 0.0),
    )
    outcomes.requested(result)
    if result.text:
        outcomes.shown(result, document, ls.engines.provenance())
        for other in result.alternatives if not automatic else ():
            outcomes.shown_alternative(other, document, ls.engines.provenance())
    if not result.text:
        return None
    return document, result


def inline_items(
    document: Document, result: Result, alternatives: bool = False
) -> types.InlineCompletionList:
    """The suggestion, then (with `alternatives`: an invoked request, which is what the
    editors' next/previous send) its runner-ups, each with its own id."""
    here = _position(document, result.offset)
    shown = [result, *(result.alternatives if alternatives else ())]
    return types.InlineCompletionList(
        items=[
            types.InlineCompletionItem(
                insert_text=item.text or "",
                range=types.Range(start=here, end=here),
                command=_accept(item),
            )
            for item in shown
        ]
    )


def _markdown_documentation(capabilities: types.ClientCapabilities) -> bool:
    completion = capabilities.text_document and capabilities.text_document.completion
    item = completion and completion.completion_item
    formats = (item and item.documentation_format) or ()
    return types.MarkupKind.Markdown in formats


def completion_items(
    document: Document, result: Result, markdown: bool = False
) -> types.CompletionList:
    """One item that replaces the word before the cursor, so clients filter it by that word."""
    text = result.text or ""
    line_start = document.text.rfind("\n", 0, result.offset) + 1
    before = _WORD_BEFORE.search(document.text[line_start : result.offset])
    word = before.group(0) if before else ""
    full = word + text
    first_line = full.split("\n", 1)[0]
    label = first_line if len(first_line) <= 60 else first_line[:57] + "…"
    if "\n" in full:
        label += " …"
    edit_range = types.Range(
        start=_position(document, result.offset - len(word)), end=_position(document, result.offset)
    )
    item = types.CompletionItem(
        label=label,
        kind=types.CompletionItemKind.Text,
        detail=f"hintwise · {result.model}",
        documentation=(
            types.MarkupContent(
                kind=types.MarkupKind.Markdown, value=f"```{document.language_id}\n{full}\n```"
            )
            if markdown
            else full
        ),
        filter_text=full,
        sort_text="0",
        preselect=True,
        insert_text_format=types.InsertTextFormat.PlainText,
        text_edit=types.TextEdit(range=edit_range, new_text=full),
        command=_accept(result),
        data={"id": result.id, **_gate(result)},
    )
    return types.CompletionList(is_incomplete=True, items=[item])


async def inline_completion(
    ls: HintwiseServer, params: types.InlineCompletionParams
) -> types.InlineCompletionList:
    automatic = params.context.trigger_kind == types.InlineCompletionTriggerKind.Automatic
    found = await suggest(ls, params.text_document.uri, params.position, automatic)
    if found is None:
        return types.InlineCompletionList(items=[])
    return inline_items(*found, alternatives=not automatic)


async def completion(ls: HintwiseServer, params: types.CompletionParams) -> types.CompletionList:
    context = params.context
    automatic = context is not None and context.trigger_kind != types.CompletionTriggerKind.Invoked
    found = await suggest(ls, params.text_document.uri, params.position, automatic)
    if found is None:
        return types.CompletionList(is_incomplete=True, items=[])
    return completion_items(*found, markdown=_markdown_documentation(ls.client_capabilities))


def register(server: HintwiseServer) -> None:
    server.feature(types.TEXT_DOCUMENT_INLINE_COMPLETION, types.InlineCompletionOptions())(
        inline_completion
    )
    server.feature(types.TEXT_DOCUMENT_COMPLETION, types.CompletionOptions())(completion)
