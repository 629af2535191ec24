"""In-process llama.cpp (llama-cpp-python) engine with prompt-cache reuse and cancellation.

The facade the worker and the features see. Two llama.cpp contexts on one GGUF: the main one
for completions (its KV cache holds the prompt around the cursor between keystrokes), and a
second one, made on first use, for explanations, reviews and scoring, so that those never
evict the completion prompt. The work itself lives beside this module:

    loading.py     llama.cpp's log, the AMX workaround, threads, opening a context, cache reuse
    threads.py     prompt evaluation on every core while the rest of the machine is idle
    vocabulary.py  token pieces, the healing index (`prepare`), constraint token sets
    completion.py  the completion prompt and the constrained greedy loop
    chat.py        the second context: chat templates, grammars, generate(), sampling
    scoring.py     per-token log-probs of given text and the model's own choice

Only the worker thread may call into an engine.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

from hintwise.models import fim as fim_formats
from hintwise.models.engine import (
    Completion,
    CompletionRequest,
    Generation,
    GenerationRequest,
    ModelInfo,
    TokenScore,
)
from hintwise.models.errors import GGUFError, ModelLoadError
from hintwise.models.files.gguf import read_header
from hintwise.models.llama import scoring
from hintwise.models.llama.chat import Chat
from hintwise.models.llama.completion import Completer
from hintwise.models.llama.loading import (
    avoid_amx_crash,
    default_threads,
    last_logits,
    open_context,
    route_llama_logs,
)
from hintwise.models.llama.threads import BatchThreads
from hintwise.models.llama.vocabulary import Vocabulary
from hintwise.models.prompt import PieceIndex


class LlamaEngine:
    """One GGUF model and its llama.cpp contexts, owned by the worker thread."""

    def __init__(
        self,
        path: str | os.PathLike[str],
        name: str | None = None,
        n_ctx: int = 4096,
        threads: int = 0,
        gpu_layers: int = 0,
        prompt_threads: int = 0,
        adapter: Path | None = None,
    ):
        """`adapter`: a GGUF LoRA (`hintwise tune`) applied to the completion context only;
        explanations and reviews keep the base model, whose likelihoods their margins were
        calibrated on."""
        path = Path(path)
        started = time.perf_counter()
        try:
            header = read_header(path, fim_formats.marker_texts())
        except GGUFError as error:
            raise ModelLoadError(str(error)) from None
        self.fim = fim_formats.detect_in_header(header.found_tokens)
        route_llama_logs()
        self.amx_workaround = avoid_amx_crash()
        threads = threads or default_threads()
        try:
            self.llm = open_context(path, n_ctx, threads, gpu_layers, adapter)
        except (ValueError, RuntimeError, OSError) as error:
            if adapter is not None:
                raise ModelLoadError(
                    f"llama.cpp could not apply the adapter {adapter} to {path.name}: {error}"
                ) from None
            raise ModelLoadError(
                f"llama.cpp could not load {path} ({header.architecture}): {error}. "
                "Is the architecture supported by the installed llama-cpp-python?"
            ) from None
        self.vocab = Vocabulary(self.llm, self.fim)
        self.n_vocab = self.vocab.n_vocab
        self.n_ctx = self.llm.n_ctx()
        self.add_bos = self.vocab.add_bos
        self.bos = self.vocab.bos
        # Tokens generated so far by the running request; read by the worker when it cancels.
        self.live_generated = 0
        # Long completion prompts run on every core the machine leaves free (threads.py);
        # `prompt_threads` > 0 pins their count instead. Generation keeps `threads`.
        self.prompt_threads = BatchThreads(generation=threads, fixed=prompt_threads)
        self._completer = Completer(self.llm, self.vocab, self._count, self.prompt_threads)
        self._chat = Chat(path, self.n_ctx, threads, gpu_layers, self.vocab, self._count)
        self.info = ModelInfo(
            name=name or header.name,
            path=str(path),
            architecture=header.architecture,
            size_bytes=path.stat().st_size,
            vocab_size=self.n_vocab,
            context_length=header.context_length,
            n_ctx=self.n_ctx,
            fim_family=self.fim.family if self.fim else None,
            load_ms=(time.perf_counter() - started) * 1000,
            threads=threads,
            adapter=str(adapter) if adapter else None,
        )

    def _count(self, generated: int) -> None:
        self.live_generated = generated

    # -- vocabulary ------------------------------------------------------------------------

    def tokenize(self, text: str) -> list[int]:
        """Tokens of plain text: no BOS, and marker texts inside code stay plain text."""
        return self.vocab.tokenize(text)

    def piece(self, token: int) -> bytes:
        return self.vocab.piece(token)

    def piece_index(self) -> PieceIndex:
        """Sorted vocabulary pieces for token healing (~0.7 s for Gemma's 262,144 tokens)."""
        return self.vocab.piece_index()

    @property
    def prepared(self) -> bool:
        return self.vocab.prepared

    def prepare(self, cancelled: Callable[[], bool] = lambda: False) -> bool:
        """Build the healing index in slices, giving way to requests between slices (see
        Vocabulary.prepare). Returns True when done."""
        return self.vocab.prepare(cancelled)

    # -- the Engine protocol ---------------------------------------------------------------

    def build_prompt(self, request: CompletionRequest) -> tuple[list[int], bytes, int, int]:
        """Prompt tokens, the healed bytes to re-create, the prefix cut and the prompt length."""
        return self._completer.build_prompt(request)

    def complete(self, request: CompletionRequest, cancelled: Callable[[], bool]) -> Completion:
        self.live_generated = 0
        return self._completer.complete(request, cancelled)

    def chat_prompt(self, messages: list[dict[str, str]]) -> str:
        """The messages rendered with the model's own chat template (from the GGUF)."""
        return self._chat.chat_prompt(messages)

    def generate(self, request: GenerationRequest, cancelled: Callable[[], bool]) -> Generation:
        """Free generation on the second context (see Chat.generate)."""
        return self._chat.generate(request, cancelled)

    def close(self) -> None:
        self._chat.close()
        self.llm.close()

    # -- capabilities (models.engine.TokenScorer, SpeedMeter) ------------------------------

    def score(
        self,
        prefix: str,
        text: str,
        cancelled: Callable[[], bool],
        spans: list[tuple[int, int]] | None = None,
    ) -> list[TokenScore] | None:
        """How likely the model finds each token of `text` after `prefix` (those overlapping
        `spans` when given), with its own first choice there, on the generation context; None
        when cancelled (see scoring.score)."""
        return scoring.score(self._chat.context(), self.vocab, prefix, text, cancelled, spans)

    def measure_speed(self, prompt_tokens: int = 256, decode_tokens: int = 32) -> dict[str, float]:
        """Prompt and decode throughput on a cold context, for `hintwise doctor`."""
        text = "def add(a, b):\n    return a + b\n\n" * (prompt_tokens // 8 + 1)
        tokens = self.tokenize(text)[:prompt_tokens]
        self.prompt_threads.apply(self.llm, self.prompt_threads.generation)  # as configured
        self.llm.n_tokens = 0
        started = time.perf_counter()
        for start in range(0, len(tokens), 512):
            self.llm.eval(tokens[start : start + 512])
        prompt_s = time.perf_counter() - started
        started = time.perf_counter()
        for _ in range(decode_tokens):
            logits = last_logits(self.llm, self.n_vocab)
            self.llm.eval([int(np.argmax(logits))])
        decode_s = time.perf_counter() - started
        self.llm.n_tokens = 0
        return {
            "prompt_tokens_per_s": len(tokens) / prompt_s,
            "decode_tokens_per_s": decode_tokens / decode_s,
        }
