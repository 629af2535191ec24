"""Log-probabilities over a vocabulary-sized row of logits, without a vocabulary-sized
temporary per token (see models/llama/logits.py)."""

from __future__ import annotations

import threading
import tracemalloc

import numpy as np

from hintwise.models.llama.logits import largest, log_softmax, log_softmax_at, masked

N_VOCAB = 262_144  # Gemma 3's vocabulary


def _row(seed: int) -> np.ndarray:
    return np.random.default_rng(seed).normal(0, 4, N_VOCAB).astype(np.float32)


def test_log_softmax_matches_the_textbook_formula() -> None:
    row = _row(0)
    wide = row.astype(np.float64)
    reference = wide - wide.max() - np.log(np.exp(wide - wide.max()).sum())
    got = log_softmax(row, [0, 7, int(np.argmax(row))])
    assert np.allclose(got, reference[[0, 7, int(np.argmax(row))]], atol=1e-4)
    assert log_softmax_at(row, 7) == got[1]


def test_a_token_costs_no_vocabulary_sized_allocation() -> None:
    """The per-token arithmetic allocated 2-3 MB of temporaries for every generated token."""
    rows = [_row(seed) for seed in range(4)]
    log_softmax(rows[0], [1])
    masked(rows[0])
    tracemalloc.start()
    try:
        for i in range(200):
            row = rows[i % 4]
            log_softmax_at(row, i)
            mask = masked(row, -np.inf)
            mask[[1, 2]] = row[[1, 2]]
            masked(row)[[3]] = -np.inf
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    # A row is 1 MB; what remains is numpy's 64 KB buffer for summing float32 as float64.
    assert peak < 256 * 1024, f"peak {peak / 1e6:.2f} MB"


def test_the_mask_is_a_copy_and_each_thread_has_its_own() -> None:
    row = _row(1)
    mask = masked(row)
    mask[:] = 0
    assert row.max() > 0  # the logits were not touched
    assert masked(row, -np.inf).max() == -np.inf
    seen: list[np.ndarray] = []
    thread = threading.Thread(target=lambda: seen.append(masked(row)))
    thread.start()
    thread.join()
    assert seen[0] is not masked(row)
    assert np.array_equal(seen[0], row)


def test_largest_ranks_like_a_sort_and_skips_masked_tokens() -> None:
    row = _row(2)
    order = [int(i) for i in np.argsort(-row, kind="stable")[:5]]
    assert largest(masked(row), 5) == order
    mask = masked(row, -np.inf)
    mask[[10, 20]] = [1.0, 2.0]
    assert largest(mask, 4) == [20, 10]  # the masked ones are not offered
    assert largest(masked(row, -np.inf), 3) == [0]  # nothing allowed: one, as argmax would
