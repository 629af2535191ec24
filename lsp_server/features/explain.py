"""`hintwise.explain` (an error at a line, or a diagnostic), `hintwise.explainTraceback` and
`hintwise.rateExplanation`."""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path
from typing import Any

from lsprotocol import types
from pygls.exceptions import JsonRpcInvalidParams

from hintwise.lsp_server.code.documents import uri_path
from hintwise.lsp_server.code.syntax import CodeError, language_for_path
from hintwise.lsp_server.engines.background import Cancelled, run_background
from hintwise.lsp_server.explain import repair, tracing
from hintwise.lsp_server.explain.answer import Explanation, explain
from hintwise.lsp_server.explain.question import Question, question_at, traceback_question
from hintwise.lsp_server.explain.tracebacks import TracebackError
from hintwise.lsp_server.features import protocol
from hintwise.lsp_server.server import HintwiseServer
from hintwise.models.worker import Priority

log = logging.getLogger("hintwise")


def _root(ls: HintwiseServer) -> Path | None:
    try:
        root = ls.workspace.root_path
    except Exception:
        root = None
    return Path(root) if root else None


def _read(ls: HintwiseServer, path: Path) -> str:
    """An open document's text (what the user sees), else the file on disk when it is in the
    workspace: a client must not make the server echo `/etc/...` into an answer and the store."""
    document = ls.documents.get(path.as_uri())
    if document is not None:
        return document.text
    if not ls.in_workspace(path):
        raise OSError(f"{path} is outside the workspace")
    return path.read_text(encoding="utf-8", errors="surrogateescape")


def _diagnostic_fields(value: Any) -> tuple[int, str]:
    """(line, message) of an LSP Diagnostic given as JSON."""
    if not isinstance(value, dict):
        raise JsonRpcInvalidParams("diagnostic must be an LSP Diagnostic object")
    start = (value.get("range") or {}).get("start") or {}
    line, message = start.get("line"), value.get("message")
    if not isinstance(line, int) or not isinstance(message, str):
        raise JsonRpcInvalidParams("diagnostic needs range.start.line and message")
    source = value.get("source")
    return line, f"{source}: {message}" if source and source != protocol.SOURCE else message


def _error_at(ls: HintwiseServer, value: dict) -> tuple[int, str]:
    """(line, message) of `{diagnostic}` or `{line, message}`; "Explain in detail" on one of
    our review comments is recorded as such."""
    if "diagnostic" in value:
        line, message = _diagnostic_fields(value["diagnostic"])
        data = value["diagnostic"].get("data")
        comment_id = data.get("id") if isinstance(data, dict) else None
        if comment_id in ls.reviews.comments:
            ls.feedback.insights.expanded(comment_id)
        return line, message
    if isinstance(value.get("line"), int) and isinstance(value.get("message"), str):
        return value["line"], value["message"]
    raise JsonRpcInvalidParams("give {uri, diagnostic} or {uri, line, message}")


def _source(ls: HintwiseServer, uri: str) -> tuple[str, str]:
    """(text, language) of an open document or a readable file."""
    document = ls.documents.get(uri)
    if document is not None:
        return document.text, document.language_id
    path = uri_path(uri)
    if path is not None and path.is_file():
        if not ls.in_workspace(path):
            raise JsonRpcInvalidParams(f"{uri} is neither open nor in the workspace")
        text = path.read_text(encoding="utf-8", errors="surrogateescape")
        return text, language_for_path(str(path))
    raise JsonRpcInvalidParams(f"{uri} is neither open nor a readable file")


async def _answer(ls: HintwiseServer, question: Question, context: dict, show: bool) -> dict:
    max_tokens = ls.settings.explain.max_tokens

    def step(engine, cancelled):
        result = explain(engine, question, cancelled, max_tokens)
        return result, result is not None

    key = f"explain:{context.get('uri')}:{context.get('line')}"
    token = await ls.begin_progress("hintwise: explaining")
    try:
        result = await run_background(ls.engines.worker_for("explain"), step, key)
    except Cancelled:
        raise JsonRpcInvalidParams("the explanation was superseded by a newer one") from None
    except Exception as error:  # no model, for instance: a clear message, no crash
        ls.tell(f"hintwise: cannot explain: {error}", types.MessageType.Error)
        raise JsonRpcInvalidParams(f"cannot explain: {error}") from None
    finally:
        ls.end_progress(token, "done")
    ls.explanations.remember(result, context)
    ls.feedback.insights.explanation_shown(result, question, ls.engines.model_name("explain"))
    if show:
        await _show(ls, result)
    return result.to_json()


async def _show(ls: HintwiseServer, result: Explanation) -> None:
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


async def explain_command(ls: HintwiseServer, *args: Any) -> dict:
    value = protocol.command_object(args, "uri")
    uri = value["uri"]
    line, message = _error_at(ls, value)
    if not isinstance(uri, str):
        raise JsonRpcInvalidParams("uri must be a string")
    text, language = _source(ls, uri)
    path, root = uri_path(uri), _root(ls)
    display = str(path.relative_to(root)) if path and root and path.is_relative_to(root) else uri
    question = question_at(text, language, line, message, uri, display)
    context = {"uri": uri, "line": line}
    return await _answer(ls, question, context, value.get("show") is not False)


async def explain_traceback(ls: HintwiseServer, *args: Any) -> dict:
    value = protocol.command_object(args, "text")
    if not isinstance(value["text"], str) or not value["text"].strip():
        raise JsonRpcInvalidParams("text must be a traceback")
    root = _root(ls)
    try:
        question, _, notes = traceback_question(value["text"], root, lambda p: _read(ls, p))
    except (TracebackError, CodeError) as error:
        ls.warn_once(f"hintwise: {error}")
        raise JsonRpcInvalidParams(str(error)) from None
    question.facts.extend(notes)
    target = tracing.target_from_traceback(value["text"], root) if root else None
    if ls.settings.explain.run and target is not None and root is not None:
        await _run(ls, question, target, root)
    context = {"uri": question.uri, "line": question.line}
    return await _answer(ls, question, context, value.get("show") is not False)


async def _run(ls: HintwiseServer, question: Question, target: tuple[str, str], root: Path):
    """`explain.run`: the failing target re-run sandboxed (off the event loop and off the model
    thread), and with `explain.repair` the search for a verified fix; its facts join the
    question's."""
    settings = ls.settings.explain
    worker = ls.engines.worker_for("explain")

    def score(suspect: Question) -> list:
        """On the model thread, waited for from the repair's thread (never the event loop)."""

        def step(engine, cancelled):
            return repair.model_scores(engine, suspect, cancelled)

        try:
            return worker.submit(step, Priority.BACKGROUND).future.result() or []
        except Exception:  # no model, say: the edits are then ranked by kind alone
            log.debug("no token scores for the repair", exc_info=True)
            return []

    facts, _ = await asyncio.to_thread(repair.ground, question, target, root, settings, score)
    question.facts.extend(facts)


async def rate(ls: HintwiseServer, *args: Any) -> dict:
    value = protocol.command_object(args, "id", "helpful")
    explanation_id, helpful = value["id"], value["helpful"]
    if not isinstance(helpful, bool):
        raise JsonRpcInvalidParams("helpful must be true or false")
    if explanation_id not in ls.explanations.explanations:
        return {"rated": False, "reason": "unknown or expired explanation id"}
    ls.feedback.insights.rated(explanation_id, helpful)
    await ls.persisted()
    return {"rated": True, "id": explanation_id}


def register(server: HintwiseServer) -> None:
    server.command(protocol.EXPLAIN)(explain_command)
    server.command(protocol.EXPLAIN_TRACEBACK)(explain_traceback)
    server.command(protocol.RATE)(rate)
