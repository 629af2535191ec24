"""How likely the model finds each token of a given text, and what it would have written there.

The basis of review candidates: a seeded `> 2` where code says `> 1` is a token the model did
not expect. Logits are computed for every position, so the text is decoded in small chunks with
a cancellation check between them.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

import numpy as np

from hintwise.models.engine import TokenScore
from hintwise.models.llama.vocabulary import Vocabulary

if TYPE_CHECKING:
    from llama_cpp import Llama

# Scoring computes the output layer for every token (262,144 logits each with Gemma), so its
# chunks are smaller than a prompt's: a completion waiting behind a review gets the CPU within
# ~0.1 s.
SCORE_CHUNK = 16


def score(
    llm: Llama, vocab: Vocabulary, prefix: str, text: str, cancelled: Callable[[], bool]
) -> list[TokenScore] | None:
    """Each token of `text` after `prefix` with its log-prob and the model's first choice there,
    computed on `llm` (the generation context: its cache is cleared first). None when cancelled,
    when there is no text or no head to condition on, or when it does not fit the context."""
    head = [*vocab.bos_tokens(), *vocab.tokenize(prefix)] if prefix else vocab.bos_tokens()
    body = vocab.tokenize(text)
    tokens = [*head, *body]
    if len(tokens) >= llm.n_ctx() or not body or not head:
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
        rows = np.ctypeslib.as_array(llm._ctx.get_logits(), shape=(len(chunk), vocab.n_vocab))
        for i in range(len(chunk)):
            position = start + i + 1  # row i predicts the token after it
            if position < len(head) or position >= len(tokens):
                continue
            found = _token_score(vocab, rows[i], tokens[position], offset)
            scores.append(found)
            offset += len(found.text)
    return scores


def _token_score(vocab: Vocabulary, row: np.ndarray, token: int, offset: int) -> TokenScore:
    """`token` scored against one row of logits, with the row's own best token."""
    top = float(row.max())
    log_norm = top + float(np.log(np.exp(row - top).sum(dtype=np.float64)))
    best = int(np.argmax(row))
    return TokenScore(
        offset,
        vocab.text(token),
        float(row[token]) - log_norm,
        vocab.text(best),
        top - log_norm,
    )
