"""Completions at the cursor on the engine's main llama.cpp context.

Generation is a small greedy loop over `Llama.eval` rather than `Llama.generate`: we need the
per-token log-probs (generate only offers them with `logits_all=True`, which keeps a
n_ctx × 262,144 float array for Gemma), a healing constraint on the first tokens, a cancellation
check between prompt chunks as well as between tokens, and the count of prompt tokens that were
really evaluated. The KV cache is reused exactly as llama-cpp-python does it: keep the longest
common token prefix with what is already in the context and evaluate only the rest.
"""

from __future__ import annotations

import codecs
import dataclasses
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np

from hintwise.models import fim as fim_formats
from hintwise.models.engine import Completion, CompletionRequest, StopReason
from hintwise.models.llama import candidates
from hintwise.models.llama.loading import evaluate, last_logits
from hintwise.models.llama.logits import largest, log_softmax_at, masked
from hintwise.models.llama.threads import BatchThreads
from hintwise.models.llama.vocabulary import Vocabulary
from hintwise.models.prompt import PieceIndex, fit_preamble, fit_prefix, fit_suffix, heal

if TYPE_CHECKING:
    from llama_cpp import Llama


class Completer:
    """Builds completion prompts and runs the constrained greedy loop on one context.

    `on_token(n)` is called with the number of tokens generated so far after each token (the
    engine keeps it as `live_generated`, which the worker reads when it cancels a request).
    """

    def __init__(
        self,
        llm: Llama,
        vocab: Vocabulary,
        on_token: Callable[[int], None],
        threads: BatchThreads | None = None,
    ):
        self.llm = llm
        self.vocab = vocab
        self.n_ctx = llm.n_ctx()
        self.on_token = on_token
        self.threads = threads
        self.preamble_tokens = 0  # of the last prompt built
        self.generated = 0  # tokens generated for the running request, every candidate counted

    def build_prompt(self, request: CompletionRequest) -> tuple[list[int], bytes, int, int]:
        """Prompt tokens, the healed bytes to re-create, the prefix cut and the prompt length."""
        vocab = self.vocab
        room = self.n_ctx - request.max_tokens - 8
        preamble = fit_preamble(
            vocab.tokenize, request.preamble, min(request.preamble_budget, room // 4)
        )
        prefix_budget = max(
            16, min(request.prefix_budget, room - request.suffix_budget - len(preamble))
        )
        window = fit_prefix(vocab.tokenize, request.prefix, prefix_budget)
        prefix_tokens = window.tokens
        healed = b""
        # Healing needs the piece index; until background preparation has built it (the first
        # second after loading) requests go without rather than wait for it.
        if request.token_healing and not request.warm_only and vocab.prepared:
            healing = heal(prefix_tokens, vocab.piece)
            prefix_tokens, healed = healing.tokens, healing.text
        prefix_tokens = [*preamble, *prefix_tokens]  # other files first, then this one
        self.preamble_tokens = len(preamble)
        bos = vocab.bos_tokens()
        if vocab.fim is not None:
            suffix_tokens = fit_suffix(vocab.tokenize, request.suffix, request.suffix_budget)
            tokens = fim_formats.build_tokens(vocab.fim, prefix_tokens, suffix_tokens, bos)
        else:
            tokens = [*bos, *prefix_tokens]
        return tokens, healed, window.cut_chars, len(tokens)

    def complete(self, request: CompletionRequest, cancelled: Callable[[], bool]) -> Completion:
        started = time.perf_counter()
        tokens, healed, cut, prompt_len = self.build_prompt(request)
        result = Completion(
            text="",
            fim=self.vocab.fim is not None,
            prompt_tokens=prompt_len,
            prompt=tokens,
            prompt_text=self.llm.detokenize(tokens, special=True).decode("utf-8", errors="replace"),
            prefix_cut=cut,
            preamble_tokens=self.preamble_tokens,
            healed=healed.decode("utf-8", errors="replace"),
        )
        tokenized = time.perf_counter()
        result.tokenize_ms = (tokenized - started) * 1000
        if not tokens:  # nothing before the cursor and a model without BOS: nothing to go on
            return result
        reused, evaluated, finished = evaluate(self.llm, tokens, cancelled, self.threads)
        evaluated_at = time.perf_counter()
        result.reused_tokens, result.evaluated_tokens = reused, evaluated
        if self.threads is not None and self.threads.chosen:
            result.prompt_threads = max(self.threads.chosen)
        result.prompt_ms = (evaluated_at - tokenized) * 1000
        if not finished:
            result.stop_reason = "cancelled"
            return result
        if request.warm_only:
            result.stop_reason = "warm"
            return result
        self._generate(request, healed, result, cancelled, evaluated_at)
        result.generate_ms = (time.perf_counter() - evaluated_at) * 1000
        return result

    def _generate(
        self,
        request: CompletionRequest,
        healed: bytes,
        result: Completion,
        cancelled: Callable[[], bool],
        started: float,
    ) -> None:
        self.generated = 0
        branch = Branch(remaining=healed, start=self.llm.n_tokens, healed=healed)
        limits = Limits(request, cancelled, started + request.time_limit_s)
        if request.candidates > 1 and self.vocab.fim is None:
            chosen = candidates.search(self, branch, limits)
        else:
            self.run(branch, limits)
            chosen = candidates.Ranked(branch)
        branch = chosen.branch
        result.text = branch.text
        result.token_logprobs = branch.logprobs
        result.stop_reason = branch.stop_reason or "stop"
        result.first_content_token = branch.first_content_token
        result.generated_tokens = self.generated
        result.score = chosen.score
        result.alternatives = chosen.alternatives
        result.searched = chosen.searched

    def run(
        self,
        branch: Branch,
        limits: Limits,
        fork_at_content: int = 0,
        floor: float = -np.inf,
    ) -> list[int]:
        """Continue `branch` greedily until it stops (it is the context's last sequence).

        With `fork_at_content` > 1, the step that writes the first content stops after
        choosing and returns up to that many ranked allowed tokens for it (the caller forks
        there); otherwise returns []. A branch whose log-probability falls below `floor`
        stops there, marked `pruned` (log-probs only fall as tokens are added)."""
        llm, vocab, request = self.llm, self.vocab, limits.request
        index = vocab.piece_index() if branch.remaining else None
        while branch.stop_reason is None:
            reason = limits.exceeded(len(branch.tokens), llm.n_tokens >= self.n_ctx - 1)
            if reason is not None:
                branch.stop_reason = reason
                break
            logits = last_logits(llm, vocab.n_vocab)
            blank = not branch.text.strip()
            banned = (
                request.banned_first | vocab.starting_with(request.avoid_first)
                if blank
                else frozenset()
            )
            indent = request.indent_first if not branch.text else ""
            ranked = self._ranked(
                logits, branch.remaining, index, banned, indent, max(1, fork_at_content)
            )
            if fork_at_content > 1 and blank and self.writes_content(branch, ranked[0]):
                return [t for t in ranked if self.writes_content(branch, t)]
            self.take(branch, ranked[0], log_softmax_at(logits, ranked[0]), request)
            if sum(branch.logprobs) < floor:
                branch.pruned = True
                break
        return []

    def writes_content(self, branch: Branch, token: int) -> bool:
        """Whether `token`, appended to `branch`, writes something that is not blank."""
        if self.vocab.ends_generation(token):
            return False
        piece = self.vocab.piece(token)
        if branch.remaining:
            piece = piece[len(branch.remaining) :]
        return bool(piece.strip())

    def take(self, branch: Branch, token: int, logprob: float, request: CompletionRequest) -> None:
        """Append `token` to `branch` (healing, stop rule) and evaluate it unless it ended it."""
        vocab = self.vocab
        if vocab.ends_generation(token):
            branch.stop_reason = "eos"
            return
        piece = vocab.piece(token)
        branch.tokens.append(token)
        branch.logprobs.append(logprob)
        self.generated += 1
        self.on_token(self.generated)
        remaining = branch.remaining
        if remaining and not (piece.startswith(remaining) or remaining.startswith(piece)):
            remaining = b""  # every healing candidate was banned: give healing up
        if remaining:
            consumed = min(len(remaining), len(piece))
            piece, remaining = piece[consumed:], remaining[consumed:]
        branch.remaining = remaining
        branch.text += branch.decoder.decode(piece)
        if branch.first_content_token is None and branch.text.strip():
            branch.first_content_token = token
        if request.stop is not None:
            cut_at = request.stop(branch.text)
            if cut_at is not None:
                branch.text = branch.text[:cut_at]
                branch.stop_reason = "stop"
                return
        self.llm.eval([token])
        branch.evaluated += 1

    def rewind(self, branch: Branch, kept: int) -> None:
        """Make the context hold the prompt and the first `kept` tokens of `branch` (the rest
        of the KV cache after that is dropped by the next evaluation)."""
        self.llm.n_tokens = branch.start + kept

    def _choose(
        self,
        logits: np.ndarray,
        remaining: bytes,
        index: PieceIndex | None,
        banned: frozenset[int],
        indent: str = "",
    ) -> int:
        """The best allowed token here (see `_ranked`)."""
        return self._ranked(logits, remaining, index, banned, indent, 1)[0]

    def _ranked(
        self,
        logits: np.ndarray,
        remaining: bytes,
        index: PieceIndex | None,
        banned: frozenset[int],
        indent: str,
        k: int,
    ) -> list[int]:
        """The `k` likeliest tokens allowed here, best first: those that re-create the healed
        text (while some remains), minus banned ones, starting with `indent` characters if any."""
        piece = self.vocab.piece
        if remaining and index is not None:
            allowed = []
            for token in index.allowed(remaining, piece):
                rest = piece(token)[len(remaining) :]
                if token in banned or (indent and rest and rest[:1] != indent.encode()):
                    continue
                allowed.append(token)
            if allowed:
                mask = masked(logits, -np.inf)
                mask[allowed] = logits[allowed]
                return [int(np.argmax(mask))] if k == 1 else largest(mask, k)
        choices = logits
        if banned or (indent and not remaining):
            mask = masked(logits, -np.inf if indent and not remaining else None)
            if indent and not remaining:
                ids = self.vocab.indenting(indent)
                mask[ids] = logits[ids]
            if banned:
                mask[list(banned)] = -np.inf
            choices = mask
        if k == 1:
            return [int(np.argmax(choices))]
        return largest(choices if choices is not logits else masked(logits), k)


@dataclass
class Branch:
    """One continuation being generated: its tokens after the prompt (which ends at `start`),
    the healed bytes it must still re-create, and its text so far."""

    remaining: bytes
    start: int
    healed: bytes = b""  # what healing backed off (the text starts by re-creating it)
    text: str = ""
    tokens: list[int] = field(default_factory=list)
    logprobs: list[float] = field(default_factory=list)
    evaluated: int = 0  # of `tokens`, how many are in the KV cache (the last one may not be)
    stop_reason: StopReason | None = None
    first_content_token: int | None = None
    pruned: bool = False  # stopped because it could no longer outrank the best candidate
    decoder: codecs.IncrementalDecoder = field(
        default_factory=lambda: codecs.getincrementaldecoder("utf-8")(errors="replace")
    )

    def fork(self) -> Branch:
        """A copy to continue differently from here (its own decoder state)."""
        decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
        decoder.setstate(self.decoder.getstate())
        return dataclasses.replace(
            self, tokens=list(self.tokens), logprobs=list(self.logprobs), decoder=decoder
        )


@dataclass
class Limits:
    """What stops generation, for every candidate of one request together."""

    request: CompletionRequest
    cancelled: Callable[[], bool]
    deadline: float

    def exceeded(self, generated: int, context_full: bool) -> StopReason | None:
        if generated >= self.request.max_tokens:
            return "max_tokens"
        if context_full:
            return "context"
        if self.cancelled():
            return "cancelled"
        if time.perf_counter() > self.deadline:
            return "time"
        return None
