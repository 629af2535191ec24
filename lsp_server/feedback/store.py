"""The one door to the local feedback store: every row the server writes (completion outcomes,
review comments, explanations) goes through `FeedbackStore.record` to a background Writer in the
user's data directory, or nowhere when `telemetry.enabled` is off."""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path

from hintwise.lsp_server.clock import Clock
from hintwise.lsp_server.config import TelemetrySettings
from hintwise.lsp_server.feedback.insights import InsightLog
from hintwise.lsp_server.feedback.tracker import FeedbackTracker
from hintwise.telemetry import (
    Event,
    NullWriter,
    Privacy,
    Request,
    Suggestion,
    Writer,
    default_path,
    purge,
)

log = logging.getLogger("hintwise")


class FeedbackStore:
    """The writer for the configured store, the completion-outcome tracker and the log of review
    comments and explanations, all writing through `record`."""

    def __init__(
        self,
        clock: Clock,
        data_path: Path,
        warn: Callable[[str], None] = lambda message: None,
        on_rejected: Callable[[str], None] = lambda suggestion_id: None,
        on_answered: Callable[[str], None] = lambda outcome: None,
    ):
        self.settings = TelemetrySettings()
        self.path = default_path(data_path)
        self.writer: Writer | NullWriter = NullWriter()
        self._warn = warn
        self._opened: tuple | None = None
        self.completions = FeedbackTracker(
            self.record,
            clock,
            self.settings.reject_after_s,
            on_rejected=on_rejected,
            on_answered=on_answered,
        )
        self.insights = InsightLog(self.record)

    def record(self, row: Suggestion | Event | Request) -> None:
        self.writer.record(row)

    def open(self, settings: TelemetrySettings, data_path: Path) -> None:
        """Open the store the settings name (again, when they changed which, or how code is
        stored); nothing is opened while telemetry is off."""
        self.settings = settings
        self.completions.reject_after_s = settings.reject_after_s
        wanted = (settings.enabled, settings.store_code, data_path)
        if wanted == self._opened:
            return
        self._opened = wanted
        self.path = default_path(data_path)
        self.writer.close(timeout=2.0)
        if not settings.enabled:
            self.writer = NullWriter()
            return
        self.writer = Writer.start(
            self.path,
            privacy=Privacy(settings.store_code),
            on_problem=lambda message: self._warn(
                f"hintwise: feedback is not being recorded: {message}"
            ),
            on_ready=self._retention,
        )

    def flush(self, timeout: float = 5.0) -> bool:
        return self.writer.flush(timeout=timeout)

    def close(self, timeout: float = 3.0) -> None:
        self.writer.close(timeout=timeout)

    def describe(self) -> dict:
        """For `hintwise/status`."""
        return {
            "enabled": self.settings.enabled,
            "ok": self.writer.ok,
            "problem": self.writer.problem,
        }

    def _retention(self, connection) -> None:
        """Delete what the retention settings no longer keep (runs on the writer's thread)."""
        settings = self.settings
        if settings.retention_days or settings.retention_rows:
            purged = purge(
                connection,
                keep_days=settings.retention_days or None,
                keep_rows=settings.retention_rows or None,
            )
            log.info("telemetry retention: %s", purged)
