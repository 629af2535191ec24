"""Training examples from the repository's own text rather than from its replayed lines.

Trained on replayed lines (the server's prompt, the hidden line as the target), the adapters
learned the lines they saw and not the repository: on `rich` the loss of the held-out files'
lines did not move while that of the training lines fell (docs/tune.md). Trained on the
training files' text, more target tokens a step and the code as it runs on, the held-out loss
went down (bench/tune_objective.py), and the held-out exact lines went up for the first time
(+1.9 points [-1.9, +5.6], where the line objective gave +0.0, -2.7 and -6.2; docs/tune.md).
So it is the default for `--from-repo`. A window is an example whose prompt is the code before
it as the server would send it without a project preamble ([BOS] and the file's text so far)
and whose target is the lines that follow.
"""

from __future__ import annotations

import bisect
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from hintwise.lsp_server.tune.replay_files import readable, spread, stdlib_root
from hintwise.models.tune.examples import Example
from hintwise.models.worker import ModelWorker

# The most of a window's target that training keeps: two thirds of its 384-token sequences, so
# a step learns from twice the tokens the default third gave (the cost of a step is mostly the
# sequence, not the target), and a prompt tail of 128 tokens or more.
TARGET_TOKENS = 256
# About 240 tokens of code (3.5 characters a token on `rich`), so that most targets fit in
# TARGET_TOKENS; windows start this far apart, so targets tile a file.
TARGET_CHARS = 840
# The code before the target that the prompt keeps: more than the sequence has room for,
# which training cuts from the left.
PROMPT_CHARS = 1600
# The step size the measurements used for this objective (the line objective's default is 2e-4).
LEARNING_RATE = 3e-4
# The share of the windows that are general code, not the repository's: trained on all of
# `markdown_it`'s text alone, an adapter gained +6.7 held-out points there and lost 8.3 on
# HumanEval lines (docs/tune.md). Rehearsing code the model already knew is the usual cure for
# such forgetting.
GENERAL_SHARE = 0.2
# Standard-library packages that are data, generated or tests rather than code people write.
_NOT_GENERAL = {
    "__phello__", "__pycache__", "dist-packages", "encodings", "idlelib", "pydoc_data",
    "site-packages", "test", "tests", "turtledemo",
}  # fmt: skip


@dataclass(frozen=True)
class Window:
    origin: str  # "<kind>:<file>:<line>", the first line of the target (1-based)
    before: str
    target: str

    @property
    def source(self) -> str:
        """Where the window comes from: "text", the repository; "general", the standard library."""
        return self.origin.split(":", 1)[0]


def file_windows(path: Path, root: Path, kind: str = "text") -> list[Window]:
    """A file's windows, each starting and ending at a line boundary."""
    text = readable(path)
    if not text:
        return []
    name = path.relative_to(root).as_posix()
    starts = [0] + [i + 1 for i, char in enumerate(text) if char == "\n" and i + 1 < len(text)]
    found, index = [], 0
    while index < len(starts):
        start = starts[index]
        end = index + 1
        while end < len(starts) and starts[end] - start < TARGET_CHARS:
            end += 1
        stop = starts[end] if end < len(starts) else len(text)
        target = text[start:stop]
        if target.strip():
            first = starts[bisect.bisect_left(starts, start - PROMPT_CHARS)]
            found.append(Window(f"{kind}:{name}:{index + 1}", text[first:start], target))
        index = end
    return found


def windows(files: Sequence[Path], root: Path, count: int, kind: str = "text") -> list[Window]:
    """At most `count` windows taken evenly through every training file (not the first ones)."""
    return spread([window for path in files for window in file_windows(path, root, kind)], count)


def general_files(root: Path) -> list[Path]:
    """The standard library's package modules: code nobody on the team wrote, and none of it in
    the regression sets (the default one replays top-level modules, `replay.stdlib_cases`; the
    bench's is HumanEval)."""
    return sorted(
        path
        for path in root.glob("*/**/*.py")
        if not _NOT_GENERAL & set(path.relative_to(root).parts)
        and not path.relative_to(root).parts[0].startswith("config-")
    )


def mixed(files: Sequence[Path], root: Path, count: int, share: float) -> list[Window]:
    """At most `count` windows, `share` of them general code and the rest the repository's.
    A small repository gives all its windows and general ones in the same proportion."""
    own = windows(files, root, round(count * (1 - share)))
    if share <= 0 or not own:
        return own
    stdlib = stdlib_root()
    wanted = round(len(own) * share / (1 - share))
    return own + windows(general_files(stdlib), stdlib, wanted, kind="general")


def examples(worker: ModelWorker, found: Sequence[Window]) -> list[Example]:
    """The windows as training examples, tokenized by the model the server runs."""

    def build(engine: Any, cancelled: Any) -> list[list[int]]:
        if not hasattr(engine, "tokenize") or not hasattr(engine, "vocab"):
            raise RuntimeError("training on the repository's text needs a local GGUF model")
        bos = engine.vocab.bos_tokens()
        return [[*bos, *engine.tokenize(window.before)] for window in found]

    prompts = worker.submit(build).future.result()
    return [
        Example(
            prompt=tuple(prompt),
            target=window.target,
            source=window.source,
            target_tokens=TARGET_TOKENS,
        )
        for window, prompt in zip(found, prompts, strict=True)
    ]


def saved_row(example: Example) -> dict[str, Any]:
    """A window's example as the work folder keeps it (JSON)."""
    return {
        "prompt": example.prompt,
        "target": example.target,
        "target_tokens": example.target_tokens,
        "source": example.source,
    }


def saved_example(row: dict[str, Any]) -> Example:
    """An example read back from `saved_row`."""
    return Example(
        tuple(row["prompt"]),
        row["target"],
        source=row.get("source", "text"),
        target_tokens=int(row.get("target_tokens", TARGET_TOKENS)),
    )
