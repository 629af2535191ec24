"""Free generation for explanations and reviews, on a second llama.cpp context.

Its own KV cache means a review prompt never evicts the completion prompt: the next keystroke
stays warm. llama.cpp maps the GGUF read-only, so the weights' pages are shared with the first
context; the extra memory is this context's KV cache. Messages are rendered with the model's own
chat template; a JSON schema (or a GBNF grammar) constrains the output so that even a small model
returns parseable JSON.
"""

from __future__ import annotations

import codecs
import contextlib
import ctypes
import io
import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

import numpy as np

from hintwise.models.engine import Generation, GenerationRequest, StopReason
from hintwise.models.llama.loading import evaluate, last_logits, open_context
from hintwise.models.llama.logits import log_softmax_at
from hintwise.models.llama.vocabulary import Vocabulary

if TYPE_CHECKING:
    from llama_cpp import Llama, LlamaGrammar
    from llama_cpp.llama_types import ChatCompletionRequestMessage

# Chat formats for GGUFs that carry no template, recognised by their turn markers.
CHAT_FORMATS = (
    (
        "<start_of_turn>",
        "<start_of_turn>{role}\n{content}<end_of_turn>\n",
        "<start_of_turn>model\n",
    ),
    ("<|im_start|>", "<|im_start|>{role}\n{content}<|im_end|>\n", "<|im_start|>assistant\n"),
)

# Candidates a grammar sees first. llama.cpp's grammar sampler checks every candidate it is
# given against the grammar: all 262,144 of Gemma's tokens made JSON output ~4× slower than
# free text (90 vs 25 ms a token here). The best few almost always include an allowed one;
# only when none is allowed is the whole vocabulary checked.
GRAMMAR_TOP_K = 64


class Chat:
    """The second context (made on first use) and what runs on it: generate() and sampling.

    `on_token(n)` is called with the number of tokens generated so far after each token.
    """

    def __init__(
        self,
        path: Path,
        n_ctx: int,
        threads: int,
        gpu_layers: int,
        vocab: Vocabulary,
        on_token: Callable[[int], None],
    ):
        self.path, self.n_ctx, self.threads, self.gpu_layers = path, n_ctx, threads, gpu_layers
        self.vocab = vocab
        self.on_token = on_token
        self._llm: Llama | None = None
        self._grammars: dict[str, LlamaGrammar] = {}

    def context(self) -> Llama:
        """The second llama.cpp context on the same GGUF (opened on first use)."""
        if self._llm is None:
            self._llm = open_context(self.path, self.n_ctx, self.threads, self.gpu_layers)
        return self._llm

    def close(self) -> None:
        if self._llm is not None:
            self._llm.close()

    # -- the prompt ------------------------------------------------------------------------

    def chat_prompt(self, messages: list[dict[str, str]]) -> str:
        """The messages rendered with the model's own chat template (from the GGUF)."""
        from llama_cpp.llama_chat_format import Jinja2ChatFormatter

        llm = self.vocab.llm
        template = llm.metadata.get("tokenizer.chat_template")
        if not template:
            return self._known_chat_format(messages)
        piece = lambda t: llm.detokenize([t], special=True).decode("utf-8", "replace")  # noqa: E731
        bos = piece(llm.token_bos()) if llm.token_bos() >= 0 else ""
        eos = piece(llm.token_eos()) if llm.token_eos() >= 0 else ""
        formatter = Jinja2ChatFormatter(template=template, eos_token=eos, bos_token=bos)
        typed = cast("list[ChatCompletionRequestMessage]", messages)
        return formatter(messages=typed).prompt

    def _known_chat_format(self, messages: list[dict[str, str]]) -> str:
        """Gemma's or ChatML's turns when the vocabulary has their markers as single tokens
        (the bundled Gemma GGUF has the markers but no template); else plain paragraphs."""
        for marker, turn, opening in CHAT_FORMATS:
            if len(self.vocab.llm.tokenize(marker.encode(), add_bos=False, special=True)) == 1:
                roles = {"assistant": "model"} if marker == "<start_of_turn>" else {}
                body = "".join(
                    turn.format(role=roles.get(m["role"], m["role"]), content=m["content"])
                    for m in messages
                )
                return body + opening
        return "\n\n".join(m["content"] for m in messages) + "\n\n"

    def _prompt_tokens(self, llm: Llama, request: GenerationRequest) -> list[int]:
        text = self.chat_prompt(request.messages) if request.messages else request.prompt
        tokens = llm.tokenize(text.encode("utf-8", errors="replace"), add_bos=False, special=True)
        bos = self.vocab.bos
        if self.vocab.add_bos and bos >= 0 and (not tokens or tokens[0] != bos):
            tokens = [bos, *tokens]
        return tokens

    def _grammar(self, request: GenerationRequest) -> LlamaGrammar:
        """The llama.cpp grammar for a request's JSON schema or GBNF text (cached)."""
        from llama_cpp import LlamaGrammar

        key = request.grammar or json.dumps(request.json_schema, sort_keys=True)
        if key not in self._grammars:
            chatter = io.StringIO()
            with contextlib.redirect_stdout(chatter), contextlib.redirect_stderr(chatter):
                self._grammars[key] = (
                    LlamaGrammar.from_string(request.grammar, verbose=False)
                    if request.grammar
                    else LlamaGrammar.from_json_schema(key, verbose=False)
                )
        return self._grammars[key]

    def _sampler(self, request: GenerationRequest) -> Any:
        """llama.cpp's grammar sampler for the request (free it after use), or None."""
        if not (request.json_schema or request.grammar):
            return None
        grammar = self._grammar(request)
        return self.vocab.lib.llama_sampler_init_grammar(
            self.vocab.handle, grammar._grammar.encode(), grammar._root.encode()
        )

    # -- generation ------------------------------------------------------------------------

    def generate(self, request: GenerationRequest, cancelled: Callable[[], bool]) -> Generation:
        """Free generation on the second context, greedy unless a temperature is given.

        The prompt is evaluated in chunks with a cancellation check between them (a completion
        waiting behind a review gets the CPU within one chunk) and what was evaluated stays in
        this context's cache, so a review resumed after giving way does not start over.
        """
        started = time.perf_counter()
        llm = self.context()
        tokens = self._prompt_tokens(llm, request)
        room = self.n_ctx - request.max_tokens - 1
        result = Generation(text="", prompt_tokens=len(tokens))
        if len(tokens) > room:
            result.stop_reason = "context"
            return result
        _, _, finished = evaluate(llm, tokens, cancelled)
        evaluated_at = time.perf_counter()
        result.prompt_ms = (evaluated_at - started) * 1000
        if not finished:
            result.stop_reason = "cancelled"
            return result
        sampler = self._sampler(request)
        try:
            self._decode(llm, request, sampler, result, cancelled, evaluated_at)
        finally:
            if sampler is not None:
                self.vocab.lib.llama_sampler_free(sampler)
        result.generate_ms = (time.perf_counter() - evaluated_at) * 1000
        return result

    def _halt(
        self, llm: Llama, cancelled: Callable[[], bool], deadline: float
    ) -> StopReason | None:
        """Why generation must stop before the next token, or None to go on."""
        if cancelled():
            return "cancelled"
        if time.perf_counter() > deadline:
            return "time"
        if llm.n_tokens >= self.n_ctx - 1:
            return "context"
        return None

    def _decode(
        self,
        llm: Llama,
        request: GenerationRequest,
        sampler: Any,
        result: Generation,
        cancelled: Callable[[], bool],
        started: float,
    ) -> None:
        """The token loop: sample, accept into the grammar, stop at a stop text."""
        vocab = self.vocab
        deadline = started + request.time_limit_s
        decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
        rng = np.random.default_rng(0)
        out = ""
        result.stop_reason = "max_tokens"
        while result.generated_tokens < request.max_tokens:
            halt = self._halt(llm, cancelled, deadline)
            if halt is not None:
                result.stop_reason = halt
                break
            logits = last_logits(llm, vocab.n_vocab)
            token, logprob = self._sample(logits, sampler, request.temperature, rng)
            if token < 0 or vocab.is_eog(token):
                result.stop_reason = "eos"
                break
            if sampler is not None:
                vocab.lib.llama_sampler_accept(sampler, token)
            out += decoder.decode(vocab.piece(token))
            result.generated_tokens += 1
            result.token_logprobs.append(logprob)
            self.on_token(result.generated_tokens)
            stop_at = min((i for s in request.stop if (i := out.find(s)) >= 0), default=-1)
            if stop_at >= 0:
                out, result.stop_reason = out[:stop_at], "stop"
                break
            llm.eval([token])
        result.text = out + decoder.decode(b"", final=True)

    # -- sampling --------------------------------------------------------------------------

    def _sample(
        self, logits: np.ndarray, sampler: Any, temperature: float, rng: np.random.Generator
    ) -> tuple[int, float]:
        """The next token (greedy, or sampled at `temperature`) among those the grammar allows,
        with its log-probability under the unconstrained distribution; -1 when none is allowed."""
        n_vocab = self.vocab.n_vocab
        if sampler is None and temperature <= 0:
            token = int(np.argmax(logits))
            return token, log_softmax_at(logits, token)
        if sampler is None:
            allowed_ids, allowed_logits = np.arange(n_vocab), logits
        else:
            allowed_ids, allowed_logits = self._grammar_filter(logits, sampler, GRAMMAR_TOP_K)
            if not len(allowed_ids):
                allowed_ids, allowed_logits = self._grammar_filter(logits, sampler, n_vocab)
            if not len(allowed_ids):
                return -1, 0.0
        if temperature <= 0:
            choice = int(np.argmax(allowed_logits))
        else:
            scaled = (allowed_logits - allowed_logits.max()) / temperature
            weights = np.exp(scaled)
            choice = int(rng.choice(len(weights), p=weights / weights.sum()))
        token = int(allowed_ids[choice])
        return token, log_softmax_at(logits, token)

    def _grammar_filter(
        self, logits: np.ndarray, sampler: Any, k: int
    ) -> tuple[np.ndarray, np.ndarray]:
        """The `k` most likely tokens (plus end-of-generation) that the grammar allows next."""
        lib, n_vocab = self.vocab.lib, self.vocab.n_vocab
        if k >= n_vocab:
            ids = np.arange(n_vocab, dtype=np.int32)
        else:
            ids = np.argpartition(-logits, k)[:k].astype(np.int32)
            eos = self.vocab.llm.token_eos()
            if eos >= 0 and eos not in ids:
                ids = np.append(ids, np.int32(eos))
        data = (lib.llama_token_data * len(ids))()
        view = np.ctypeslib.as_array(data)
        view["id"] = ids
        view["logit"] = logits[ids]
        view["p"] = 0.0
        candidates = lib.llama_token_data_array(data=data, size=len(ids), selected=-1, sorted=False)
        lib.llama_sampler_apply(sampler, ctypes.byref(candidates))
        kept = view[: candidates.size]
        kept = kept[np.isfinite(kept["logit"])]
        return kept["id"].astype(np.int64), kept["logit"].astype(np.float64)
