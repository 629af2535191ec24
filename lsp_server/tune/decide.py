"""Whether a tuned adapter is installed: better on the user's held-out data, and not worse
beyond noise on the regression set.

Both comparisons are paired (the same held-out rows answered by the base model and by the tuned
one, side by side in one run), so the noise is the rows', not the machine's. "Better" needs the
whole 95% interval of the gain above zero: a user who has too little held-out data to show a
gain keeps the model they have (a wrong suggestion costs more than a missing improvement).
"Worse beyond noise" is a regression whose whole interval is below zero.
"""

from __future__ import annotations

import math
import random
from collections.abc import Sequence
from dataclasses import asdict, dataclass


def wilson(successes: int, total: int, z: float = 1.96) -> tuple[float, float]:
    """95% Wilson score interval of a proportion (0..1)."""
    if total == 0:
        return (0.0, 1.0)
    p = successes / total
    centre = (p + z * z / (2 * total)) / (1 + z * z / total)
    half = z * math.sqrt(p * (1 - p) / total + z * z / (4 * total * total)) / (1 + z * z / total)
    return (max(0.0, centre - half), min(1.0, centre + half))


@dataclass(frozen=True)
class Paired:
    """Exact-answer rates of the base and the tuned model on the same rows, and the gain."""

    n: int
    base: float  # share of rows the base model got exactly right
    tuned: float
    gain_points: float  # (tuned − base) × 100
    ci95: tuple[float, float]  # of the gain, in points (paired bootstrap)
    only_base: int  # rows only the base model got right
    only_tuned: int

    def to_json(self) -> dict:
        return asdict(self)


def paired(base: Sequence[bool], tuned: Sequence[bool], rounds: int = 2000) -> Paired:
    """The tuned model's gain over the base model with a paired bootstrap 95% interval."""
    if len(base) != len(tuned):
        raise ValueError("base and tuned answers must be for the same rows")
    n = len(base)
    if n == 0:
        return Paired(0, 0.0, 0.0, 0.0, (-100.0, 100.0), 0, 0)
    diffs = [int(t) - int(b) for b, t in zip(base, tuned, strict=True)]
    rng = random.Random(0)
    samples = sorted(
        100 * sum(diffs[rng.randrange(n)] for _ in range(n)) / n for _ in range(rounds)
    )
    return Paired(
        n=n,
        base=sum(base) / n,
        tuned=sum(tuned) / n,
        gain_points=100 * sum(diffs) / n,
        ci95=(samples[int(0.025 * rounds)], samples[int(0.975 * rounds) - 1]),
        only_base=diffs.count(-1),
        only_tuned=diffs.count(1),
    )


@dataclass(frozen=True)
class Decision:
    install: bool
    reason: str


def decide(user: Paired, regression: Paired | None) -> Decision:
    """Install only when the gain on the user's held-out rows is clear and the regression set
    shows no clear loss."""
    if user.n == 0:
        return Decision(False, "no held-out rows to judge the adapter on")
    low, high = user.ci95
    if low <= 0:
        return Decision(
            False,
            f"not clearly better on your held-out data: {user.gain_points:+.1f} points "
            f"[{low:+.1f}, {high:+.1f}] on {user.n} rows",
        )
    if regression is not None and regression.n and regression.ci95[1] < 0:
        return Decision(
            False,
            f"worse on the regression set: {regression.gain_points:+.1f} points "
            f"[{regression.ci95[0]:+.1f}, {regression.ci95[1]:+.1f}] on {regression.n} rows",
        )
    return Decision(
        True,
        f"better on your held-out data: {user.gain_points:+.1f} points [{low:+.1f}, {high:+.1f}] "
        f"on {user.n} rows"
        + (
            f"; regression set {regression.gain_points:+.1f} points on {regression.n} rows"
            if regression is not None and regression.n
            else ""
        ),
    )
