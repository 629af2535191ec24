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
import time
from collections.abc import Callable
from typing import TYPE_CHECKING

import numpy as np

from hintwise.models import fim as fim_formats
from hintwise.models.engine import Completion, CompletionRequest
from hintwise.models.llama.loading import evaluate, last_logits
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
        llm, vocab = self.llm, self.vocab
        deadline = started + request.time_limit_s
        decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
        remaining = healed  # bytes the next tokens must still re-create
        text = ""
        index = vocab.piece_index() if healed else None
        while True:
            if result.generated_tokens >= request.max_tokens:
                result.stop_reason = "max_tokens"
                break
            if llm.n_tokens >= self.n_ctx - 1:
                result.stop_reason = "context"
                break
            if cancelled():
                result.stop_reason = "cancelled"
                break
            if time.perf_counter() > deadline:
                result.stop_reason = "time"
                break
            logits = last_logits(llm, vocab.n_vocab)
            top = float(logits.max())
            log_norm = top + float(np.log(np.exp(logits - top).sum(dtype=np.float64)))
            banned = (
                request.banned_first | vocab.starting_with(request.avoid_first)
                if not text.strip()
                else frozenset()
            )
            token = self._choose(
                logits, remaining, index, banned, request.indent_first if not text else ""
            )
            if vocab.ends_generation(token):
                result.stop_reason = "eos"
                break
            piece = vocab.piece(token)
            result.token_logprobs.append(float(logits[token]) - log_norm)
            result.generated_tokens += 1
            self.on_token(result.generated_tokens)
            if remaining and not (piece.startswith(remaining) or remaining.startswith(piece)):
                remaining = b""  # every healing candidate was banned: give healing up
            if remaining:
                consumed = min(len(remaining), len(piece))
                piece, remaining = piece[consumed:], remaining[consumed:]
            text += decoder.decode(piece)
            if result.first_content_token is None and text.strip():
                result.first_content_token = token
            if request.stop is not None:
                cut_at = request.stop(text)
                if cut_at is not None:
                    text = text[:cut_at]
                    result.stop_reason = "stop"
                    break
            llm.eval([token])
        result.text = text

    def _choose(
        self,
        logits: np.ndarray,
        remaining: bytes,
        index: PieceIndex | None,
        banned: frozenset[int],
        indent: str = "",
    ) -> int:
        """Greedy choice among the tokens allowed here: those that re-create the healed text
        (while some remains), minus banned ones, starting with `indent` characters if any."""
        piece = self.vocab.piece
        if remaining and index is not None:
            candidates = []
            for token in index.allowed(remaining, piece):
                rest = piece(token)[len(remaining) :]
                if token in banned or (indent and rest and rest[:1] != indent.encode()):
                    continue
                candidates.append(token)
            if candidates:
                ids = np.asarray(candidates)
                return int(ids[int(np.argmax(logits[ids]))])
        masked = logits
        if banned or (indent and not remaining):
            masked = np.full_like(logits, -np.inf) if indent and not remaining else logits.copy()
            if indent and not remaining:
                ids = self.vocab.indenting(indent)
                masked[ids] = logits[ids]
            if banned:
                masked[list(banned)] = -np.inf
        return int(np.argmax(masked))
