"""`hintwise/status`: what the server is doing (status bars, `:checkhealth`, tests, benchmarks)."""

from __future__ import annotations

from typing import Any

from hintwise.lsp_server.features import protocol
from hintwise.lsp_server.features.completion import check_adapter
from hintwise.lsp_server.server import HintwiseServer


def status(ls: HintwiseServer, params: Any) -> dict:
    """`{with_prompt?}` adds the last prompt's token ids and text."""
    with_prompt = bool(protocol.value_of(params, "with_prompt"))
    check_adapter(ls)
    return {**ls.status(with_prompt), "adapter": ls.engines.adapter_status()}


def register(server: HintwiseServer) -> None:
    server.feature(protocol.STATUS)(status)
