"""Log-probabilities and masks over a row of logits, without vocabulary-sized temporaries.

`np.exp(logits - top)` allocates two arrays the size of the vocabulary for every generated token
(1 MB each with Gemma's 262,144 tokens), and a masked copy a third. Blocks that size come and go
all through a typing session; once glibc has raised its mmap threshold above
them they are carved from the heap, where the small allocations made between them fragment it
and the process's resident memory creeps up. Each thread instead gets its buffers once.
"""

from __future__ import annotations

import threading

import numpy as np

_local = threading.local()


def _buffer(name: str, like: np.ndarray) -> np.ndarray:
    """This thread's reusable buffer `name`, shaped and typed like `like`."""
    buffer = getattr(_local, name, None)
    if buffer is None or buffer.shape != like.shape or buffer.dtype != like.dtype:
        buffer = np.empty_like(like)
        setattr(_local, name, buffer)
    return buffer


def log_softmax(logits: np.ndarray, tokens: list[int]) -> list[float]:
    """log p(token) under the softmax of `logits`, for each of `tokens`."""
    top = float(logits.max())
    work = _buffer("work", logits)
    np.subtract(logits, top, out=work)
    np.exp(work, out=work)
    log_norm = top + float(np.log(work.sum(dtype=np.float64)))
    return [float(logits[token]) - log_norm for token in tokens]


def log_softmax_at(logits: np.ndarray, token: int) -> float:
    """log p(token) under the softmax of `logits`."""
    return log_softmax(logits, [token])[0]


def masked(logits: np.ndarray, fill: float | None = None) -> np.ndarray:
    """A scratch copy of `logits` to mask (or filled with `fill`). It is this thread's one mask
    buffer: valid until the next call."""
    mask = _buffer("mask", logits)
    if fill is None:
        np.copyto(mask, logits)
    else:
        mask.fill(fill)
    return mask


def largest(values: np.ndarray, k: int) -> list[int]:
    """The indices of the `k` largest `values`, best first, skipping -inf ones unless nothing
    else is left. `values` is a scratch buffer (see `masked`): the chosen ones are overwritten.
    k passes of argmax: a full sort's index arrays would be 2 MB each for Gemma."""
    best: list[int] = []
    for _ in range(min(k, len(values))):
        index = int(np.argmax(values))
        if best and not np.isfinite(values[index]):
            break
        best.append(index)
        values[index] = -np.inf
    return best
