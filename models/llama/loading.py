"""Getting llama.cpp going safely: its log, its AMX crash, threads, loadability checks, opening a
context, and bringing a context's KV cache to a prompt (reusing what it already holds).

llama_cpp is imported inside the functions: loading its shared library takes ~0.2 s, which
`hintwise --help` and the server's start should not pay before a model is wanted.
"""

from __future__ import annotations

import contextlib
import ctypes
import io
import logging
import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from hintwise.models.errors import GGUFError, ModelLoadError
from hintwise.models.files.gguf import read_header

if TYPE_CHECKING:
    from llama_cpp import Llama

    from hintwise.models.llama.threads import BatchThreads

# Prompt tokens are evaluated in chunks of this many so that a cancelled request stops within one
# chunk (~0.15 s on 2 cores) instead of finishing a cold 1,000-token prompt.
PROMPT_CHUNK = 64

_llama_log = logging.getLogger("llama.cpp")
_log_callback = None


def route_llama_logs() -> None:
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

    route_llama_logs()
    # llama.cpp's own words say why (e.g. "unknown model architecture")
    with llama_said() as said:
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


@contextlib.contextmanager
def llama_said() -> Iterator[list[str]]:
    """Collect what llama.cpp logs inside the block: its exceptions reach Python as a bare
    "failed", the reason is only in its log."""
    said: list[str] = []
    listener = logging.Handler(logging.DEBUG)
    listener.emit = lambda record: said.append(record.getMessage())  # type: ignore[method-assign]
    level = _llama_log.level
    _llama_log.addHandler(listener)
    _llama_log.setLevel(logging.DEBUG)
    try:
        yield said
    finally:
        _llama_log.removeHandler(listener)
        _llama_log.setLevel(level)


def open_context(
    path: Path, n_ctx: int, threads: int, gpu_layers: int, adapter: Path | None = None
) -> Llama:
    """A llama.cpp model and context on the GGUF at `path`, with the GGUF LoRA `adapter`
    applied when given; llama.cpp's errors pass through.

    Routes llama.cpp's log and applies `avoid_amx_crash` first (both once per process).
    verbose=True on purpose: with verbose=False llama-cpp-python silences the load by pointing
    file descriptors 1 and 2 at /dev/null (os.dup2), process-wide. In a language server fd 1 is
    the LSP channel, so every reply sent while the model loads would vanish and the client would
    wait forever. Its Python-level prints are caught here instead and llama.cpp's own log goes
    through `route_llama_logs`.
    """
    from llama_cpp import Llama

    route_llama_logs()
    avoid_amx_crash()
    chatter = io.StringIO()
    with contextlib.redirect_stderr(chatter):
        llm = Llama(
            model_path=str(path),
            n_ctx=n_ctx,
            n_batch=512,
            n_threads=threads,
            n_threads_batch=threads,
            n_gpu_layers=gpu_layers,
            verbose=True,
        )
    if adapter is not None:
        try:
            apply_adapter(llm, adapter)
        except RuntimeError:
            llm.close()
            raise
    _llama_log.debug("%s", chatter.getvalue())
    return llm


def apply_adapter(llm: Llama, adapter: Path) -> None:
    """Apply the GGUF LoRA `adapter` to `llm`'s context; RuntimeError with llama.cpp's reason
    when it refuses the file (not a GGUF, not a LoRA, another architecture, other shapes).

    Not through `Llama(lora_path=...)`: llama-cpp-python 0.3.36 tests the adapter pointer
    llama.cpp returns with `is None`, which a NULL ctypes pointer never is, so a refused adapter
    is set on the context as NULL and the first evaluation dies with a segmentation fault. It
    also turns off mmap for any adapter, which llama.cpp no longer needs. llama.cpp frees the
    adapter with the model.
    """
    import llama_cpp

    route_llama_logs()
    with llama_said() as said:
        handle = llama_cpp.llama_adapter_lora_init(llm.model, os.fsencode(adapter))
    if not handle:
        # "...: failed to apply lora adapter: tensor 'x' has incorrect shape (hint: ...)"
        reason = next((line for line in said if "failed to apply lora" in line), "")
        raise RuntimeError(reason.split("lora adapter: ", 1)[-1].strip() or "refused")
    adapters = (llama_cpp.llama_adapter_lora_p_ctypes * 1)(handle)
    scales = (ctypes.c_float * 1)(1.0)
    if llama_cpp.llama_set_adapters_lora(llm.ctx, adapters, 1, scales):
        raise RuntimeError("llama.cpp could not set the adapter on the context")
    llm.hintwise_adapter = handle  # type: ignore[attr-defined]  # kept alive with the context


def cached_prefix(llm: Llama, tokens: list[int]) -> int:
    """How many leading `tokens` the llama.cpp context already holds (its KV cache)."""
    cached = llm.input_ids[: llm.n_tokens]
    limit = min(len(cached), len(tokens))
    if not limit:
        return 0
    same = np.asarray(cached[:limit]) == np.asarray(tokens[:limit])
    return limit if same.all() else int(np.argmin(same))


def evaluate(
    llm: Llama,
    tokens: list[int],
    cancelled: Callable[[], bool],
    threads: BatchThreads | None = None,
) -> tuple[int, int, bool]:
    """Bring the context to `tokens`, reusing the cached prefix, PROMPT_CHUNK tokens at a time
    with a cancellation check before each chunk. Returns (reused, evaluated, finished);
    unfinished means cancelled, with the evaluated part kept in the cache for the next request.
    With `threads`, each chunk runs with the thread count it chooses (see threads.py);
    without, with the context's own.
    """
    common = cached_prefix(llm, tokens)
    # The last prompt token is always run again: its logits are what the next token comes from.
    common = min(common, len(tokens) - 1)
    llm.n_tokens = common
    evaluated = 0
    if threads is not None:
        threads.start(len(tokens) - common, PROMPT_CHUNK)
    for start in range(common, len(tokens), PROMPT_CHUNK):
        if cancelled():
            return common, evaluated, False
        chunk = tokens[start : start + PROMPT_CHUNK]
        if threads is not None:
            threads.apply(llm, threads.next_chunk())
        llm.eval(chunk)
        evaluated += len(chunk)
    return common, evaluated, True


def last_logits(llm: Llama, n_vocab: int) -> np.ndarray:
    """The logits the context's last evaluated token gives the next one (a view, not a copy)."""
    return np.ctypeslib.as_array(llm._ctx.get_logits_ith(-1), shape=(n_vocab,))
