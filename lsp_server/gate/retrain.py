"""Background retraining: after `gate.retrain_every` new answered suggestions, train a personal
gate on the store in a child process and install it if it beats the current one; the Gatekeeper
picks the new file up at its next request.

The training runs in a process of its own, at low priority, not on a thread of the server:
its memory is the system's again when it ends. On a thread, each retrain (the store's rows, then
LightGBM on threads of its own, each with its own glibc heap) left a few MB resident in the
server, a step every few hundred answers in bench/soak.py; and a crash in LightGBM cannot take
the server down with it.
"""

from __future__ import annotations

import contextlib
import logging
import multiprocessing
import os
import threading
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

from hintwise.lsp_server.config import Settings
from hintwise.lsp_server.gate.keeper import Gatekeeper
from hintwise.lsp_server.gate.training import NotEnoughData, train_personal
from hintwise.models.gate import model as gate_model
from hintwise.telemetry import default_path

log = logging.getLogger("hintwise")
CHILD_NICE = 10  # below the server and the editor, as `hintwise tune` runs


def train_in_child(db: Path, data_dir: Path, current_dir: Path, min_labels: int) -> dict:
    """train_personal in a child process (fresh interpreter, `nice` CHILD_NICE); its result,
    or NotEnoughData raised again here."""
    with ProcessPoolExecutor(1, multiprocessing.get_context("spawn"), _lower_priority) as pool:
        return pool.submit(_train, db, data_dir, current_dir, min_labels).result()


def _lower_priority() -> None:
    with contextlib.suppress(AttributeError, OSError):  # no nice() on Windows
        os.nice(CHILD_NICE)


def _train(db: Path, data_dir: Path, current_dir: Path, min_labels: int) -> dict:
    result = train_personal(db, data_dir, gate_model.load(current_dir), min_labels)
    return result | {"process": os.getpid()}


class Retrainer:
    """Counts answers; every `gate.retrain_every` of them, retrains (a thread waits on the child
    process)."""

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
            result = train_in_child(
                default_path(settings.data_path),
                settings.data_path,
                current.directory,
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
