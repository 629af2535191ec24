"""Replaying a repository as a user would type it, through the server's real completion pipeline.

At each hole (replay_files.py: a whole line or the rest of a line hidden, the lines below kept)
the Completer the server uses is asked, as an invoked request (`automatic=False`, so the gate
scores it but hides nothing) or, with `automatic=True`, as the editor asks while the user types
(fewer candidates, so faster; the gate's thresholds set to 0 so that it still hides nothing),
and its suggestion is compared with the hidden text:

- exact: the suggestion equals the hidden text, trailing whitespace ignored (an accepted line);
- chars_saved: the length of the longest common prefix of the suggestion and the hidden text
  (trailing whitespace ignored), i.e. what a user who accepts the suggestion and then deletes
  from its first wrong character on keeps without typing it (0 when the first one is wrong).

Each row also keeps the prompt's token ids (training examples for the adapter) and the gate's
features (training rows for the gate, replay_gate.py), both exactly as serving built them.
"""

from __future__ import annotations

import asyncio
import dataclasses
import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from hintwise.lsp_server.code.documents import Document
from hintwise.lsp_server.code.syntax import language_for_path
from hintwise.lsp_server.completion.completer import Completer
from hintwise.lsp_server.completion.result import Result
from hintwise.lsp_server.config import CompletionSettings, Settings
from hintwise.lsp_server.gate.keeper import Gatekeeper
from hintwise.lsp_server.tune.cases import Case, asking_settings, chars_saved
from hintwise.lsp_server.tune.decide import wilson
from hintwise.lsp_server.tune.replay_files import (
    Hole,
    holes,
    readable,
    source_files,
    split_files,
    stable_fraction,
    stdlib_root,
)
from hintwise.models.gate.features import FEATURE_VERSION
from hintwise.models.tune.examples import Example
from hintwise.models.worker import ModelWorker

__all__ = [
    "Hole",
    "ReplayRow",
    "cases",
    "chars_saved",
    "examples",
    "holes",
    "replay",
    "replay_settings",
    "repo_cases",
    "source_files",
    "split_files",
    "stdlib_cases",
    "summary",
    "wilson",
]

Progress = Callable[[int, int], None]  # (holes done, holes in all)


@dataclass
class ReplayRow:
    """What the pipeline answered at one hole, and how it compares with the hidden text."""

    hole: Hole
    suggestion: str  # "" when the pipeline gave nothing
    exact: bool
    chars_saved: int
    prompt: tuple[int, ...]  # the token ids the engine built for this request
    gate: dict  # {"version", "pre", "post"}: the gate's features, as the store keeps them
    healed: str = ""  # text token healing backed off the prompt: the model re-creates it first
    reason: str = ""  # the pipeline's reason (why nothing, second choice, …)
    ms: float = 0.0  # the request's total latency
    scores: dict[str, float] = field(default_factory=dict)  # the gate's scores by stage

    def to_json(self) -> dict:
        """A JSON-friendly copy (for resumable runs: `from_json` reads it back)."""
        row = dataclasses.asdict(self)
        row["hole"]["path"] = str(self.hole.path)
        row["prompt"] = list(self.prompt)
        return row

    @classmethod
    def from_json(cls, row: dict) -> ReplayRow:
        hole = Hole(**{**row["hole"], "path": Path(row["hole"]["path"])})
        return cls(**{**row, "hole": hole, "prompt": tuple(row["prompt"])})

    @property
    def target(self) -> str:
        """What the model should generate after `prompt`: the healed text, then the hidden."""
        return self.healed + self.hole.hidden

    @property
    def group(self) -> str:
        """Rows alike in kind (the gate's bootstrap resamples whole groups): the file."""
        return str(self.hole.path)


def replay_settings(settings: CompletionSettings) -> CompletionSettings:
    """The completion settings a replay asks with: one line at a time (a hole is one line),
    no pre-warming, and a generous time limit so that a busy machine does not cut answers
    short (a replay measures the model, not the machine's load)."""
    return asking_settings(settings, single=True)


def _row(hole: Hole, result: Result) -> ReplayRow:
    text = (result.text or "").split("\n")[0]
    engine = result.engine
    gate: dict = {"version": FEATURE_VERSION}
    gate.update({stage: verdict.features for stage, verdict in result.verdicts.items()})
    return ReplayRow(
        hole=hole,
        suggestion=text,
        exact=bool(text.strip()) and text.rstrip() == hole.hidden.rstrip(),
        chars_saved=chars_saved(text, hole.hidden),
        prompt=tuple(engine.prompt) if engine is not None else (),
        gate=gate,
        healed=engine.healed if engine is not None else "",
        reason=result.reason,
        ms=result.latency_ms.get("total", 0.0),
        scores=result.gate_scores(),
    )


def replay(
    worker: ModelWorker,
    holes: Sequence[Hole],
    settings: Settings,
    progress: Progress = lambda done, total: None,
    automatic: bool = False,
) -> list[ReplayRow]:
    """Ask the server's completion pipeline at every hole, with the installed gate scoring each
    request. Holes of one file, in order, keep the prompt's start (as a user moving down the
    file does), so llama.cpp reuses the cached prompt. `automatic=True` asks as the editor does
    while the user types (fewer candidates: faster), with the gate's thresholds at 0 so that it
    still hides nothing. The gate scores even when the user turned it off (gate.enabled): its
    scores are what a replay records for retraining it."""
    gate_settings = dataclasses.replace(settings.gate, enabled=True)
    if automatic:
        gate_settings = dataclasses.replace(gate_settings, pre_threshold=0.0, post_threshold=0.0)
    gate = Gatekeeper(gate_settings, settings.data_path, now=time.monotonic)
    completer = Completer(worker, settings.model_spec(), gate=gate)
    completion = replay_settings(settings.completion)
    texts: dict[Path, str] = {}

    async def ask_all() -> list[ReplayRow]:
        rows = []
        for done, hole in enumerate(holes):
            uri = hole.path.resolve().as_uri()
            if hole.path not in texts:
                texts[hole.path] = hole.path.read_text(encoding="utf-8")
                completer.anchors.clear()
            text, offset = hole.document(texts[hole.path])
            document = Document(uri, language_for_path(str(hole.path)), 1, text, "utf-32")
            result = await completer.complete(document, offset, completion, automatic=automatic)
            completer.cache.forget(uri)  # the next hole is another edit, not typing along
            rows.append(_row(hole, result))
            progress(done + 1, len(holes))
        return rows

    return asyncio.run(ask_all())


def _rates(rows: Sequence[ReplayRow]) -> dict:
    n = len(rows)
    exact = sum(row.exact for row in rows)
    hidden = sum(len(row.hole.hidden.rstrip()) for row in rows)
    saved = sum(row.chars_saved for row in rows)
    return {
        "n": n,
        "exact": exact,
        "exact_rate": round(exact / n, 4) if n else math.nan,
        "exact_ci95": wilson(exact, n),
        "suggested": sum(bool(row.suggestion.strip()) for row in rows),
        "chars_hidden": hidden,
        "chars_saved": saved,
        "chars_saved_share": round(saved / hidden, 4) if hidden else math.nan,
    }


def summary(rows: Sequence[ReplayRow]) -> dict:
    """Exact-line rate with its Wilson 95% interval, characters saved (total and as a share of
    the hidden characters), latency, overall and by hole kind (whole line, rest of line)."""
    report = _rates(rows)
    times = sorted(row.ms for row in rows)
    report["ms_median"] = round(times[len(times) // 2], 1) if times else math.nan
    report["ms_mean"] = round(sum(times) / len(times), 1) if times else math.nan
    report["by_kind"] = {
        kind: _rates([row for row in rows if row.hole.kind == kind]) for kind in ("line", "rest")
    }
    report["files"] = len({row.hole.path for row in rows})
    return report


def examples(rows: Sequence[ReplayRow]) -> list[Example]:
    """Training examples for the adapter: every row the engine built a prompt for, the target
    being what the user really wrote there (with the healed text the prompt left out)."""
    return [
        Example(prompt=row.prompt, target=row.target, source="replay")
        for row in rows
        if row.prompt and row.hole.hidden.strip()
    ]


def cases(holes: Sequence[Hole], root: Path | None = None) -> list[Case]:
    """The holes as the held-out questions of `hintwise tune` (cases.py): the document with the
    hidden part removed, the cursor, and the real text as what the user kept."""
    texts: dict[Path, str] = {}
    found = []
    for hole in holes:
        if hole.path not in texts:
            texts[hole.path] = hole.path.read_text(encoding="utf-8")
        text, offset = hole.document(texts[hole.path])
        name = hole.path.relative_to(root).as_posix() if root is not None else str(hole.path)
        found.append(
            Case(
                text=text,
                offset=offset,
                language=language_for_path(str(hole.path)),
                expected=hole.hidden,
                origin=f"repo:{name}:{hole.line + 1}",
            )
        )
    return found


def repo_cases(
    root: Path, say: Callable[[str], None] = lambda message: None, per_file: int = 4, seed: int = 0
) -> tuple[list[Case], list[Case]]:
    """A repository's holes as cases: (those of its training files, those of its held-out
    files), `per_file` holes in each file."""
    train, held = split_files(root)
    train_holes, held_holes = holes(train, per_file, seed, root), holes(held, per_file, seed, root)
    say(
        f"replaying {root}: {len(train_holes)} holes in {len(train)} training files, "
        f"{len(held_holes)} in {len(held)} held-out files"
    )
    return cases(train_holes, root), cases(held_holes, root)


def stdlib_cases(count: int, seed: int = 0) -> list[Case]:
    """A regression set nobody on the team wrote: one hole in each of `count` top-level modules
    of the running Python's standard library, chosen by a hash of their names (the same set
    for the same Python version)."""
    root = stdlib_root()
    modules = sorted(root.glob("*.py"), key=lambda path: stable_fraction(path.name))
    chosen = [path for path in modules if readable(path) is not None][:count]
    return cases(holes(chosen, 1, seed, root), root)
