"""The installed acceptance gate and its two decisions on the completion path.

Before generation the gate scores what is known at the keystroke; below the threshold the model
is not called at all. After generation it scores the suggestion; below the threshold it is not
shown. Invoked requests (the user asked) are scored but never stopped. The installed gate is the
user's own (`<data_dir>/gate`, written by `hintwise gate train`) or the shipped default; a
changed file is picked up at the next request, a broken one falls back to the default with a
message.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from hintwise.lsp_server.config import GateSettings
from hintwise.lsp_server.gate.inputs import CursorFacts, request_input, with_suggestion
from hintwise.lsp_server.gate.session import Session
from hintwise.models.errors import GateModelError
from hintwise.models.gate import model as gate_model
from hintwise.models.gate.features import (
    FEATURE_VERSION,
    POST_FEATURES,
    PRE_FEATURES,
    GateInput,
    named,
    post_features,
    pre_features,
)

log = logging.getLogger("hintwise")

RELOAD_CHECK_S = 1.0  # how often the installed gate's file is looked at


def personal_dir(data_dir: Path) -> Path:
    """Where the user's own gate is installed."""
    return data_dir / "gate"


@dataclass
class Verdict:
    """One stage's decision, with what it was based on (stored with the suggestion)."""

    stage: str
    score: float | None  # None: no gate installed
    threshold: float | None
    passed: bool
    features: dict = field(default_factory=dict)
    ms: float = 0.0


class Gatekeeper:
    """The installed gate, reloaded when its file changes; scores the two stages."""

    def __init__(
        self,
        settings: GateSettings,
        data_dir: Path,
        now: Callable[[], float],
        tell: Callable[[str], None] = lambda message: None,
    ):
        self.settings = settings
        self.data_dir = data_dir
        self.now = now
        self.tell = tell
        self.session = Session()
        self.model: gate_model.GateModel | None = None
        self.problem: str | None = None
        self._loaded_stamp: tuple | None = None
        self._checked_at = -1e9
        self.counters = {"pre_skipped": 0, "post_hidden": 0, "scored": 0}
        self.reload()

    # -- which gate ---------------------------------------------------------------------------

    def wanted_dir(self) -> Path:
        if self.settings.model:
            return Path(self.settings.model).expanduser()
        personal = personal_dir(self.data_dir)
        return personal if (personal / gate_model.META_FILE).exists() else gate_model.DEFAULT_DIR

    @staticmethod
    def _stamp(directory: Path) -> tuple:
        try:
            return (str(directory), (directory / gate_model.META_FILE).stat().st_mtime_ns)
        except OSError:
            return (str(directory), None)

    def reload(self) -> None:
        """Load the wanted gate; a broken one falls back to the shipped default, with a message."""
        directory = self.wanted_dir()
        self._loaded_stamp = self._stamp(directory)
        try:
            self.model = gate_model.load(directory)
            self.problem = None
            log.info("acceptance gate: %s", directory)
            return
        except GateModelError as error:
            self.problem = str(error)
        self.tell(
            f"hintwise: the acceptance gate in {directory} cannot be used ({self.problem}); "
            "using the shipped default. Retrain it with `hintwise gate train`."
        )
        try:
            self.model = gate_model.load(gate_model.DEFAULT_DIR)
        except GateModelError as error:  # a broken installation
            self.model = None
            self.tell(f"hintwise: no acceptance gate: {error}")

    def maybe_reload(self) -> None:
        now = time.monotonic()
        if now - self._checked_at < RELOAD_CHECK_S:
            return
        self._checked_at = now
        if self._stamp(self.wanted_dir()) != self._loaded_stamp:
            self.reload()

    def update(self, settings: GateSettings, data_dir: Path) -> None:
        changed = (settings.model, data_dir) != (self.settings.model, self.data_dir)
        self.settings, self.data_dir = settings, data_dir
        if changed:
            self.reload()

    # -- decisions ----------------------------------------------------------------------------

    def _threshold(self, stage: str) -> float | None:
        configured = getattr(self.settings, f"{stage}_threshold")
        if configured != "auto":
            return float(configured)
        return self.model.stage(stage).threshold if self.model else None

    def _verdict(self, stage: str, vector: list[float], binding: bool) -> Verdict:
        started = time.perf_counter()
        names = PRE_FEATURES if stage == "pre" else POST_FEATURES
        features = named(vector, names)
        if self.model is None or not self.settings.enabled:
            return Verdict(stage, None, None, True, features)
        score = self.model.stage(stage).score(vector)
        threshold = self._threshold(stage)
        passed = not binding or threshold is None or score >= threshold
        self.counters["scored"] += 1
        if not passed:
            self.counters["pre_skipped" if stage == "pre" else "post_hidden"] += 1
        return Verdict(
            stage, score, threshold, passed, features, (time.perf_counter() - started) * 1000
        )

    def before(
        self, text: str, offset: int, ctx: CursorFacts, automatic: bool
    ) -> tuple[GateInput, Verdict]:
        """Score the keystroke; `passed` False means: do not call the model."""
        data = request_input(text, offset, ctx, self.session.history(self.now()))
        return data, self._verdict("pre", pre_features(data), automatic)

    def after(
        self,
        data: GateInput,
        text: str,
        logprobs: list[float],
        automatic: bool,
        tokens: int | None = None,
    ) -> tuple[GateInput, Verdict]:
        """Score a generated suggestion; `passed` False means: do not show it. Without
        log-probabilities (some remote servers) those features are missing, not zero."""
        data = with_suggestion(data, text, logprobs, tokens)
        return data, self._verdict("post", post_features(data), automatic)

    def describe(self) -> dict:
        """For `hintwise/status` and `hintwise doctor`."""
        model = self.model
        return {
            "enabled": self.settings.enabled,
            "model": str(model.directory) if model else None,
            "kind": None if model is None else ("default" if model.is_default else "trained"),
            "thresholds": {stage: self._threshold(stage) for stage in ("pre", "post")},
            "feature_version": FEATURE_VERSION,
            "problem": self.problem,
            "session": {"shown": self.session.shown, "accepted": self.session.accepted},
            **self.counters,
        }
