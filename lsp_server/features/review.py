"""On-save review (didSave, `hintwise.review`), its diagnostics, and the comment commands
`hintwise.applyFix` / `hintwise.dismissComment`."""

from __future__ import annotations

import logging
import uuid
from pathlib import Path

from lsprotocol import types
from pygls.exceptions import JsonRpcInvalidParams

from hintwise.lsp_server import review
from hintwise.lsp_server.explain import uri_path
from hintwise.lsp_server.reviewer import Cancelled, run_background
from hintwise.lsp_server.server import HintwiseServer
from hintwise.telemetry.records import Event, Suggestion

log = logging.getLogger("hintwise")

REVIEW_COMMAND = "hintwise.review"
APPLY_FIX_COMMAND = "hintwise.applyFix"
DISMISS_COMMAND = "hintwise.dismissComment"
FOREIGN_DIAGNOSTICS = "hintwise/didPublishDiagnostics"
SOURCE = "hintwise"

_SEVERITY = {
    "error": types.DiagnosticSeverity.Error,
    "warning": types.DiagnosticSeverity.Warning,
    "info": types.DiagnosticSeverity.Information,
}


def arguments(args: tuple, *required: str) -> dict:
    """The one JSON object a hintwise command takes, with its required keys checked."""
    value = args[0] if len(args) == 1 else None
    if not isinstance(value, dict):
        raise JsonRpcInvalidParams("expected one JSON object as the command's argument")
    missing = [key for key in required if key not in value]
    if missing:
        raise JsonRpcInvalidParams(f"missing {', '.join(missing)} in the command's argument")
    return value


def diagnostic(document, comment: review.Comment) -> types.Diagnostic:
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
        source=SOURCE,
        code="review",
        data={"id": comment.id, "fix": comment.replacement is not None},
    )


def publish(ls: HintwiseServer, uri: str) -> int:
    """Send the document's current comments as diagnostics; how many."""
    document = ls.documents.get(uri)
    if document is None:
        return 0
    try:
        units = review.find_units(document.text, document.language_id)
    except review.ReviewError:
        units = []
    comments = ls.insights.publishable(uri, units, ls.settings.review.max_per_file)
    ls.text_document_publish_diagnostics(
        types.PublishDiagnosticsParams(
            uri=uri,
            version=document.version,
            diagnostics=[diagnostic(document, c) for c in comments],
        )
    )
    return len(comments)


def _record(ls: HintwiseServer, uri: str, language: str, result: review.UnitReview) -> None:
    engine = ls.worker_for("review").engine
    for comment in result.comments:
        ls.writer.record(
            Suggestion(
                id=comment.id,
                kind="review",
                language=language,
                file=uri,
                model=engine.info.name if engine is not None else None,
                prompt=result.prompt,
                text=comment.message,
                line=comment.line,
                end_line=comment.end_line,
                severity=comment.severity,
                category="review",
                latency={"review": result.latency_ms},
                detail={"unit": result.unit.key, "replacement": comment.replacement},
            )
        )
        ls.writer.record(Event(suggestion_id=comment.id, kind="shown"))


async def progress(ls: HintwiseServer, title: str):
    """A workDoneProgress token when the client declared support, else None."""
    window = ls.client_capabilities.window
    if window is None or not window.work_done_progress:
        return None
    token = f"hintwise-{uuid.uuid4().hex[:8]}"
    try:
        await ls.work_done_progress.create_async(token)
        ls.work_done_progress.begin(token, types.WorkDoneProgressBegin(title=title, percentage=0))
    except Exception:  # a client that refuses progress still gets its review
        return None
    return token


async def review_document(ls: HintwiseServer, uri: str, whole: bool = False) -> int:
    """Review the document's changed units (all of them with `whole`) and publish; the number
    of comments published. Raises Cancelled when the document changed meanwhile."""
    document = ls.documents.get(uri)
    if document is None:
        raise review.ReviewError(f"{uri} is not open (or was closed before the review)")
    on_disk = uri_path(uri)
    if on_disk is not None and not on_disk.exists():
        ls.note(f"hintwise: {uri} no longer exists on disk; reviewing the open buffer")
    units = review.find_units(document.text, document.language_id)
    reviews = ls.insights.file(uri)
    todo = units if whole else review.changed_units(units, reviews.digests)
    if not todo:
        return publish(ls, uri)
    version, text, language = document.version, document.text, document.language_id
    flagged = set(ls.insights.flagged.get(uri, set()))
    settings = ls.settings.review
    worker = ls.worker_for("review")
    token = await progress(ls, f"hintwise: reviewing {Path(uri).name}")

    def changed() -> bool:
        current = ls.documents.get(uri)
        return current is not document or current.version != version

    ls.insights.running[uri] = version
    finished = False
    try:
        for index, unit in enumerate(todo):
            if token is not None:
                ls.work_done_progress.report(
                    token,
                    types.WorkDoneProgressReport(
                        message=f"{unit.key} ({index + 1}/{len(todo)})",
                        percentage=int(100 * index / len(todo)),
                    ),
                )

            def step(engine, cancelled, unit=unit):
                result = review.review_unit(
                    engine, unit, text, language, flagged, settings.max_per_function, cancelled
                )
                return result, result is not None

            result = await run_background(worker, step, f"review:{uri}", changed)
            reviews.store(result)
            _record(ls, uri, language, result)
            if result.dropped:
                log.debug("review %s %s dropped %s", uri, unit.key, result.dropped)
        finished = True
    finally:
        ls.insights.running.pop(uri, None)
        if token is not None:
            ls.work_done_progress.end(
                token, types.WorkDoneProgressEnd(message="done" if finished else "cancelled")
            )
    return publish(ls, uri)


def register(server: HintwiseServer) -> None:
    @server.feature(
        types.TEXT_DOCUMENT_DID_SAVE, types.TextDocumentSaveRegistrationOptions(include_text=False)
    )
    async def did_save(ls: HintwiseServer, params: types.DidSaveTextDocumentParams) -> None:
        uri = params.text_document.uri
        if not ls.settings.review.on_save or ls.documents.get(uri) is None:
            return
        await _review_reporting(ls, uri)

    @server.command(REVIEW_COMMAND)
    async def review_command(ls: HintwiseServer, *args) -> dict:
        uri = arguments(args, "uri")["uri"]
        if not isinstance(uri, str) or ls.documents.get(uri) is None:
            raise JsonRpcInvalidParams(f"{uri!r} is not an open document")
        try:
            count = await review_document(ls, uri, whole=True)
        except review.ReviewError as error:
            ls.tell(f"hintwise: cannot review {uri}: {error}", types.MessageType.Warning)
            return {"comments": 0, "error": str(error)}
        except Cancelled:
            return {"comments": 0, "cancelled": True}
        except Exception as error:  # a model that failed to load, for instance
            ls.tell(f"hintwise: review failed: {error}", types.MessageType.Error)
            return {"comments": 0, "error": str(error)}
        return {"comments": count}

    @server.command(DISMISS_COMMAND)
    def dismiss(ls: HintwiseServer, *args) -> dict:
        comment_id = arguments(args, "id")["id"]
        found = ls.insights.dismiss(comment_id) if isinstance(comment_id, str) else None
        if found is None:
            return {"dismissed": False, "reason": "unknown or expired comment id"}
        ls.writer.record(Event(suggestion_id=comment_id, kind="dismissed"))
        ls.writer.record(Event(suggestion_id=comment_id, kind="rejected", reason="explicit"))
        publish(ls, found[0])
        return {"dismissed": True, "id": comment_id}

    @server.command(APPLY_FIX_COMMAND)
    async def apply_fix(ls: HintwiseServer, *args) -> dict:
        fix_id = arguments(args, "id")["id"]
        edit = fix_edit(ls, fix_id) if isinstance(fix_id, str) else None
        if edit is None:
            return {"applied": False, "reason": "unknown id, or no fix that parses"}
        uri, new_text, old_text = edit
        document = ls.documents.get(uri)
        end = document.position_at(len(old_text))
        workspace_edit = types.WorkspaceEdit(
            changes={
                uri: [
                    types.TextEdit(
                        range=types.Range(
                            start=types.Position(line=0, character=0),
                            end=types.Position(line=end[0], character=end[1]),
                        ),
                        new_text=new_text,
                    )
                ]
            }
        )
        answer = await ls.workspace_apply_edit_async(
            types.ApplyWorkspaceEditParams(edit=workspace_edit, label="hintwise: apply fix")
        )
        if not answer.applied:
            return {"applied": False, "reason": answer.failure_reason or "the editor refused"}
        ls.writer.record(Event(suggestion_id=fix_id, kind="applied"))
        ls.writer.record(Event(suggestion_id=fix_id, kind="accepted"))
        if fix_id in ls.insights.comments:
            ls.insights.dismiss(fix_id)
            publish(ls, uri)
        return {"applied": True, "id": fix_id}

    @server.feature(FOREIGN_DIAGNOSTICS)
    def foreign_diagnostics(ls: HintwiseServer, params) -> None:
        """Our plugins forward other servers' diagnostics, so reviews do not repeat them."""
        uri = getattr(params, "uri", None) or (
            params.get("uri") if isinstance(params, dict) else None
        )
        items = getattr(params, "diagnostics", None)
        if items is None and isinstance(params, dict):
            items = params.get("diagnostics")
        if isinstance(uri, str) and isinstance(items, list):
            ls.insights.flagged[uri] = set(foreign_lines(items))


def foreign_lines(items) -> list[int]:
    """0-based start lines of diagnostics from other sources (dicts or lsprotocol objects)."""
    lines = []
    for item in items:
        source = item.get("source") if isinstance(item, dict) else getattr(item, "source", None)
        if source == SOURCE:
            continue
        rng = item.get("range") if isinstance(item, dict) else getattr(item, "range", None)
        start = rng.get("start") if isinstance(rng, dict) else getattr(rng, "start", None)
        line = start.get("line") if isinstance(start, dict) else getattr(start, "line", None)
        if isinstance(line, int):
            lines.append(line)
    return lines


def fix_edit(ls: HintwiseServer, fix_id: str) -> tuple[str, str, str] | None:
    """(uri, new text, old text) for a review comment's or an explanation's fix, when it parses."""
    if fix_id in ls.insights.comments:
        uri, comment = ls.insights.comments[fix_id]
        document = ls.documents.get(uri)
        if document is None:
            return None
        new_text = review.apply_replacement(document.text, document.language_id, comment)
        return (uri, new_text, document.text) if new_text is not None else None
    if fix_id in ls.insights.explanations:
        from hintwise.lsp_server.explain import fix_edit as explanation_fix

        explanation, _ = ls.insights.explanations[fix_id]
        culprit = explanation.culprit
        if not explanation.fix or not culprit:
            return None
        document = ls.documents.get(culprit["uri"])
        if document is None:
            return None
        new_text = explanation_fix(
            document.text, document.language_id, culprit["line"], explanation.fix
        )
        return (culprit["uri"], new_text, document.text) if new_text is not None else None
    return None


async def _review_reporting(ls: HintwiseServer, uri: str) -> None:
    """A review started by a save: problems are messages, never errors to the client."""
    try:
        await review_document(ls, uri)
    except Cancelled:
        log.debug("review of %s cancelled: the document changed", uri)
    except review.ReviewError as error:
        ls.note(f"hintwise: not reviewing {uri}: {error}")
    except Exception as error:
        log.warning("review of %s failed", uri, exc_info=True)
        ls.tell(f"hintwise: review failed: {error}", types.MessageType.Warning)
