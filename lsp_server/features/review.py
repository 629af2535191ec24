"""On-save review (didSave, `hintwise.review`), its diagnostics, and the comment commands
`hintwise.applyFix` / `hintwise.dismissComment`."""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path
from typing import Any

from lsprotocol import types
from pygls.exceptions import JsonRpcInvalidParams

from hintwise.lsp_server.code.documents import Document, uri_path
from hintwise.lsp_server.code.syntax import CodeError
from hintwise.lsp_server.code.units import Unit, changed_units, find_units
from hintwise.lsp_server.engines.background import Cancelled, run_background
from hintwise.lsp_server.features import protocol
from hintwise.lsp_server.feedback.insights import review_outcomes
from hintwise.lsp_server.review import static
from hintwise.lsp_server.review.comments import Comment
from hintwise.lsp_server.review.learning import label
from hintwise.lsp_server.review.reviewer import review_unit
from hintwise.lsp_server.review.static import is_static
from hintwise.lsp_server.server import HintwiseServer

log = logging.getLogger("hintwise")

_SEVERITY = {
    "error": types.DiagnosticSeverity.Error,
    "warning": types.DiagnosticSeverity.Warning,
    "info": types.DiagnosticSeverity.Information,
}


def diagnostic(document: Document, comment: Comment) -> types.Diagnostic:
    line = min(comment.line, document.line_count() - 1)
    text = document.line_text(line)
    start = document.position_at(document.offset_at(line, 0) + comment.start_character)
    end = document.position_at(
        document.offset_at(line, 0) + max(comment.end_character, len(text.rstrip()))
        if comment.end_character <= comment.start_character
        else document.offset_at(line, 0) + comment.end_character
    )
    return types.Diagnostic(
        range=types.Range(
            start=types.Position(line=start[0], character=start[1]),
            end=types.Position(line=end[0], character=end[1]),
        ),
        message=comment.message,
        severity=_SEVERITY.get(comment.severity, types.DiagnosticSeverity.Warning),
        source=protocol.SOURCE,
        code=comment.kind or "review",
        data={"id": comment.id, "fix": comment.replacement is not None},
    )


def publish(ls: HintwiseServer, uri: str) -> int:
    """Send the document's current comments as diagnostics; how many."""
    document = ls.documents.get(uri)
    if document is None:
        return 0
    try:
        units = find_units(document.text, document.language_id)
    except CodeError:
        units = []
    comments = ls.reviews.publishable(uri, units, ls.settings.review.max_per_file)
    # Another server may have flagged a line since the review (its ruff, pyflakes, pylint...);
    # where the analyser found a defect, the model's comment on that line goes.
    flagged = ls.reviews.flagged.get(uri, set())
    static_lines = {c.line for c in comments if is_static(c)}
    comments = [c for c in comments if c.line not in (flagged if is_static(c) else static_lines)]
    ls.text_document_publish_diagnostics(
        types.PublishDiagnosticsParams(
            uri=uri,
            version=document.version,
            diagnostics=[diagnostic(document, c) for c in comments],
        )
    )
    return len(comments)


async def review_document(ls: HintwiseServer, uri: str, whole: bool = False) -> int:
    """Review the document's changed units (all of them with `whole`) and publish; the number
    of comments published. Raises Cancelled when the document changed meanwhile."""
    document = ls.documents.get(uri)
    if document is None:
        raise CodeError(f"{uri} is not open (or was closed before the review)")
    on_disk = uri_path(uri)
    if on_disk is not None and not on_disk.exists():
        ls.note(f"hintwise: {uri} no longer exists on disk; reviewing the open buffer")
    units = find_units(document.text, document.language_id)
    todo = units if whole else changed_units(units, ls.reviews.file(uri).digests)
    await _load_learned(ls)
    if todo:
        token = await ls.begin_progress(f"hintwise: reviewing {Path(uri).name}")
        finished = False
        ls.reviews.running[uri] = document.version
        try:
            await _review_units(ls, document, todo, token)
            finished = True
        finally:
            ls.reviews.running.pop(uri, None)
            ls.end_progress(token, "done" if finished else "cancelled")
    if ls.settings.review.static_checks:
        await _static_review(ls, document, units)
    return publish(ls, uri)


async def _static_review(ls: HintwiseServer, document: Document, units: list[Unit]) -> None:
    """The static analyser's findings for the whole document (off the event loop), de-duplicated
    against other servers' diagnostics and the kinds the user keeps dismissing. A missing or
    failing analyser leaves the review without them (said once in the log; `hintwise doctor`)."""
    uri, version = document.uri, document.version
    name = Path(uri_path(uri) or "review.py").name
    result = await asyncio.to_thread(static.check, document.text, document.language_id, name)
    current = ls.documents.get(uri)
    if current is not document or current.version != version:
        return
    if result.problem:
        if result.problem != ls.reviews.static_problem:
            ls.note(f"hintwise: reviewing without static checks: {result.problem}")
        ls.reviews.static_problem = result.problem
        return
    flagged = ls.reviews.flagged.get(uri, set())
    comments, dropped = static.comments_for(
        document.text, document.language_id, result.findings, flagged
    )
    label(document.text, document.language_id, comments)
    comments, hidden = ls.reviews.learned.keep(comments)
    new = ls.reviews.file(uri).store_static(units, comments)
    ls.feedback.insights.static_shown(uri, document.language_id, new, result.ms)
    if dropped or hidden or result.dropped:
        log.debug("static review %s dropped %s %s, hidden %d", uri, result.dropped, dropped, hidden)


async def _load_learned(ls: HintwiseServer) -> None:
    """Dismiss/apply counts per kind, read from the store once (and again if it moved)."""
    path = ls.feedback.path
    if ls.reviews.learned.source == path:
        return
    counts = await asyncio.to_thread(review_outcomes, path) if ls.feedback.settings.enabled else {}
    ls.reviews.learned.load(counts, path)


async def _review_units(
    ls: HintwiseServer, document: Document, todo: list[Unit], token: str | None
) -> None:
    """Each unit on the review worker, below completions; stops when the document changes."""
    uri, version = document.uri, document.version
    text, language = document.text, document.language_id
    flagged = set(ls.reviews.flagged.get(uri, set()))
    max_per_function = ls.settings.review.max_per_function
    worker = ls.engines.worker_for("review")

    def changed() -> bool:
        current = ls.documents.get(uri)
        return current is not document or current.version != version

    for index, unit in enumerate(todo):
        ls.report_progress(
            token, f"{unit.key} ({index + 1}/{len(todo)})", int(100 * index / len(todo))
        )

        def step(engine, cancelled, unit=unit):
            result = review_unit(engine, unit, text, language, flagged, max_per_function, cancelled)
            return result, result is not None

        result = await run_background(worker, step, f"review:{uri}", changed)
        label(text, language, result.comments)
        result.comments, hidden = ls.reviews.learned.keep(result.comments)
        if hidden:
            result.dropped["hidden: dismissed kind"] = hidden
        ls.reviews.file(uri).store(result)
        ls.feedback.insights.comments_shown(uri, language, ls.engines.model_name("review"), result)
        if result.dropped:
            log.debug("review %s %s dropped %s", uri, unit.key, result.dropped)


async def did_save(ls: HintwiseServer, params: types.DidSaveTextDocumentParams) -> None:
    """A review started by a save: problems are messages, never errors to the client."""
    uri = params.text_document.uri
    saved = ls.documents.get(uri)
    if saved is not None:
        ls.completer.project.saved(saved)  # a chunk of it for other files' prompts
    if not ls.settings.review.on_save or saved is None:
        return
    try:
        await review_document(ls, uri)
    except Cancelled:
        log.debug("review of %s cancelled: the document changed", uri)
    except CodeError as error:
        ls.note(f"hintwise: not reviewing {uri}: {error}")
    except Exception as error:
        log.warning("review of %s failed", uri, exc_info=True)
        ls.warn_once(f"hintwise: review failed: {error}")


async def review_command(ls: HintwiseServer, *args: Any) -> dict:
    uri = protocol.command_object(args, "uri")["uri"]
    if not isinstance(uri, str) or ls.documents.get(uri) is None:
        raise JsonRpcInvalidParams(f"{uri!r} is not an open document")
    try:
        count = await review_document(ls, uri, whole=True)
    except CodeError as error:
        ls.warn(f"hintwise: cannot review {uri}: {error}")
        return {"comments": 0, "error": str(error)}
    except Cancelled:
        return {"comments": 0, "cancelled": True}
    except Exception as error:  # a model that failed to load, for instance
        ls.tell(f"hintwise: review failed: {error}", types.MessageType.Error)
        return {"comments": 0, "error": str(error)}
    return {"comments": count}


async def dismiss(ls: HintwiseServer, *args: Any) -> dict:
    comment_id = protocol.command_object(args, "id")["id"]
    found = ls.reviews.dismiss(comment_id) if isinstance(comment_id, str) else None
    if found is None:
        return {"dismissed": False, "reason": "unknown or expired comment id"}
    ls.reviews.learned.note(found[1], "dismissed")
    ls.feedback.insights.dismissed(comment_id)
    publish(ls, found[0])
    await ls.persisted()
    return {"dismissed": True, "id": comment_id}


def fix_for(ls: HintwiseServer, fix_id: str) -> tuple[str, str, str] | None:
    """(uri, new text, old text) for a review comment's or an explanation's fix that parses."""
    return ls.reviews.fix(fix_id, ls.documents) or ls.explanations.fix(fix_id, ls.documents)


async def apply_fix(ls: HintwiseServer, *args: Any) -> dict:
    fix_id = protocol.command_object(args, "id")["id"]
    found = fix_for(ls, fix_id) if isinstance(fix_id, str) else None
    if found is None:
        return {"applied": False, "reason": "unknown id, or no fix that parses"}
    uri, new_text, old_text = found
    document = ls.documents.get(uri)
    if document is None:
        return {"applied": False, "reason": f"{uri} was closed"}
    end = document.position_at(len(old_text))
    whole = types.Range(
        start=types.Position(line=0, character=0),
        end=types.Position(line=end[0], character=end[1]),
    )
    edit = types.WorkspaceEdit(changes={uri: [types.TextEdit(range=whole, new_text=new_text)]})
    answer = await ls.workspace_apply_edit_async(
        types.ApplyWorkspaceEditParams(edit=edit, label="hintwise: apply fix")
    )
    if not answer.applied:
        return {"applied": False, "reason": answer.failure_reason or "the editor refused"}
    ls.feedback.insights.applied(fix_id)
    applied = ls.reviews.dismiss(fix_id)
    if applied is not None:
        ls.reviews.learned.note(applied[1], "applied")
        publish(ls, uri)
    await ls.persisted()
    return {"applied": True, "id": fix_id}


def forwarded_diagnostics(ls: HintwiseServer, params: Any) -> None:
    """Our plugins forward other servers' diagnostics, so reviews do not repeat them."""
    uri = protocol.value_of(params, "uri")
    items = protocol.value_of(params, "diagnostics")
    if isinstance(uri, str) and isinstance(items, list):
        ls.reviews.flagged[uri] = set(protocol.foreign_lines(items))


def register(server: HintwiseServer) -> None:
    server.feature(
        types.TEXT_DOCUMENT_DID_SAVE, types.TextDocumentSaveRegistrationOptions(include_text=False)
    )(did_save)
    server.command(protocol.REVIEW)(review_command)
    server.command(protocol.DISMISS)(dismiss)
    server.command(protocol.APPLY_FIX)(apply_fix)
    server.feature(protocol.DID_PUBLISH_DIAGNOSTICS)(forwarded_diagnostics)
