"""What the user did so far in this server's life: the CUPS "session" features of the gate
(last outcome and how long ago, how many shown and accepted, typing speed)."""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field

from hintwise.models.gate.features import History

TYPING_WINDOW_S = 5.0
TYPING_NOW_S = 1.0
TYPED_PER_EDIT = 4


@dataclass
class Session:
    """The user's answers and typing, as the gate's History at a given moment."""

    prev_outcome: str = "none"
    outcome_at: float | None = None
    shown: int = 0
    accepted: int = 0
    edits: deque = field(default_factory=lambda: deque(maxlen=256))  # (time, characters)

    def edited(self, now: float, characters: int) -> None:
        # A paste or an editor's accept is not typing speed: count at most a few characters.
        self.edits.append((now, min(characters, TYPED_PER_EDIT)))

    def answered(self, outcome: str, now: float) -> None:
        self.prev_outcome = "accepted" if outcome != "rejected" else "rejected"
        self.outcome_at = now
        self.shown += 1
        self.accepted += outcome != "rejected"

    def history(self, now: float) -> History:
        recent = [(t, n) for t, n in self.edits if now - t <= TYPING_WINDOW_S]
        last_edit = self.edits[-1][0] if self.edits else None
        return History(
            prev_outcome=self.prev_outcome,
            seconds_since_outcome=None if self.outcome_at is None else now - self.outcome_at,
            shown=self.shown,
            accepted=self.accepted,
            typing=last_edit is not None and now - last_edit <= TYPING_NOW_S,
            typing_cps=sum(n for _, n in recent) / TYPING_WINDOW_S,
        )
