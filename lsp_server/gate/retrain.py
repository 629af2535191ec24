"""Background retraining: after `gate.retrain_every` new answered suggestions, train a personal
gate on the store in a thread and install it if it beats the current one; the Gatekeeper picks
the new file up at its next request.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import logging
import threading
from collections.abc import Callable

from hintwise.lsp_server.config import Settings
from hintwise.lsp_server.gate.keeper import Gatekeeper
from hintwise.lsp_server.gate.training import NotEnoughData, train_personal
from hintwise.telemetry import default_path

log = logging.getLogger("hintwise")


class Retrainer:
    """Counts answers; every `gate.retrain_every` of them, retrains on a thread of its own."""

    def __init__(
        self,
        settings: Callable[[], Settings],
        flush: Callable[[float], bool],
        gate: Gatekeeper,
        note: Callable[[str], None],
    ):
        self.settings = settings
        self.flush = flush
        self.gate = gate
        self.note = note
        self.since_last = 0
        self.running: threading.Thread | None = None
        self.last_result: dict | None = None

    def answered(self) -> None:
        settings = self.settings()
        every = settings.gate.retrain_every
        self.since_last += 1
        if not every or self.since_last < every or self.running is not None:
            return
        if not settings.telemetry.enabled:
            return
        self.since_last = 0
        self.running = threading.Thread(target=self._run, name="hintwise-gate-train", daemon=True)
        self.running.start()

    def _run(self) -> None:
        settings = self.settings()
        try:
            self.flush(5.0)
            current = self.gate.model
            if current is None:
                return
            result = train_personal(
                default_path(settings.data_path),
                settings.data_path,
                current,
                settings.gate.min_labels,
            )
            self.last_result = result
            if result["installed"]:
                self.note(
                    f"hintwise: retrained your acceptance gate on {result['rows']} suggestions "
                    f"(AUC on your latest {result['held_out']}: "
                    f"{result['auc_current']['post']:.3f} → {result['auc_new']['post']:.3f})"
                )
        except NotEnoughData as error:
            log.info("gate retraining skipped: %s", error)
        except Exception:  # never take the server down for a background retrain
            log.exception("gate retraining failed")
        finally:
            self.running = None
            give_back_memory()


def give_back_memory() -> None:
    """Return the retrain's freed memory to the system (glibc's malloc_trim; elsewhere nothing).

    A retrain runs on a new thread, and LightGBM on threads of its own: glibc gives threads
    their own heaps and keeps what was freed there, so each retrain left a few MB of resident
    memory behind, a step every few hundred answers in bench/soak.py."""
    name = ctypes.util.find_library("c")
    try:
        trim = ctypes.CDLL(name).malloc_trim if name else None
    except (OSError, AttributeError):
        trim = None
    if trim is not None:
        trim(0)
