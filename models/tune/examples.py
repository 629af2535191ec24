"""A training example for the completion adapter."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Example:
    """What the model saw and what it should have said.

    `prompt` holds the token ids the serving llama.cpp built for the request (same vocabulary
    as the transformers model loaded from the same GGUF), so training sees exactly the prompts
    the server sends; `target` is the text the user kept (an accepted suggestion that
    survived, what they wrote instead of a rejected one, or the real line of a replayed file).
    """

    prompt: tuple[int, ...]
    target: str
    weight: float = 1.0
    # where it came from: "store", "repo" (a replayed line), "text" (a window of the
    # repository), "general" (a window of the standard library)
    source: str = ""
    time_ms: int = 0  # when the suggestion was made (replay: 0); orders the held-out split
    # the most of the target's tokens training keeps; 0: a third of the sequence, room for a
    # suggestion of a line or a few (a window of the repository's text keeps more)
    target_tokens: int = 0
