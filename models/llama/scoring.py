"""How likely the model finds each token of a given text, and what it would have written there.

The basis of review candidates: a seeded `> 2` where code says `> 1` is a token the model did
not expect. Logits are computed for every scored position, so the text is decoded in small chunks
with a cancellation check between them.
"""

from __future__ import annotations

import math
import weakref
from collections.abc import Callable
from typing import TYPE_CHECKING

import numpy as np

from hintwise.models.engine import TokenScore
from hintwise.models.llama.logits import log_softmax
from hintwise.models.llama.vocabulary import Vocabulary

if TYPE_CHECKING:
    from llama_cpp import Llama

# Scoring computes the output layer for every scored token (262,144 logits each with Gemma), so
# its chunks are smaller than a prompt's: a completion waiting behind a review gets the CPU within
# ~0.1 s. Chunks without a token to score skip the output layer and are larger.
SCORE_CHUNK = 16
PLAIN_CHUNK = 64

# The last text scored on each context (its tokens and scores): a text that shares a start with it
# (the same function with one operator changed, see the review's verification) is scored from
# where it differs, the rest comes from the context's cache.
_LAST: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()

Spans = list[tuple[int, int]]


def score(
    llm: Llama,
    vocab: Vocabulary,
    prefix: str,
    text: str,
    cancelled: Callable[[], bool],
    spans: Spans | None = None,
) -> list[TokenScore] | None:
    """Each token of `text` after `prefix` with its log-prob and the model's first choice there,
    computed on `llm` (the generation context), from where `text` differs from the last text
    scored there when the context still holds it. With `spans` (character ranges of `text`) only
    the tokens overlapping them are scored, the others have a NaN log-prob: the output layer is
    most of the cost. None when cancelled, when there is no text or no head to condition on, or
    when it does not fit the context."""
    head = [*vocab.bos_tokens(), *vocab.tokenize(prefix)] if prefix else vocab.bos_tokens()
    body = vocab.tokenize(text)
    tokens = [*head, *body]
    if len(tokens) >= llm.n_ctx() or not body or not head:
        return None
    pieces = [vocab.text(token) for token in body]
    offsets = np.cumsum([0, *map(len, pieces)])[:-1].tolist()
    wanted = [
        _overlaps(spans, start, len(piece)) for start, piece in zip(offsets, pieces, strict=True)
    ]
    common = _common_prefix(tokens, llm)
    cached = _LAST.get(llm, ([], []))[1][: max(common - len(head), 0)]
    scores = [
        *cached,
        *(
            _unscored(o, p)
            for o, p in zip(offsets[len(cached) :], pieces[len(cached) :], strict=True)
        ),
    ]
    todo = [i for i, want in enumerate(wanted) if want and math.isnan(scores[i].logprob)]
    if not todo:
        return scores
    # The row before the first token to score is computed again (its logits are not kept).
    keep = max(min(common, len(head) + todo[0] - 1), 0)
    llm.n_tokens = keep
    llm._ctx.kv_cache_seq_rm(-1, keep, -1)
    _LAST.pop(llm, None)
    rows_for = {len(head) + i - 1 for i in todo}  # positions whose logits predict a wanted token
    start = keep
    while start < len(tokens):
        if cancelled():
            llm.n_tokens = 0
            return None
        size = (
            SCORE_CHUNK if rows_for.intersection(range(start, start + SCORE_CHUNK)) else PLAIN_CHUNK
        )
        chunk = tokens[start : start + size]
        llm._batch.set_batch(batch=chunk, n_past=start, logits_all=False)
        for i in range(len(chunk)):
            llm._batch.batch.logits[i] = start + i in rows_for
        llm._ctx.decode(llm._batch)
        llm.input_ids[start : start + len(chunk)] = chunk
        llm.n_tokens = start + len(chunk)
        for i in range(len(chunk)):
            if start + i in rows_for:
                index = start + i + 1 - len(head)
                row = np.ctypeslib.as_array(llm._ctx.get_logits_ith(i), shape=(vocab.n_vocab,))
                scores[index] = _token_score(vocab, row, body[index], offsets[index])
        start += len(chunk)
    _LAST[llm] = (tokens, scores)
    return scores


def _overlaps(spans: Spans | None, start: int, length: int) -> bool:
    if spans is None:
        return True
    return any(low < start + max(length, 1) and start < high for low, high in spans)


def _unscored(offset: int, piece: str) -> TokenScore:
    return TokenScore(offset, piece, math.nan, "", math.nan)


def _common_prefix(tokens: list[int], llm: Llama) -> int:
    """How many leading tokens the context's cache and the last scored text share with `tokens`
    (0 when the context was used for something else since)."""
    last = _LAST.get(llm)
    if last is None:
        return 0
    cached = llm.input_ids[: llm.n_tokens]
    count = 0
    for token, before, live in zip(tokens, last[0], cached, strict=False):
        if token != before or token != live:
            break
        count += 1
    return count


def _token_score(vocab: Vocabulary, row: np.ndarray, token: int, offset: int) -> TokenScore:
    """`token` scored against one row of logits, with the row's own best token."""
    best = int(np.argmax(row))
    logprob, best_logprob = log_softmax(row, [token, best])
    return TokenScore(offset, vocab.text(token), logprob, vocab.text(best), best_logprob)
