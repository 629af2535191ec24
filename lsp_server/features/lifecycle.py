"""initialize, initialized, configuration changes, shutdown, and `hintwise/status`."""

from __future__ import annotations

import asyncio
import logging

from lsprotocol import types

from hintwise.lsp_server.server import HintwiseServer
from hintwise.models.engine import HealthReporter

log = logging.getLogger("hintwise")

CONFIGURATION_TIMEOUT_S = 5.0


def _section(values) -> dict:
    """Settings may arrive as {"hintwise": {...}} or as the section itself."""
    if not isinstance(values, dict):
        return {}
    inner = values.get("hintwise")
    return inner if isinstance(inner, dict) else values


async def fetch_configuration(server: HintwiseServer) -> dict | None:
    """The client's `hintwise` settings section, if it supports workspace/configuration."""
    workspace = server.client_capabilities.workspace
    if workspace is None or not workspace.configuration:
        return None
    try:
        answer = await asyncio.wait_for(
            server.workspace_configuration_async(
                types.ConfigurationParams(items=[types.ConfigurationItem(section="hintwise")])
            ),
            CONFIGURATION_TIMEOUT_S,
        )
    except Exception as error:  # a client that errs or never answers keeps the defaults
        log.warning("workspace/configuration failed: %s", error)
        return None
    return _section(answer[0]) if answer else None


def _last(server: HintwiseServer, with_prompt: bool) -> dict | None:
    counters = server.completer.counters if server.completer is not None else None
    if counters is None or counters.last is None:
        return None
    last = counters.last.to_json()
    if with_prompt and counters.last.engine is not None:
        last["prompt_ids"] = list(counters.last.engine.prompt)
        last["prompt_text"] = counters.last.engine.prompt_text
    return last


def engines(server: HintwiseServer) -> dict:
    """Per feature: which engine, and for a server its health (up, down, slow, refused)."""
    from hintwise.lsp_server.engine_setup import FEATURES, choice_for

    result = {}
    for feature in FEATURES:
        worker = server.feature_workers.get(feature, server.worker)
        engine = worker.engine if worker is not None else None
        entry = {"engine": choice_for(server.settings, feature).label()}
        if isinstance(engine, HealthReporter):
            entry.update(engine.status())
        result[feature] = entry
    return result


def status(server: HintwiseServer, with_prompt: bool = False) -> dict:
    """What the server is doing, for editor status bars, tests and benchmarks.

    `with_prompt` adds the token ids and text of the last prompt (bench/latency.py replays them
    on a bare llama.cpp, or sends the text straight to the server, to compare like with like)."""
    engine = server.worker.engine if server.worker is not None else None
    counters = server.completer.counters if server.completer is not None else None
    return {
        "version": server.version,
        "model": server.settings.model_spec(),
        "state": server.model_state,
        "error": server.model_error,
        "fim": engine.info.fim_family if engine is not None else None,
        "prepared": bool(engine is not None and engine.prepared),
        "engines": engines(server),
        "documents": len(server.documents),
        "suggestions": server.feedback.counts() if server.feedback is not None else {},
        "telemetry": {
            "enabled": server.settings.telemetry.enabled,
            "ok": server.writer.ok,
            "problem": server.writer.problem,
        },
        "gate": server.gate.describe() if server.gate is not None else None,
        "completions": {
            "requests": counters.requests,
            "model_calls": counters.model_calls,
            "cache_hits": counters.cache_hits,
            "skipped": counters.skipped,
            "cancelled": counters.cancelled,
            "gated": counters.gated,
            "hidden": counters.hidden,
            "prewarmed": counters.prewarmed,
            "cancellations": list(counters.cancellations),
            "last": _last(server, with_prompt),
        }
        if counters is not None
        else None,
    }


def register(server: HintwiseServer) -> None:
    @server.feature(types.INITIALIZE)
    def initialize(ls: HintwiseServer, params: types.InitializeParams) -> None:
        ls.loop = asyncio.get_running_loop()
        encoding = ls.workspace.position_encoding or types.PositionEncodingKind.Utf16
        ls.documents.encoding = str(getattr(encoding, "value", encoding))
        options = _section(params.initialization_options)
        if options:
            ls.update_settings(options)
        else:
            ls.start_model()
            ls.start_telemetry()
            ls.start_gate()

    @server.feature(types.INITIALIZED)
    async def initialized(ls: HintwiseServer, params: types.InitializedParams) -> None:
        for problem in ls.startup_problems:
            ls.tell(f"hintwise: ignoring a setting: {problem}", types.MessageType.Warning)
        values = await fetch_configuration(ls)
        if values:
            ls.update_settings(values)

    @server.feature(types.WORKSPACE_DID_CHANGE_CONFIGURATION)
    async def changed(ls: HintwiseServer, params: types.DidChangeConfigurationParams) -> None:
        values = _section(params.settings) if params.settings else None
        if not values:
            values = await fetch_configuration(ls)
        if values:
            ls.update_settings(values)

    @server.feature(types.SHUTDOWN)
    def shutdown(ls: HintwiseServer, params) -> None:
        ls.stop()

    @server.feature("hintwise/status")
    def hintwise_status(ls: HintwiseServer, params) -> dict:
        with_prompt = bool(getattr(params, "with_prompt", False)) if params else False
        return status(ls, with_prompt)
