"""`hintwise.explain`, `hintwise.explainTraceback`, `hintwise.rateExplanation`, the code actions
on diagnostics (Explain this error, Apply fix, Dismiss, Explain in detail) and hover."""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path

from lsprotocol import types
from pygls.exceptions import JsonRpcInvalidParams

from hintwise.lsp_server import explain, tracing
from hintwise.lsp_server.explain import uri_path
from hintwise.lsp_server.features.review import (
    APPLY_FIX_COMMAND,
    DISMISS_COMMAND,
    SOURCE,
    arguments,
    fix_edit,
    foreign_lines,
    progress,
)
from hintwise.lsp_server.review import ReviewError
from hintwise.lsp_server.reviewer import Cancelled, run_background
from hintwise.lsp_server.server import HintwiseServer
from hintwise.telemetry.records import Event, Suggestion

log = logging.getLogger("hintwise")

EXPLAIN_COMMAND = "hintwise.explain"
EXPLAIN_TRACEBACK_COMMAND = "hintwise.explainTraceback"
RATE_COMMAND = "hintwise.rateExplanation"


def _root(ls: HintwiseServer) -> Path | None:
    try:
        root = ls.workspace.root_path
    except Exception:
        root = None
    return Path(root) if root else None


def _read(ls: HintwiseServer, path: Path) -> str:
    """An open document's text (what the user sees), else the file on disk."""
    document = ls.documents.get(path.as_uri())
    if document is not None:
        return document.text
    return path.read_text(encoding="utf-8", errors="surrogateescape")


def _diagnostic_fields(value) -> tuple[int, str]:
    """(line, message) of an LSP Diagnostic given as JSON."""
    if not isinstance(value, dict):
        raise JsonRpcInvalidParams("diagnostic must be an LSP Diagnostic object")
    start = (value.get("range") or {}).get("start") or {}
    line, message = start.get("line"), value.get("message")
    if not isinstance(line, int) or not isinstance(message, str):
        raise JsonRpcInvalidParams("diagnostic needs range.start.line and message")
    source = value.get("source")
    return line, f"{source}: {message}" if source and source != SOURCE else message


async def _answer(ls: HintwiseServer, question: explain.Question, context: dict, show: bool):
    max_tokens = ls.settings.explain.max_tokens

    def step(engine, cancelled):
        result = explain.explain(engine, question, cancelled, max_tokens)
        return result, result is not None

    key = f"explain:{context.get('uri')}:{context.get('line')}"
    token = await progress(ls, "hintwise: explaining")
    try:
        worker = ls.worker_for("explain")
        result = await run_background(worker, step, key)
    except Cancelled:
        raise JsonRpcInvalidParams("the explanation was superseded by a newer one") from None
    except Exception as error:  # no model, for instance: a clear message, no crash
        ls.tell(f"hintwise: cannot explain: {error}", types.MessageType.Error)
        raise JsonRpcInvalidParams(f"cannot explain: {error}") from None
    finally:
        if token is not None:
            ls.work_done_progress.end(token, types.WorkDoneProgressEnd(message="done"))
    ls.insights.remember(result, context)
    engine = ls.worker_for("explain").engine
    ls.writer.record(
        Suggestion(
            id=result.id,
            kind="explanation",
            language=question.language,
            file=question.uri,
            model=engine.info.name if engine is not None else None,
            prompt=result.prompt,
            text=result.markdown,
            line=question.line,
            category=(question.message.split(":", 1)[0] or "error")[:60],
            latency={"explain": result.latency_ms},
            detail={"culprit": result.culprit, "facts": result.facts, "fix": result.fix},
        )
    )
    ls.writer.record(Event(suggestion_id=result.id, kind="shown"))
    if show:
        await _show(ls, result)
    return result.to_json()


async def _show(ls: HintwiseServer, result: explain.Explanation) -> None:
    """showDocument of a markdown file where the client supports it, else showMessage."""
    window = ls.client_capabilities.window
    if window is not None and window.show_document is not None and window.show_document.support:
        folder = ls.settings.data_path / "explanations"
        try:
            folder.mkdir(parents=True, exist_ok=True)
            path = folder / f"{result.id}.md"
            path.write_text(result.markdown, encoding="utf-8")
            answer = await ls.window_show_document_async(
                types.ShowDocumentParams(uri=path.as_uri(), take_focus=False)
            )
            if answer.success:
                return
        except Exception:
            log.debug("showDocument failed; falling back to showMessage", exc_info=True)
    ls.window_show_message(
        types.ShowMessageParams(type=types.MessageType.Info, message=result.markdown)
    )


def register(server: HintwiseServer) -> None:
    @server.command(EXPLAIN_COMMAND)
    async def explain_command(ls: HintwiseServer, *args) -> dict:
        value = arguments(args, "uri")
        uri = value["uri"]
        if "diagnostic" in value:
            line, message = _diagnostic_fields(value["diagnostic"])
            data = value["diagnostic"].get("data")
            comment_id = data.get("id") if isinstance(data, dict) else None
            if comment_id in ls.insights.comments:  # "Explain in detail" on a review comment
                ls.writer.record(Event(suggestion_id=comment_id, kind="expanded"))
        elif isinstance(value.get("line"), int) and isinstance(value.get("message"), str):
            line, message = value["line"], value["message"]
        else:
            raise JsonRpcInvalidParams("give {uri, diagnostic} or {uri, line, message}")
        if not isinstance(uri, str):
            raise JsonRpcInvalidParams("uri must be a string")
        document = ls.documents.get(uri)
        path = uri_path(uri)
        if document is not None:
            text, language = document.text, document.language_id
        elif path is not None and path.is_file():
            text = path.read_text(encoding="utf-8", errors="surrogateescape")
            from hintwise.lsp_server.syntax import language_for_path

            language = language_for_path(str(path))
        else:
            raise JsonRpcInvalidParams(f"{uri} is neither open nor a readable file")
        root = _root(ls)
        display = (
            str(path.relative_to(root)) if path and root and path.is_relative_to(root) else uri
        )
        question = explain.question_at(text, language, line, message, uri, display)
        return await _answer(
            ls, question, {"uri": uri, "line": line}, value.get("show") is not False
        )

    @server.command(EXPLAIN_TRACEBACK_COMMAND)
    async def explain_traceback(ls: HintwiseServer, *args) -> dict:
        value = arguments(args, "text")
        if not isinstance(value["text"], str) or not value["text"].strip():
            raise JsonRpcInvalidParams("text must be a traceback")
        try:
            question, _, notes = explain.traceback_question(
                value["text"], _root(ls), lambda p: _read(ls, p)
            )
        except ReviewError as error:
            ls.tell(f"hintwise: {error}", types.MessageType.Warning)
            raise JsonRpcInvalidParams(str(error)) from None
        question.facts.extend(notes)
        root = _root(ls)
        target = tracing.target_from_traceback(value["text"], root) if root else None
        if ls.settings.explain.run and target is not None:
            result = await asyncio.to_thread(
                tracing.run_traced,
                *target,
                root,
                uri_path(question.uri) if question.uri else None,
                question.function,
                ls.settings.explain.run_timeout_s,
                ls.settings.explain.run_memory_mb,
            )
            question.facts.extend(result.facts)
        context = {"uri": question.uri, "line": question.line}
        return await _answer(ls, question, context, value.get("show") is not False)

    @server.command(RATE_COMMAND)
    def rate(ls: HintwiseServer, *args) -> dict:
        value = arguments(args, "id", "helpful")
        explanation_id, helpful = value["id"], value["helpful"]
        if not isinstance(helpful, bool):
            raise JsonRpcInvalidParams("helpful must be true or false")
        if explanation_id not in ls.insights.explanations:
            return {"rated": False, "reason": "unknown or expired explanation id"}
        ls.writer.record(Event(suggestion_id=explanation_id, kind="rated", value=float(helpful)))
        ls.writer.record(
            Event(suggestion_id=explanation_id, kind="accepted")
            if helpful
            else Event(suggestion_id=explanation_id, kind="rejected", reason="explicit")
        )
        return {"rated": True, "id": explanation_id}

    @server.feature(
        types.TEXT_DOCUMENT_CODE_ACTION,
        types.CodeActionOptions(code_action_kinds=[types.CodeActionKind.QuickFix]),
    )
    def code_action(ls: HintwiseServer, params: types.CodeActionParams) -> list[types.CodeAction]:
        uri = params.text_document.uri
        diagnostics = params.context.diagnostics or []
        foreign = foreign_lines(diagnostics)
        if foreign:
            ls.insights.flagged.setdefault(uri, set()).update(foreign)
        actions: list[types.CodeAction] = []
        for item in diagnostics:
            encoded = ls.protocol._converter.unstructure(item)
            comment_id = item.data.get("id") if isinstance(item.data, dict) else None
            ours = item.source == SOURCE and comment_id in ls.insights.comments
            if ours:
                if fix_edit(ls, comment_id) is not None:
                    actions.append(
                        _action("Apply fix", APPLY_FIX_COMMAND, {"id": comment_id}, item, True)
                    )
                actions.append(_action("Dismiss", DISMISS_COMMAND, {"id": comment_id}, item))
                actions.append(
                    _action(
                        "Explain in detail",
                        EXPLAIN_COMMAND,
                        {"uri": uri, "diagnostic": encoded},
                        item,
                    )
                )
            else:
                actions.append(
                    _action(
                        "Explain this error (hintwise)",
                        EXPLAIN_COMMAND,
                        {"uri": uri, "diagnostic": encoded},
                        item,
                    )
                )
        return actions

    @server.feature(types.TEXT_DOCUMENT_HOVER)
    def hover(ls: HintwiseServer, params: types.HoverParams) -> types.Hover | None:
        key = (params.text_document.uri, params.position.line)
        explanation_id = ls.insights.by_place.get(key)
        if explanation_id is None:
            return None
        explanation, _ = ls.insights.explanations[explanation_id]
        ls.writer.record(Event(suggestion_id=explanation_id, kind="seen"))
        return types.Hover(
            contents=types.MarkupContent(kind=types.MarkupKind.Markdown, value=explanation.markdown)
        )


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
