"""initialize, initialized, configuration changes and shutdown."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from lsprotocol import types

from hintwise.lsp_server.server import HintwiseServer

log = logging.getLogger("hintwise")

CONFIGURATION_TIMEOUT_S = 5.0


def settings_section(values: Any) -> dict:
    """Settings may arrive as {"hintwise": {...}} or as the section itself."""
    if not isinstance(values, dict):
        return {}
    inner = values.get("hintwise")
    return inner if isinstance(inner, dict) else values


async def fetch_configuration(ls: HintwiseServer) -> dict | None:
    """The client's `hintwise` settings section, if it supports workspace/configuration."""
    workspace = ls.client_capabilities.workspace
    if workspace is None or not workspace.configuration:
        return None
    try:
        answer = await asyncio.wait_for(
            ls.workspace_configuration_async(
                types.ConfigurationParams(items=[types.ConfigurationItem(section="hintwise")])
            ),
            CONFIGURATION_TIMEOUT_S,
        )
    except Exception as error:  # a client that errs or never answers keeps the defaults
        log.warning("workspace/configuration failed: %s", error)
        return None
    return settings_section(answer[0]) if answer else None


def initialize(ls: HintwiseServer, params: types.InitializeParams) -> None:
    encoding = ls.workspace.position_encoding or types.PositionEncodingKind.Utf16
    ls.documents.encoding = str(getattr(encoding, "value", encoding))
    ls.set_workspace(params)
    ls.start(settings_section(params.initialization_options))


async def initialized(ls: HintwiseServer, params: types.InitializedParams) -> None:
    for problem in ls.startup_problems:
        ls.warn(f"hintwise: ignoring a setting: {problem}")
    values = await fetch_configuration(ls)
    if values:
        ls.update_settings(values)


async def configuration_changed(
    ls: HintwiseServer, params: types.DidChangeConfigurationParams
) -> None:
    values = settings_section(params.settings) if params.settings else None
    if not values:
        values = await fetch_configuration(ls)
    if values:
        ls.update_settings(values)


def shutdown(ls: HintwiseServer, params: Any) -> None:
    ls.stop()


def register(server: HintwiseServer) -> None:
    server.feature(types.INITIALIZE)(initialize)
    server.feature(types.INITIALIZED)(initialized)
    server.feature(types.WORKSPACE_DID_CHANGE_CONFIGURATION)(configuration_changed)
    server.feature(types.SHUTDOWN)(shutdown)
