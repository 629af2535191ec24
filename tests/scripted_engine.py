"""A stand-in engine that answers from a script, for fast tests of what sits above the engine.

`ScriptedEngine` implements the models' `Engine` protocol and nothing more (it is no
`TokenScorer`, `HealthReporter` or `SpeedMeter`), so it runs on the real `ModelWorker` with the
real queue, priorities, supersession and cancellation. It honours a `CompletionRequest` the way
the real engines do wherever the completer relies on it:

- the script gives the model's candidates in its order of preference (a list of texts, or a
  function of the request returning a text or such a list); the answer is the first candidate
  whose first content token is not in `request.banned_first` and whose content does not start
  with one of `request.avoid_first`: banning the best answer's first token gives the runner-up;
- the text is generated token by token (a token: a run of word characters or one other
  character, with the whitespace before it), `request.stop(text)` is called after each token and
  cuts the text there (stop_reason "stop"); the end of the candidate is "eos",
  `request.max_tokens` tokens "max_tokens";
- `first_content_token` is a stable number for the first word (the same word, the same number),
  `token_logprobs` has one entry per generated token, `generated_tokens` and `live_generated`
  count them, `prefix_cut` is 0;
- a `warm_only` request generates nothing and stops with "warm";
- with `search=True` (an engine without FIM tokens, like the bundled models) a request for
  `candidates` > 1 also gets the next allowed candidates of the script, generated the same
  way, as `alternatives` (in the script's order: the script is the ranking), and `searched`;
- `cancelled()` is checked before every token: stop_reason "cancelled".

`block(n)` makes the n-th `complete` call (0-based, warm-only calls included) wait, checking
`cancelled()` every few milliseconds, until `release(n)` or a cancel; `wait_blocked(n)` waits
until that call has reached the block. Every request is kept in `requests`, and what became of
each call in `calls`.
"""

from __future__ import annotations

import re
import threading
import time
import zlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from hintwise.models.engine import (
    Candidate,
    Completion,
    CompletionRequest,
    Generation,
    GenerationRequest,
    ModelInfo,
)

Script = Sequence[str] | Callable[[CompletionRequest], str | Sequence[str]]

# A token: leading whitespace with a run of word characters, or with one other character; or
# whitespace alone at the end of the text.
_TOKEN = re.compile(r"\s*(?:\w+|[^\w\s])|\s+")
_FIRST_WORD = re.compile(r"\s*(\w+|[^\w\s])")
POLL_S = 0.002
LOGPROB = -0.25


def tokens_of(text: str) -> list[str]:
    """The pieces the scripted engine generates `text` in."""
    return _TOKEN.findall(text)


def first_token(text: str) -> int | None:
    """The id the scripted engine gives the first content token of `text` (None: no content)."""
    match = _FIRST_WORD.match(text)
    return None if match is None else zlib.crc32(match.group(1).encode()) & 0x7FFFFFFF


@dataclass
class Call:
    """One `complete` call: the request, what was answered, and whether a cancel was seen."""

    request: CompletionRequest
    completion: Completion | None = None
    saw_cancel: bool = False
    released: threading.Event = field(default_factory=threading.Event)
    blocked: threading.Event = field(default_factory=threading.Event)


class ScriptedEngine:
    """An `Engine` answering completions from a script (see the module's docstring)."""

    def __init__(
        self,
        script: Script = (),
        *,
        name: str = "scripted",
        logprob: float = LOGPROB,
        generations: Sequence[str] = (),
        search: bool = False,
    ):
        self.script = script
        self.search = search
        self.logprob = logprob
        self.generations = list(generations)
        self.info = ModelInfo(
            name=name,
            path=f"/scripted/{name}.gguf",
            architecture="scripted",
            size_bytes=0,
            vocab_size=0,
            context_length=None,
            n_ctx=4096,
            fim_family=None,
            load_ms=0.0,
            threads=1,
        )
        self.live_generated = 0
        self.requests: list[CompletionRequest] = []
        self.generation_requests: list[GenerationRequest] = []
        self.calls: list[Call] = []
        self.closed = False
        self._prepared = False
        self._blocks: set[int] = set()
        self._lock = threading.Lock()

    # -- what a test controls --------------------------------------------------------------

    def block(self, call: int) -> None:
        """Make the `call`-th `complete` call (0-based) wait until released or cancelled."""
        self._blocks.add(call)

    def release(self, call: int) -> None:
        self._blocks.discard(call)
        with self._lock:
            if call < len(self.calls):
                self.calls[call].released.set()

    def wait_blocked(self, call: int, timeout: float = 5.0) -> bool:
        """Wait until the `call`-th call has started and reached its block."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self._lock:
                if call < len(self.calls) and self.calls[call].blocked.is_set():
                    return True
            time.sleep(POLL_S)
        return False

    @property
    def completion_requests(self) -> list[CompletionRequest]:
        """The requests that asked for text (not the warm-only ones)."""
        return [request for request in self.requests if not request.warm_only]

    # -- the Engine protocol ---------------------------------------------------------------

    @property
    def prepared(self) -> bool:
        return self._prepared

    def prepare(self, cancelled: Callable[[], bool] = lambda: False) -> bool:
        self._prepared = True
        return True

    def close(self) -> None:
        self.closed = True

    def generate(self, request: GenerationRequest, cancelled: Callable[[], bool]) -> Generation:
        self.generation_requests.append(request)
        if cancelled():
            return Generation("", stop_reason="cancelled")
        text = self.generations.pop(0) if self.generations else ""
        pieces = tokens_of(text)
        return Generation(
            text,
            stop_reason="eos",
            generated_tokens=len(pieces),
            token_logprobs=[self.logprob] * len(pieces),
        )

    def complete(self, request: CompletionRequest, cancelled: Callable[[], bool]) -> Completion:
        with self._lock:
            index = len(self.calls)
            call = Call(request)
            self.calls.append(call)
            self.requests.append(request)
        self.live_generated = 0
        result = Completion(text="", prompt_text=request.prefix, prefix_cut=0)
        call.completion = result
        if index in self._blocks and not self._wait(call, cancelled):
            result.stop_reason = "cancelled"
            return result
        if request.warm_only:
            result.stop_reason = "warm"
            return result
        allowed = self._allowed(request)
        self._generate(request, allowed[0] if allowed else "", result, call, cancelled)
        if self.search and request.candidates > 1 and result.stop_reason != "cancelled":
            for text in allowed[1 : request.candidates]:
                other = Completion(text="")
                self._generate(request, text, other, call, cancelled)
                result.alternatives.append(
                    Candidate(other.text, other.token_logprobs, other.stop_reason)
                )
                result.generated_tokens += other.generated_tokens
            result.searched = 1 + len(result.alternatives)
        return result

    # -- inner workings --------------------------------------------------------------------

    def _wait(self, call: Call, cancelled: Callable[[], bool]) -> bool:
        """Block until released (True) or cancelled (False)."""
        call.blocked.set()
        while not call.released.is_set():
            if cancelled():
                call.saw_cancel = True
                return False
            time.sleep(POLL_S)
        return True

    def _candidates(self, request: CompletionRequest) -> list[str]:
        script = self.script
        answer = script(request) if callable(script) else script
        return [answer] if isinstance(answer, str) else list(answer)

    def _allowed(self, request: CompletionRequest) -> list[str]:
        """The candidates the request allows, best first."""
        allowed = []
        for text in self._candidates(request):
            first = first_token(text)
            if first is not None and first in request.banned_first:
                continue
            if request.avoid_first and text.lstrip().startswith(request.avoid_first):
                continue
            allowed.append(text)
        return allowed

    def _generate(
        self,
        request: CompletionRequest,
        answer: str,
        result: Completion,
        call: Call,
        cancelled: Callable[[], bool],
    ) -> None:
        text = ""
        result.stop_reason = "eos"
        for piece in tokens_of(answer):
            if result.generated_tokens >= request.max_tokens:
                result.stop_reason = "max_tokens"
                break
            if cancelled():
                call.saw_cancel = True
                result.stop_reason = "cancelled"
                break
            text += piece
            result.generated_tokens += 1
            result.token_logprobs.append(self.logprob)
            self.live_generated = result.generated_tokens
            if result.first_content_token is None and text.strip():
                result.first_content_token = first_token(text)
            if request.stop is not None:
                cut_at = request.stop(text)
                if cut_at is not None:
                    text = text[:cut_at]
                    result.stop_reason = "stop"
                    break
        else:
            if result.generated_tokens >= request.max_tokens:
                result.stop_reason = "max_tokens"  # the real loop checks the cap before the end
        result.text = text
