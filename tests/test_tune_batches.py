"""How examples become training sequences and in which order they are used (no torch)."""

from __future__ import annotations

from hintwise.models.tune.batches import encode
from hintwise.models.tune.examples import Example
from hintwise.models.tune.train import TrainConfig, data_order


def _tokenize(text: str) -> list[int]:
    return [ord(c) for c in text]


def test_the_target_ends_the_sequence_after_the_prompt() -> None:
    encoded = encode(Example((1, 5, 6), "ab", weight=2.0), _tokenize, 384, bos=1)
    assert encoded is not None
    assert encoded.tokens == (1, 5, 6, 97, 98) and encoded.n_target == 2 and encoded.weight == 2.0


def test_a_long_prompt_keeps_its_tail_and_its_bos() -> None:
    encoded = encode(Example((1, *range(100, 200)), "xyz"), _tokenize, 12, bos=1)
    assert encoded is not None
    assert encoded.tokens == (1, *range(192, 200), 120, 121, 122)


def test_a_long_target_keeps_a_third_of_the_budget() -> None:
    encoded = encode(Example((7, 8), "a" * 50), _tokenize, 30, bos=1)
    assert encoded is not None and encoded.n_target == 10 and encoded.tokens[:2] == (7, 8)


def test_an_example_may_keep_more_of_its_target_but_never_the_whole_sequence() -> None:
    wider = encode(Example((7, 8), "a" * 50, target_tokens=20), _tokenize, 30, bos=1)
    assert wider is not None and wider.n_target == 20 and wider.tokens[:2] == (7, 8)
    whole = encode(Example((1, 8), "a" * 50, target_tokens=99), _tokenize, 30, bos=1)
    assert whole is not None and whole.n_target == 29 and whole.tokens[0] == 1


def test_an_empty_target_is_no_example() -> None:
    assert encode(Example((1, 2), ""), _tokenize, 384, bos=1) is None


def test_the_order_is_a_seeded_shuffle_per_epoch() -> None:
    once = data_order(10, TrainConfig(epochs=1.0, seed=3))
    assert sorted(once) == list(range(10)) and once == data_order(10, TrainConfig(seed=3))
    assert once != data_order(10, TrainConfig(seed=4))
    twice = data_order(10, TrainConfig(epochs=2.0))
    assert sorted(twice) == sorted(list(range(10)) * 2)
    assert len(data_order(10, TrainConfig(epochs=0.5))) == 5
