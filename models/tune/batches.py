"""Examples as token sequences, batches and the loss on the target tokens only.

A sequence is the prompt's tail and the target's tokens, at most `max_tokens` long. Batches
are padded on the left so that every target ends at the last position: the model then
computes logits only for the last K positions (`logits_to_keep`), K the longest target in
the batch. With Gemma's 262,144-token vocabulary the full logits would cost more than the
whole transformer.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from hintwise.models.tune.examples import Example


@dataclass(frozen=True)
class Encoded:
    """One example ready for the model: `tokens` ends with the `n_target` target tokens."""

    tokens: tuple[int, ...]
    n_target: int
    weight: float


def encode(
    example: Example, tokenize: Callable[[str], list[int]], max_tokens: int, bos: int | None
) -> Encoded | None:
    """The example's sequence, or None when its target has no tokens.

    The target keeps at most `example.target_tokens`, by default a third of `max_tokens` (a
    suggestion is a line or a few), and always leaves room for a prompt token; the prompt keeps
    its tail in the rest. A prompt cut on the left keeps its BOS token in front, as the
    server's prompts always start with it."""
    most = min(example.target_tokens or max_tokens // 3, max_tokens - 1)
    target = tokenize(example.target)[: max(1, most)]
    if not target:
        return None
    budget = max_tokens - len(target)
    prompt = list(example.prompt)
    if len(prompt) > budget:
        head = [prompt[0]] if bos is not None and prompt and prompt[0] == bos else []
        prompt = head + prompt[len(prompt) - budget + len(head) :]
    return Encoded(tuple(prompt + target), len(target), float(example.weight))


def collate(batch: Sequence[Encoded], pad: int, torch: Any) -> dict[str, Any]:
    """Left-padded ids, attention mask, positions, and the target labels of the last K
    positions (-100 where a shorter target leaves room)."""
    width = max(len(item.tokens) for item in batch)
    keep = max(item.n_target for item in batch)
    ids = torch.full((len(batch), width), pad, dtype=torch.long)
    mask = torch.zeros((len(batch), width), dtype=torch.long)
    labels = torch.full((len(batch), keep), -100, dtype=torch.long)
    for row, item in enumerate(batch):
        ids[row, width - len(item.tokens) :] = torch.tensor(item.tokens)
        mask[row, width - len(item.tokens) :] = 1
        labels[row, keep - item.n_target :] = torch.tensor(item.tokens[-item.n_target :])
    positions = (mask.cumsum(dim=1) - 1).clamp(min=0)
    weights = torch.tensor([item.weight for item in batch], dtype=torch.float32)
    return {"ids": ids, "mask": mask, "positions": positions, "labels": labels, "weights": weights}


def loss(model: Any, batch: dict[str, Any], torch: Any) -> Any:
    """Weighted mean cross-entropy over the target tokens."""
    keep = batch["labels"].shape[1]
    logits = model(
        input_ids=batch["ids"],
        attention_mask=batch["mask"],
        position_ids=batch["positions"],
        logits_to_keep=keep + 1,
        use_cache=False,
    ).logits[:, :keep, :]
    per_token = torch.nn.functional.cross_entropy(
        logits.float().reshape(-1, logits.shape[-1]),
        batch["labels"].reshape(-1),
        ignore_index=-100,
        reduction="none",
    ).reshape(batch["labels"].shape)
    counted = (batch["labels"] != -100).float() * batch["weights"][:, None]
    return (per_token * counted).sum() / counted.sum().clamp(min=1e-6)
