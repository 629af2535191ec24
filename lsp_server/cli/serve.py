"""`hintwise serve`: the language server on stdio (what editors start) or TCP."""

from __future__ import annotations

import logging
import sys

import click

from hintwise.lsp_server.cli.common import model_option, overrides, url_option


class _QuietDisconnect(logging.Filter):
    """A client that closed the connection is not an error worth a traceback: one line, once."""

    def __init__(self) -> None:
        super().__init__()
        self.reported = False

    def filter(self, record: logging.LogRecord) -> bool:
        error = record.exc_info[1] if record.exc_info else None
        if isinstance(error, BrokenPipeError | ConnectionResetError):
            if self.reported:
                return False
            self.reported = True
            record.msg, record.args, record.exc_info = "the client disconnected", (), None
        return True


@click.command()
@click.option("--tcp", "tcp", metavar="HOST:PORT", help="Listen on TCP instead of stdio.")
@model_option
@url_option
@click.option("--log-file", type=click.Path(dir_okay=False), help="Write the server log here.")
@click.option(
    "--log-level",
    type=click.Choice(["debug", "info", "warning", "error"]),
    default="warning",
    show_default=True,
)
def serve(
    tcp: str | None, model: str | None, url: str | None, log_file: str | None, log_level: str
) -> None:
    """Run the language server (stdio by default)."""
    handler: logging.Handler = (
        # A message may hold a lone surrogate (from a client's URI): the log line must not fail.
        logging.FileHandler(log_file, encoding="utf-8", errors="backslashreplace")
        if log_file
        else logging.StreamHandler(sys.stderr)
    )
    logging.basicConfig(
        level=log_level.upper(),
        handlers=[handler],
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    handler.addFilter(_QuietDisconnect())
    from hintwise.lsp_server.allocator import keep_large_blocks_out_of_the_heap
    from hintwise.lsp_server.features import create_server

    keep_large_blocks_out_of_the_heap()

    server = create_server(overrides=overrides(model, url=url))
    try:
        if tcp:
            host, _, port = tcp.rpartition(":")
            if not port.isdigit():
                raise click.BadParameter(
                    "expected HOST:PORT, e.g. 127.0.0.1:2087", param_hint="--tcp"
                )
            server.start_tcp(host or "127.0.0.1", int(port))
        else:
            server.start_io()
    finally:
        server.stop()
