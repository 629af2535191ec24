"""Where `hintwise tune` gets its cases: the user's feedback store, and (for a fixed regression
set) a file of single-line infilling holes in the HumanEval format."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from hintwise.lsp_server.tune.cases import Case, from_kept
from hintwise.telemetry.kept import KeptCounts, kept_rows

# Fewer kept suggestions than this leave too few held-out rows to show anything (a quarter of
# 40 is 10 rows: a gain would need to be huge to clear its interval).
MIN_STORE_ROWS = 40
HELD_OUT_SHARE = 0.25


@dataclass
class StoreData:
    train: list[Case]
    held_out: list[Case]
    counts: KeptCounts

    @property
    def rows(self) -> int:
        return len(self.train) + len(self.held_out)


def store_data(path: Path, since_ms: int = 0, held_out: float = HELD_OUT_SHARE) -> StoreData:
    """The store's kept suggestions, oldest first; the most recent `held_out` share is kept
    out of training to judge the adapter on (the user's future looks more like their recent
    past than a random sample of it)."""
    counts = KeptCounts()
    cases = [from_kept(row) for row in kept_rows(path, counts, since_ms=since_ms)]
    cut = len(cases) - round(len(cases) * held_out)
    return StoreData(cases[:cut], cases[cut:], counts)


def too_little(data: StoreData) -> str:
    """Why the store cannot train an adapter yet, in the user's terms."""
    counts = data.counts
    return (
        f"the feedback store has {data.rows} completions with a kept answer (of "
        f"{counts.completions} completions: {counts.not_stored} without stored code, "
        f"{counts.no_answer} neither accepted nor replaced); tuning needs at least "
        f"{MIN_STORE_ROWS}, so {MIN_STORE_ROWS - data.rows} more. Keep using completions, or "
        "start from your own code: hintwise tune --from-repo PATH"
    )


def fim_cases(path: Path, limit: int) -> list[Case]:
    """The first `limit` holes of a HumanEval single-line infilling file (`prompt`, `suffix`,
    `canonical_solution`), posed as an editor would: the cursor after the line's indentation
    (editors indent a new line), the rest of the line expected."""
    cases: list[Case] = []
    with path.open(encoding="utf-8") as handle:
        for number, line in enumerate(handle):
            if len(cases) >= limit:
                break
            row = json.loads(line)
            solution = row["canonical_solution"].rstrip("\n")
            body = solution.lstrip()
            if not body or "\n" in solution:
                continue
            indent = solution[: len(solution) - len(body)]
            before = row["prompt"] + indent
            cases.append(
                Case(
                    text=before + "\n" + row["suffix"],
                    offset=len(before),
                    language="python",
                    expected=body,
                    origin=f"fim:{number}",
                )
            )
    return cases
