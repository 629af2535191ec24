"""In-process llama.cpp (llama-cpp-python) engine with prompt-cache reuse and cancellation.

Generation is a small greedy loop over `Llama.eval` rather than `Llama.generate`: we need the
per-token log-probs (generate only offers them with `logits_all=True`, which keeps a
n_ctx × 262,144 float array for Gemma), a healing constraint on the first tokens, a cancellation
check between prompt chunks as well as between tokens, and the count of prompt tokens that were
really evaluated. The KV cache is reused exactly as llama-cpp-python does it: keep the longest
common token prefix with what is already in the context and evaluate only the rest.

Only the worker thread may call into an engine.
"""

from __future__ import annotations

import codecs
import contextlib
import ctypes
import io
import logging
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
from hintwise.models.gguf import GGUFError, read_header
from hintwise.models.prompt import PieceIndex, fit_prefix, fit_suffix, heal

# Prompt tokens are evaluated in chunks of this many so that a cancelled request stops within one
# chunk (~0.15 s on 2 cores) instead of finishing a cold 1,000-token prompt.
PROMPT_CHUNK = 64

# Scoring computes the output layer for every token (262,144 logits each with Gemma), so its
# chunks are smaller: a completion waiting behind a review gets the CPU within ~0.1 s.
SCORE_CHUNK = 16

# Comment markers the completion pipeline may ask to avoid (Python, then C-like languages).
COMMENT_MARKERS = (("#",), ("//", "/*"))


class ModelLoadError(RuntimeError):
    """The model file could not be loaded; the message is meant for the user."""


_llama_log = logging.getLogger("llama.cpp")
_log_callback = None


def _route_llama_logs() -> None:
    """Send llama.cpp's own messages to Python logging (debug) instead of the terminal.

    Its default callback prints some notices whatever the verbosity, which would interleave
    with `hintwise complete` output; the server log still has them at --log-level debug.
    """
    global _log_callback
    if _log_callback is not None:
        return
    import llama_cpp

    @llama_cpp.llama_log_callback
    def callback(level: int, text: bytes, user_data: ctypes.c_void_p) -> None:
        _llama_log.debug("%s", text.decode("utf-8", errors="replace").rstrip())

    _log_callback = callback  # keep a reference: llama.cpp holds only the C pointer
    llama_cpp.llama_log_set(callback, ctypes.c_void_p(0))


def avoid_amx_crash() -> bool:
    """Keep llama.cpp off its AMX weight buffers on CPUs that have AMX; True when it did.

    llama.cpp built on a CPU with AMX (Sapphire Rapids and later; common on cloud machines)
    repacks Q4_K weights for AMX and then crashes with a segmentation fault in
    `ggml_backend_amx_mul_mat` at the first evaluation (llama.cpp issue #20824, closed without
    a fix; seen here with both bundled models). Loading without "extra buffer types" avoids it.
    llama-cpp-python has no argument for that, so its default model parameters are wrapped,
    once per process; machines without AMX are left as they are (their repacking helps).
    """
    import llama_cpp

    if b"AMX_INT8 = 1" not in llama_cpp.llama_print_system_info():
        return False
    library = llama_cpp.llama_cpp
    defaults = library.llama_model_default_params
    if getattr(defaults, "hintwise_no_extra_buffers", False):
        return True

    def without_extra_buffers():
        params = defaults()
        params.use_extra_bufts = False
        return params

    without_extra_buffers.hintwise_no_extra_buffers = True  # type: ignore[attr-defined]
    library.llama_model_default_params = without_extra_buffers
    return True


def cached_prefix(llm, tokens: list[int]) -> int:
    """How many leading `tokens` the llama.cpp context already holds (its KV cache)."""
    cached = llm.input_ids[: llm.n_tokens]
    limit = min(len(cached), len(tokens))
    if not limit:
        return 0
    same = np.asarray(cached[:limit]) == np.asarray(tokens[:limit])
    return limit if same.all() else int(np.argmin(same))


def default_threads() -> int:
    """All cores but one (at most 8).

    llama.cpp's threads spin while they wait for each other, so one busy process competing for
    "all cores" slows it down severalfold. Measured here on 2 cores (Gemma 3 270M, bench
    figures in the README): 2 threads give 540 prompt / 57 decode tokens/s idle but 146 / 20
    next to one busy process; 1 thread gives 313 / 41 in both cases. The editor, the language
    server loop and the user's build are always there, so leave them a core.
    """
    return max(1, min(8, (os.cpu_count() or 2) - 1))


def check_loadable(path: str | os.PathLike[str]) -> None:
    """Raise ModelLoadError unless the installed llama.cpp can load this file's architecture.

    Loads the vocabulary only (`vocab_only`): llama.cpp reads the architecture and its
    hyper-parameters first and refuses one it does not know, without touching the weights."""
    path = Path(path)
    try:
        header = read_header(path)
    except GGUFError as error:
        raise ModelLoadError(str(error)) from None
    from llama_cpp import Llama

    _route_llama_logs()
    said: list[str] = []  # llama.cpp's own words say why (e.g. "unknown model architecture")
    listener = logging.Handler(logging.DEBUG)
    listener.emit = lambda record: said.append(record.getMessage())  # type: ignore[method-assign]
    level = _llama_log.level
    _llama_log.addHandler(listener)
    _llama_log.setLevel(logging.DEBUG)
    try:
        with contextlib.redirect_stderr(io.StringIO()):
            Llama(model_path=str(path), vocab_only=True, verbose=True).close()
    except (ValueError, RuntimeError, OSError) as error:
        import llama_cpp

        reason = next((line for line in said if "error loading model" in line), str(error))
        raise ModelLoadError(
            f"the installed llama.cpp (llama-cpp-python {llama_cpp.__version__}) cannot load "
            f"{path.name} (architecture {header.architecture!r}): {reason.strip()}. A newer "
            "llama-cpp-python may support it"
        ) from None
    finally:
        _llama_log.removeHandler(listener)
        _llama_log.setLevel(level)


class LlamaEngine:
    """One GGUF model and one llama.cpp context, owned by the worker thread."""

    def __init__(
        self,
        path: str | os.PathLike[str],
        name: str | None = None,
        n_ctx: int = 4096,
        threads: int = 0,
        gpu_layers: int = 0,
    ):
        path = Path(path)
        started = time.perf_counter()
        try:
            header = read_header(path, fim_formats.marker_texts())
        except GGUFError as error:
            raise ModelLoadError(str(error)) from None
        self.fim = fim_formats.detect_in_header(header.found_tokens)

        from llama_cpp import Llama  # imported here: loading the shared library takes ~0.2 s

        _route_llama_logs()
        self.amx_workaround = avoid_amx_crash()

        threads = threads or default_threads()
        # verbose=True on purpose: with verbose=False llama-cpp-python silences the load by
        # pointing file descriptors 1 and 2 at /dev/null (os.dup2), process-wide. In a language
        # server fd 1 is the LSP channel, so every reply sent while the model loads would
        # vanish and the client would wait forever. Its Python-level prints are caught here
        # instead and llama.cpp's own log goes through `_route_llama_logs`.
        chatter = io.StringIO()
        try:
            with contextlib.redirect_stderr(chatter):
                self.llm = Llama(
                    model_path=str(path),
                    n_ctx=n_ctx,
                    n_batch=512,
                    n_threads=threads,
                    n_threads_batch=threads,
                    n_gpu_layers=gpu_layers,
                    verbose=True,
                )
        except (ValueError, RuntimeError, OSError) as error:
            raise ModelLoadError(
                f"llama.cpp could not load {path} ({header.architecture}): {error}. "
                "Is the architecture supported by the installed llama-cpp-python?"
            ) from None
        _llama_log.debug("%s", chatter.getvalue())
        import llama_cpp

        self._lib = llama_cpp
        self._vocab = self.llm._model.vocab
        self.n_vocab = self.llm.n_vocab()
        self.n_ctx = self.llm.n_ctx()
        self.add_bos = bool(self.llm._model.add_bos_token())
        self.bos = self.llm.token_bos()
        self._piece_buffer = ctypes.create_string_buffer(256)
        self._pieces: dict[int, bytes] = {}
        self._piece_index: PieceIndex | None = None
        self._prepared_upto = 0
        self._path, self._threads, self._gpu_layers = path, threads, gpu_layers
        self._generator = None  # second context for generate(), made on first use
        self._grammars: dict[str, object] = {}
        self._avoid_cache: dict[tuple[str, ...], frozenset[int]] = {}
        self._indenting_ids: dict[str, np.ndarray] = {}
        # Tokens generated so far by the running request; read by the worker when it cancels.
        self.live_generated = 0
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
        )

    # -- vocabulary ------------------------------------------------------------------------

    def tokenize(self, text: str) -> list[int]:
        """Tokens of plain text: no BOS, and marker texts inside code stay plain text."""
        return self.llm.tokenize(
            text.encode("utf-8", errors="surrogatepass"), add_bos=False, special=False
        )

    def piece(self, token: int) -> bytes:
        cached = self._pieces.get(token)
        if cached is None:
            n = self._lib.llama_token_to_piece(
                self._vocab, token, self._piece_buffer, 256, 0, False
            )
            cached = self._piece_buffer.raw[: max(n, 0)]
            self._pieces[token] = cached
        return cached

    def piece_index(self) -> PieceIndex:
        """Sorted vocabulary pieces for token healing (~0.7 s for Gemma's 262,144 tokens)."""
        if self._piece_index is None:
            self.prepare()
        assert self._piece_index is not None
        return self._piece_index

    @property
    def prepared(self) -> bool:
        return self._piece_index is not None

    def prepare(self, cancelled: Callable[[], bool] = lambda: False) -> bool:
        """Build the healing index in slices, giving way to requests between slices.

        Runs as background work right after loading; a completion that arrives first is served
        at once (without healing) instead of waiting for the index. Returns True when done.
        """
        while self._prepared_upto < self.n_vocab:
            if cancelled():
                return False
            end = min(self.n_vocab, self._prepared_upto + 16384)
            for token in range(self._prepared_upto, end):
                self.piece(token)
            self._prepared_upto = end
        if self._piece_index is None:
            self._piece_index = PieceIndex([self.piece(i) for i in range(self.n_vocab)])
            # The token sets the completion constraints use, so no request pays for the scan.
            self._indenting(" ")
            self._indenting("\t")
            for markers in COMMENT_MARKERS:
                self._starting_with(markers)
        return True

    def _ends_generation(self, token: int) -> bool:
        if self._lib.llama_vocab_is_eog(self._vocab, token):
            return True
        if self.fim and token in self.fim.stop_ids:
            return True
        return bool(self._lib.llama_vocab_is_control(self._vocab, token))

    # -- prompt ----------------------------------------------------------------------------

    def build_prompt(self, request: CompletionRequest) -> tuple[list[int], bytes, int, int]:
        """Prompt tokens, the healed bytes to re-create, the prefix cut and the prompt length."""
        room = self.n_ctx - request.max_tokens - 8
        prefix_budget = max(16, min(request.prefix_budget, room - request.suffix_budget))
        window = fit_prefix(self.tokenize, request.prefix, prefix_budget)
        prefix_tokens = window.tokens
        healed = b""
        # Healing needs the piece index; until background preparation has built it (the first
        # second after loading) requests go without rather than wait for it.
        if request.token_healing and not request.warm_only and self.prepared:
            healing = heal(prefix_tokens, self.piece)
            prefix_tokens, healed = healing.tokens, healing.text
        bos = [self.bos] if self.add_bos and self.bos >= 0 else []
        if self.fim is not None:
            suffix_tokens = fit_suffix(self.tokenize, request.suffix, request.suffix_budget)
            tokens = fim_formats.build_tokens(self.fim, prefix_tokens, suffix_tokens, bos)
        else:
            tokens = [*bos, *prefix_tokens]
        return tokens, healed, window.cut_chars, len(tokens)

    def _evaluate(self, tokens: list[int], cancelled: Callable[[], bool]) -> tuple[int, int, bool]:
        """Bring the context to `tokens`, reusing the cached prefix. Returns (reused, evaluated,
        finished); unfinished means cancelled, with the evaluated part kept for the next request.
        """
        llm = self.llm
        common = cached_prefix(llm, tokens)
        # The last prompt token is always run again: its logits are what we sample from.
        common = min(common, len(tokens) - 1)
        llm.n_tokens = common
        evaluated = 0
        for start in range(common, len(tokens), PROMPT_CHUNK):
            if cancelled():
                return common, evaluated, False
            chunk = tokens[start : start + PROMPT_CHUNK]
            llm.eval(chunk)
            evaluated += len(chunk)
        return common, evaluated, True

    # -- generation ------------------------------------------------------------------------

    def complete(self, request: CompletionRequest, cancelled: Callable[[], bool]) -> Completion:
        started = time.perf_counter()
        self.live_generated = 0
        tokens, healed, cut, prompt_len = self.build_prompt(request)
        result = Completion(
            text="",
            fim=self.fim is not None,
            prompt_tokens=prompt_len,
            prompt=tokens,
            prompt_text=self.llm.detokenize(tokens, special=True).decode("utf-8", errors="replace"),
            prefix_cut=cut,
            healed=healed.decode("utf-8", errors="replace"),
        )
        tokenized = time.perf_counter()
        result.tokenize_ms = (tokenized - started) * 1000
        if not tokens:  # nothing before the cursor and a model without BOS: nothing to go on
            return result
        reused, evaluated, finished = self._evaluate(tokens, cancelled)
        evaluated_at = time.perf_counter()
        result.reused_tokens, result.evaluated_tokens = reused, evaluated
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
        llm = self.llm
        deadline = started + request.time_limit_s
        decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
        remaining = healed  # bytes the next tokens must still re-create
        text = ""
        index = self.piece_index() if healed else None
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
            logits = np.ctypeslib.as_array(llm._ctx.get_logits_ith(-1), shape=(self.n_vocab,))
            top = float(logits.max())
            log_norm = top + float(np.log(np.exp(logits - top).sum(dtype=np.float64)))
            banned = (
                request.banned_first | self._starting_with(request.avoid_first)
                if not text.strip()
                else frozenset()
            )
            token = self._choose(
                logits, remaining, index, banned, request.indent_first if not text else ""
            )
            if self._ends_generation(token):
                result.stop_reason = "eos"
                break
            piece = self.piece(token)
            result.token_logprobs.append(float(logits[token]) - log_norm)
            result.generated_tokens += 1
            self.live_generated = result.generated_tokens
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

    def _starting_with(self, texts: tuple[str, ...]) -> frozenset[int]:
        """Tokens whose text, leading whitespace aside, starts with one of `texts` (cached)."""
        if not texts:
            return frozenset()
        if texts not in self._avoid_cache:
            heads = tuple(text.encode() for text in texts)
            self._avoid_cache[texts] = frozenset(
                token
                for token in range(self.n_vocab)
                if self.piece(token).lstrip().startswith(heads)
            )
        return self._avoid_cache[texts]

    def _indenting(self, char: str) -> np.ndarray:
        """Ids of the tokens made only of `char` (a space or a tab), cached.

        Not every token that starts with a space: BPE vocabularies (SmolLM2, Qwen) have
        " return", " if", ... and a model asked to start indented would pick one of those and
        indent by a single space. A run of the file's indentation character first (BPE writes
        "    return" as "   " + " return"), then anything.
        """
        if char not in self._indenting_ids:
            unit = char.encode()
            self._indenting_ids[char] = np.asarray(
                [
                    t
                    for t in range(self.n_vocab)
                    if (piece := self.piece(t)) and not piece.replace(unit, b"")
                ]
            )
        return self._indenting_ids[char]

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
        if remaining and index is not None:
            candidates = []
            for token in index.allowed(remaining, self.piece):
                rest = self.piece(token)[len(remaining) :]
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
                ids = self._indenting(indent)
                masked[ids] = logits[ids]
            if banned:
                masked[list(banned)] = -np.inf
        return int(np.argmax(masked))

    # -- free generation (explanations, reviews) -------------------------------------------

    def _generation_llm(self):
        """A second llama.cpp context on the same GGUF, for explanations and reviews.

        Its own KV cache means a review prompt never evicts the completion prompt: the next
        keystroke stays warm. llama.cpp maps the GGUF read-only, so the weights' pages are shared
        with the first context; the extra memory is this context's KV cache.
        """
        if self._generator is None:
            from llama_cpp import Llama

            chatter = io.StringIO()
            with contextlib.redirect_stderr(chatter):
                self._generator = Llama(
                    model_path=str(self._path),
                    n_ctx=self.n_ctx,
                    n_batch=512,
                    n_threads=self.info.threads,
                    n_threads_batch=self.info.threads,
                    n_gpu_layers=self._gpu_layers,
                    verbose=True,
                )
            _llama_log.debug("%s", chatter.getvalue())
        return self._generator

    def chat_prompt(self, messages: list[dict[str, str]]) -> str:
        """The messages rendered with the model's own chat template (from the GGUF)."""
        from llama_cpp.llama_chat_format import Jinja2ChatFormatter

        llm = self.llm
        template = llm.metadata.get("tokenizer.chat_template")
        if not template:
            return self._known_chat_format(messages)
        piece = lambda t: llm.detokenize([t], special=True).decode("utf-8", "replace")  # noqa: E731
        bos = piece(llm.token_bos()) if llm.token_bos() >= 0 else ""
        eos = piece(llm.token_eos()) if llm.token_eos() >= 0 else ""
        formatter = Jinja2ChatFormatter(template=template, eos_token=eos, bos_token=bos)
        return formatter(messages=messages).prompt

    # Chat formats for GGUFs that carry no template, recognised by their turn markers.
    _CHAT_FORMATS = (
        (
            "<start_of_turn>",
            "<start_of_turn>{role}\n{content}<end_of_turn>\n",
            "<start_of_turn>model\n",
        ),
        ("<|im_start|>", "<|im_start|>{role}\n{content}<|im_end|>\n", "<|im_start|>assistant\n"),
    )

    def _known_chat_format(self, messages: list[dict[str, str]]) -> str:
        """Gemma's or ChatML's turns when the vocabulary has their markers as single tokens
        (the bundled Gemma GGUF has the markers but no template); else plain paragraphs."""
        for marker, turn, opening in self._CHAT_FORMATS:
            if len(self.llm.tokenize(marker.encode(), add_bos=False, special=True)) == 1:
                roles = {"assistant": "model"} if marker == "<start_of_turn>" else {}
                body = "".join(
                    turn.format(role=roles.get(m["role"], m["role"]), content=m["content"])
                    for m in messages
                )
                return body + opening
        return "\n\n".join(m["content"] for m in messages) + "\n\n"

    def _grammar(self, request: GenerationRequest):
        """The llama.cpp grammar for a request's JSON schema or GBNF text (cached)."""
        import json

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

    def generate(self, request: GenerationRequest, cancelled: Callable[[], bool]) -> Generation:
        """Free generation on the second context, greedy unless a temperature is given.

        The prompt is evaluated in chunks with a cancellation check between them (a completion
        waiting behind a review gets the CPU within one chunk) and what was evaluated stays in
        this context's cache, so a review resumed after giving way does not start over.
        """
        started = time.perf_counter()
        llm = self._generation_llm()
        text = self.chat_prompt(request.messages) if request.messages else request.prompt
        tokens = llm.tokenize(text.encode("utf-8", errors="replace"), add_bos=False, special=True)
        if self.add_bos and self.bos >= 0 and (not tokens or tokens[0] != self.bos):
            tokens = [self.bos, *tokens]
        room = self.n_ctx - request.max_tokens - 1
        result = Generation(text="", prompt_tokens=len(tokens))
        if len(tokens) > room:
            result.stop_reason = "context"
            return result
        llm.n_tokens = min(cached_prefix(llm, tokens), len(tokens) - 1)
        for start in range(llm.n_tokens, len(tokens), PROMPT_CHUNK):
            if cancelled():
                result.stop_reason = "cancelled"
                result.prompt_ms = (time.perf_counter() - started) * 1000
                return result
            llm.eval(tokens[start : start + PROMPT_CHUNK])
        evaluated_at = time.perf_counter()
        result.prompt_ms = (evaluated_at - started) * 1000
        grammar = self._grammar(request) if request.json_schema or request.grammar else None
        sampler = (
            self._lib.llama_sampler_init_grammar(
                self._vocab, grammar._grammar.encode(), grammar._root.encode()
            )
            if grammar is not None
            else None
        )
        deadline = evaluated_at + request.time_limit_s
        decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
        rng = np.random.default_rng(0)
        out = ""
        result.stop_reason = "max_tokens"
        try:
            while result.generated_tokens < request.max_tokens:
                if cancelled():
                    result.stop_reason = "cancelled"
                    break
                if time.perf_counter() > deadline:
                    result.stop_reason = "time"
                    break
                if llm.n_tokens >= self.n_ctx - 1:
                    result.stop_reason = "context"
                    break
                logits = np.ctypeslib.as_array(llm._ctx.get_logits_ith(-1), shape=(self.n_vocab,))
                token, logprob = self._sample(logits, sampler, request.temperature, rng)
                if token < 0 or self._lib.llama_vocab_is_eog(self._vocab, token):
                    result.stop_reason = "eos"
                    break
                if sampler is not None:
                    self._lib.llama_sampler_accept(sampler, token)
                out += decoder.decode(self.piece(token))
                result.generated_tokens += 1
                result.token_logprobs.append(logprob)
                self.live_generated = result.generated_tokens
                stop_at = min((i for s in request.stop if (i := out.find(s)) >= 0), default=-1)
                if stop_at >= 0:
                    out, result.stop_reason = out[:stop_at], "stop"
                    break
                llm.eval([token])
        finally:
            if sampler is not None:
                self._lib.llama_sampler_free(sampler)
        result.text = out + decoder.decode(b"", final=True)
        result.generate_ms = (time.perf_counter() - evaluated_at) * 1000
        return result

    # Candidates a grammar sees first. llama.cpp's grammar sampler checks every candidate it is
    # given against the grammar: all 262,144 of Gemma's tokens made JSON output ~4× slower than
    # free text (90 vs 25 ms a token here). The best few almost always include an allowed one;
    # only when none is allowed is the whole vocabulary checked.
    GRAMMAR_TOP_K = 64

    def _sample(
        self, logits: np.ndarray, sampler, temperature: float, rng: np.random.Generator
    ) -> tuple[int, float]:
        """The next token (greedy, or sampled at `temperature`) among those the grammar allows,
        with its log-probability under the unconstrained distribution; -1 when none is allowed."""
        top = float(logits.max())
        log_norm = top + float(np.log(np.exp(logits - top).sum(dtype=np.float64)))
        if sampler is None:
            allowed_ids, allowed_logits = np.arange(self.n_vocab), logits
        else:
            allowed_ids, allowed_logits = self._grammar_filter(logits, sampler, self.GRAMMAR_TOP_K)
            if not len(allowed_ids):
                allowed_ids, allowed_logits = self._grammar_filter(logits, sampler, self.n_vocab)
            if not len(allowed_ids):
                return -1, 0.0
        if temperature <= 0:
            choice = int(np.argmax(allowed_logits))
        else:
            scaled = (allowed_logits - allowed_logits.max()) / temperature
            weights = np.exp(scaled)
            choice = int(rng.choice(len(weights), p=weights / weights.sum()))
        token = int(allowed_ids[choice])
        return token, float(logits[token]) - log_norm

    def _grammar_filter(self, logits: np.ndarray, sampler, k: int) -> tuple[np.ndarray, np.ndarray]:
        """The `k` most likely tokens (plus end-of-generation) that the grammar allows next."""
        lib = self._lib
        if k >= self.n_vocab:
            ids = np.arange(self.n_vocab, dtype=np.int32)
        else:
            ids = np.argpartition(-logits, k)[:k].astype(np.int32)
            eos = self.llm.token_eos()
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

    def score(
        self, prefix: str, text: str, cancelled: Callable[[], bool]
    ) -> list[TokenScore] | None:
        """How likely the model finds each token of `text` after `prefix`, with its own first
        choice there: the basis of review candidates (a seeded `> 2` where code says `> 1` is
        a token the model did not expect). Runs on the generation context, logits for every
        position of a SCORE_CHUNK-token chunk at a time; None when cancelled.
        """
        llm = self._generation_llm()
        bos = [self.bos] if self.add_bos and self.bos >= 0 else []
        head = [*bos, *self.tokenize(prefix)] if prefix else bos
        body = self.tokenize(text)
        tokens = [*head, *body]
        if len(tokens) >= self.n_ctx or not body or not head:
            return None
        llm.n_tokens = 0
        llm._ctx.kv_cache_seq_rm(-1, 0, -1)
        scores: list[TokenScore] = []
        offset = 0
        for start in range(0, len(tokens), SCORE_CHUNK):
            if cancelled():
                llm.n_tokens = 0
                return None
            chunk = tokens[start : start + SCORE_CHUNK]
            llm._batch.set_batch(batch=chunk, n_past=start, logits_all=True)
            llm._ctx.decode(llm._batch)
            llm.input_ids[start : start + len(chunk)] = chunk
            llm.n_tokens = start + len(chunk)
            rows = np.ctypeslib.as_array(llm._ctx.get_logits(), shape=(len(chunk), self.n_vocab))
            for i in range(len(chunk)):
                position = start + i + 1  # row i predicts the token after it
                if position < len(head) or position >= len(tokens):
                    continue
                row = rows[i]
                top = float(row.max())
                log_norm = top + float(np.log(np.exp(row - top).sum(dtype=np.float64)))
                token = tokens[position]
                best = int(np.argmax(row))
                piece = self.piece(token).decode("utf-8", errors="replace")
                scores.append(
                    TokenScore(
                        offset,
                        piece,
                        float(row[token]) - log_norm,
                        self.piece(best).decode("utf-8", errors="replace"),
                        top - log_norm,
                    )
                )
                offset += len(piece)
        return scores

    def measure_speed(self, prompt_tokens: int = 256, decode_tokens: int = 32) -> dict[str, float]:
        """Prompt and decode throughput on a cold context, for `hintwise doctor`."""
        text = "def add(a, b):\n    return a + b\n\n" * (prompt_tokens // 8 + 1)
        tokens = self.tokenize(text)[:prompt_tokens]
        self.llm.n_tokens = 0
        started = time.perf_counter()
        for start in range(0, len(tokens), 512):
            self.llm.eval(tokens[start : start + 512])
        prompt_s = time.perf_counter() - started
        started = time.perf_counter()
        for _ in range(decode_tokens):
            logits = np.ctypeslib.as_array(self.llm._ctx.get_logits_ith(-1), shape=(self.n_vocab,))
            self.llm.eval([int(np.argmax(logits))])
        decode_s = time.perf_counter() - started
        self.llm.n_tokens = 0
        return {
            "prompt_tokens_per_s": len(tokens) / prompt_s,
            "decode_tokens_per_s": decode_tokens / decode_s,
        }

    def close(self) -> None:
        if self._generator is not None:
            self._generator.close()
        self.llm.close()
