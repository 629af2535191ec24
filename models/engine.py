"""What any engine is asked and what it answers: plain dataclasses, no llama.cpp here.

An engine turns the text around a cursor into a continuation with per-token log-probabilities
(the acceptance gate's strongest feature). It runs on one worker thread and checks `cancelled()`
between prompt chunks and between tokens, which is what makes a stale request stop using the CPU
rather than merely have its reply dropped.

`Engine` is what every engine does. What only some engines can do is a capability of its own,
checked with `isinstance`: `TokenScorer` (per-token log-probs of given text, the local engine),
`HealthReporter` (a server's health, the HTTP engine), `SpeedMeter` (`hintwise doctor`'s speed).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Literal, Protocol, runtime_checkable

StopReason = Literal["stop", "eos", "max_tokens", "time", "cancelled", "context", "warm"]


@dataclass
class CompletionRequest:
    """Text around the cursor and the limits for one completion.

    `prefix` starts at a line the caller keeps stable between keystrokes (see models.prompt);
    `stop(text)` is called with the text generated so far and returns the index at which to cut
    it when generation should end there (the caller's syntax rules), or None to go on.
    """

    prefix: str
    suffix: str = ""
    max_tokens: int = 64
    time_limit_s: float = 1.0
    prefix_budget: int = 1024
    suffix_budget: int = 128
    token_healing: bool = True
    stop: Callable[[str], int | None] | None = None
    warm_only: bool = False
    # Token ids not allowed to start the suggestion's content (used to ask for the runner-up
    # when the best answer was unusable, e.g. a copy of the line below the cursor).
    banned_first: frozenset[int] = frozenset()
    # Texts the suggestion's content must not start with, e.g. a comment marker where code is
    # expected (small models like to answer with a comment line).
    avoid_first: tuple[str, ...] = ()
    # The suggestion must start with indentation made of this character (" " or "\t": the
    # file's), e.g. at column 0 inside an indented block, where an editor would have
    # auto-indented. Empty: no constraint.
    indent_first: str = ""
    # Text put before the prefix (other files: recently viewed chunks, definitions of names
    # used here), within its own token budget. The caller changes it only for a reason (another
    # file viewed or saved), never per keystroke, so the prompt cache survives typing.
    preamble: str = ""
    preamble_budget: int = 512
    # How many candidates to search for a model without FIM tokens (the top first content
    # tokens, each continued greedily, ranked by how likely the model finds the code after the
    # cursor after each; see models.llama.candidates). 1: greedy only, as before.
    candidates: int = 1
    # Runner-up first tokens less likely than this (probability) are not continued: a sure
    # model costs one candidate. 0 explores all `candidates` (e.g. when the user asked for
    # alternatives).
    candidate_min_p: float = 0.0
    # The runner-ups are wanted whole (the user asked: an editor cycles through them). When
    # False a candidate is dropped as soon as it can no longer outrank the best one so far.
    alternatives: bool = False


@dataclass
class Candidate:
    """One continuation the candidate search produced (a runner-up of the chosen one).

    `score` is the log-likelihood the ranking used: the candidate's own tokens plus the code
    after the cursor scored after it (None when that could not be scored in time)."""

    text: str
    token_logprobs: list[float] = field(default_factory=list)
    stop_reason: StopReason = "stop"
    score: float | None = None
    suffix_logprob: float | None = None


@dataclass
class Completion:
    """A continuation and how it was made (all timings in milliseconds)."""

    text: str
    token_logprobs: list[float] = field(default_factory=list)
    stop_reason: StopReason = "stop"
    fim: bool = False
    prompt_tokens: int = 0
    prompt: list[int] = field(default_factory=list, repr=False)  # the token ids the model saw
    prompt_text: str = field(default="", repr=False)  # the same, as text (markers included)
    evaluated_tokens: int = 0  # prompt tokens llama.cpp actually ran (the rest came from cache)
    prompt_threads: int = 0  # the most threads a chunk of them ran on (0: not known)
    reused_tokens: int = 0
    generated_tokens: int = 0
    tokens_after_cancel: int = 0
    prefix_cut: int = 0  # characters the window dropped from the start of the request's prefix
    preamble_tokens: int = 0  # prompt tokens taken by the request's preamble
    healed: str = ""  # text backed off by token healing and re-created by the model
    first_content_token: int | None = None  # the first generated token that is not whitespace
    # The runner-up candidates, best first, when a candidate search ran (their `text` is raw
    # model text like `text`); `token_logprobs` and `text` are the chosen candidate's, while
    # `generated_tokens` counts every token the search generated (its cost).
    alternatives: list[Candidate] = field(default_factory=list)
    score: float | None = None  # the chosen candidate's ranking score, when ranked
    searched: int = 0  # candidates generated by a candidate search (0: none ran)
    tokenize_ms: float = 0.0
    prompt_ms: float = 0.0
    generate_ms: float = 0.0


@dataclass
class GenerationRequest:
    """Free generation for explanations and reviews (not the cursor): a chat or a raw prompt.

    `messages` ({"role", "content"} dicts) are rendered with the model's chat template; `prompt`
    is used as is when there are no messages. `json_schema` (or a GBNF `grammar`) constrains the
    output so that even a small model returns parseable JSON.
    """

    messages: list[dict[str, str]] | None = None
    prompt: str = ""
    max_tokens: int = 512
    temperature: float = 0.0
    json_schema: dict | None = None
    grammar: str | None = None
    stop: tuple[str, ...] = ()
    time_limit_s: float = 60.0


@dataclass
class Generation:
    """What a GenerationRequest produced (timings in milliseconds)."""

    text: str
    stop_reason: StopReason = "stop"
    prompt_tokens: int = 0
    generated_tokens: int = 0
    token_logprobs: list[float] = field(default_factory=list)
    prompt_ms: float = 0.0
    generate_ms: float = 0.0


@dataclass(frozen=True)
class TokenScore:
    """One token of scored text: where it starts (characters into the text), how likely the
    model found it (natural log), and what the model would have written there instead."""

    offset: int
    text: str
    logprob: float
    expected: str
    expected_logprob: float


@dataclass(frozen=True)
class ModelInfo:
    """What `hintwise doctor` and the status line say about a loaded model."""

    name: str
    path: str
    architecture: str
    size_bytes: int
    vocab_size: int
    context_length: int | None
    n_ctx: int
    fim_family: str | None
    load_ms: float
    threads: int
    adapter: str | None = None  # the GGUF LoRA applied to completions (`hintwise tune`)


class Engine(Protocol):
    """What the worker and the features call on any engine (local or remote)."""

    info: ModelInfo
    # Tokens generated so far by the running request; the worker reads it when it cancels one.
    live_generated: int

    @property
    def prepared(self) -> bool:
        """True once `prepare` has finished (requests are served before, only less well)."""

    def complete(self, request: CompletionRequest, cancelled: Callable[[], bool]) -> Completion: ...

    def generate(self, request: GenerationRequest, cancelled: Callable[[], bool]) -> Generation:
        """Explanations and reviews. Must not evict the completion prompt's cache (a separate
        context or a saved state), so the next keystroke stays warm."""

    def prepare(self, cancelled: Callable[[], bool] = ...) -> bool:
        """One-off work after loading that the first request should not wait for; it stops when
        `cancelled()` says so and continues on the next call. True when finished."""

    def close(self) -> None: ...


@runtime_checkable
class TokenScorer(Protocol):
    """An engine that can say how likely it finds each token of a given text."""

    def score(
        self,
        prefix: str,
        text: str,
        cancelled: Callable[[], bool],
        spans: list[tuple[int, int]] | None = None,
    ) -> list[TokenScore] | None:
        """Each token of `text` after `prefix` with its log-prob and the model's own first
        choice there; None when cancelled (or when the text does not fit). With `spans`
        (character ranges of `text`) only the tokens overlapping them need a score: the others
        may have a NaN log-prob (scoring fewer tokens costs less)."""


@runtime_checkable
class HealthReporter(Protocol):
    """An engine whose model is elsewhere (a server) and can be up, down, slow or refusing."""

    def status(self) -> dict:
        """Health and what is known about the server, without asking it."""

    def check(self) -> dict:
        """Reach the server now: its facts, or a "problem" entry saying what is wrong."""


@runtime_checkable
class SpeedMeter(Protocol):
    """An engine that can measure its own prompt and decode throughput."""

    def measure_speed(self, prompt_tokens: int = 256, decode_tokens: int = 32) -> dict[str, float]:
        """Tokens per second, by name (e.g. "prompt_tokens_per_s", "decode_tokens_per_s")."""
