"""Candidate search: the code after the cursor counts for models without FIM tokens.

Neither bundled model (Gemma 3 270M, SmolLM2-135M) has FIM tokens, so their prompt is the text
before the cursor only, and a greedy continuation cannot know that the line below already does
what it is about to write (or needs a name it is about to pick). Here the greedy continuation
forks where it writes its first content: the top first content tokens allowed there (after the
same healing, indentation and avoid constraints), each continued greedily from the shared
prompt cache (the context is rewound to the fork point, so the prompt is never evaluated twice
and stays cached for the next keystroke). Each candidate is then scored by the model itself: its
own tokens plus the next non-blank line of the suffix written after it, i.e. the log-likelihood
of the document with the candidate in place, up to that line. The best is the suggestion; the
others are the alternatives the editors cycle through with next/previous.

Time limits and cancellation hold for the whole search: every token of every candidate and every
scoring chunk is preceded by the same checks as the greedy loop.
"""

from __future__ import annotations

import builtins
import keyword
import math
import re
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np

from hintwise.models.engine import Candidate
from hintwise.models.llama.loading import last_logits
from hintwise.models.llama.logits import log_softmax

if TYPE_CHECKING:
    from hintwise.models.engine import CompletionRequest
    from hintwise.models.llama.completion import Branch, Completer, Limits

# Non-blank lines of the suffix scored after each candidate.
SUFFIX_LINES = 1
# Scoring computes the output layer for every token: chunks with a cancellation check between.
SCORE_CHUNK = 16
# A suffix line longer than this (in characters) is cut: it is evidence, not the answer.
SUFFIX_MAX_CHARS = 240
# Names the code below uses that the code above never mentions can be tried as first tokens too
# (`return total / n` below an empty line wants `total = ...`, which the model's own top first
# tokens seldom include): at most this many, from this many non-blank lines of the suffix.
# Off: on 100 HumanEval holes they added one hole to the best-of-all-candidates count and none
# to the ranked pass@1, for about 0.5x more generation (docs/performance.md).
NAME_SEEDS = 0
NAME_LINES = 3
_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_KNOWN = frozenset(keyword.kwlist) | frozenset(dir(builtins)) | {"self", "cls", "this", "true"}


@dataclass
class Ranked:
    """The chosen branch, its score, and the runner-ups best first."""

    branch: Branch
    score: float | None = None
    alternatives: list[Candidate] = field(default_factory=list)
    searched: int = 0  # candidates generated (0: no search ran)


def suffix_tail(suffix: str, lines: int = SUFFIX_LINES) -> str:
    """The text after the cursor's line up to the end of its next `lines` non-blank lines (or
    as many as there are), starting with the line break; "" when there is none.

    The rest of the cursor's own line is left out: a suggestion usually writes it again (the
    post-processing strips the overlap), so after the candidate the next line follows."""
    parts = suffix.replace("\r\n", "\n").split("\n")
    kept: list[str] = []
    found = 0
    for line in parts[1:]:
        kept.append(line[:SUFFIX_MAX_CHARS])
        found += bool(line.strip())
        if found == lines:
            break
    while kept and not kept[-1].strip():
        kept.pop()
    return "\n" + "\n".join(kept) if kept else ""


def undefined_names(prefix: str, suffix: str, limit: int = 2) -> list[str]:
    """Up to `limit` names used in the next non-blank lines of `suffix` that `prefix` never
    mentions (keywords, builtins, attributes and names the suffix binds itself left out), in
    order of appearance: the names the missing code probably defines."""
    below = suffix_tail(suffix, NAME_LINES)
    mentioned = set(_NAME.findall(prefix))
    names: list[str] = []
    for line in below.split("\n"):
        bound = re.match(r"\s*(?:for\s+)?([A-Za-z_]\w*)\s*(?:=[^=]|in\b)", line)
        for match in _NAME.finditer(line):
            name = match.group(0)
            attribute = line[: match.start()].rstrip().endswith(".")
            if bound is not None and bound.group(1) == name:
                mentioned.add(name)  # the suffix binds it before it is used
                continue
            if name in mentioned or name in _KNOWN or attribute or name in names:
                continue
            if line[match.end() :].lstrip().startswith(("(", '"', "'")) or name[0].isdigit():
                continue  # a call of something defined elsewhere, or a string prefix
            names.append(name)
    return names[:limit]


def rank(scored: list[tuple[Branch, float | None]]) -> list[int]:
    """Indices of `scored` best first: by score when every candidate has one, otherwise the
    order they came in (the greedy one first), so a half-finished search changes nothing."""
    if any(score is None for _, score in scored):
        return list(range(len(scored)))
    return sorted(range(len(scored)), key=lambda i: -(scored[i][1] or 0.0))


def search(completer: Completer, branch: Branch, limits: Limits) -> Ranked:
    """Generate and rank up to `request.candidates` continuations of `branch` (see module)."""
    request = limits.request
    seeds = completer.run(branch, limits, fork_at_content=request.candidates)
    if not seeds:  # it stopped before writing any content: nothing to choose between
        return Ranked(branch, searched=1)
    logits = last_logits(completer.llm, completer.vocab.n_vocab)
    logprobs = log_softmax(logits, seeds)
    floor = math.log(request.candidate_min_p) if request.candidate_min_p > 0 else -math.inf
    seeds = [seed for i, seed in enumerate(seeds) if i == 0 or logprobs[i] >= floor]
    seeds += [seed for seed in name_seeds(completer, branch, request) if seed not in seeds]
    logprobs = log_softmax(logits, seeds)
    tail = suffix_tail(request.suffix) if len(seeds) > 1 else ""  # one: nothing to rank
    fork_at = branch.evaluated
    scored: list[tuple[Branch, float | None]] = []
    for i, seed in enumerate(seeds):
        if i and limits.exceeded(0, False) is not None:
            break
        candidate = branch.fork()
        completer.rewind(candidate, fork_at)
        completer.take(candidate, seed, logprobs[i], request)
        # The score only falls as tokens are added: once below the best so far it cannot win.
        leader = max((score for _, score in scored if score is not None), default=-math.inf)
        floor = -math.inf if request.alternatives or not tail else leader
        completer.run(candidate, limits, floor=floor)
        if candidate.stop_reason == "cancelled":
            return Ranked(candidate)
        if i and candidate.stop_reason == "time":
            break  # cut short: not a fair candidate
        if candidate.pruned or sum(candidate.logprobs) < floor:
            continue
        suffix_score = score_tail(completer, candidate, tail, limits) if tail else None
        if limits.cancelled():
            candidate.stop_reason = "cancelled"
            return Ranked(candidate)
        total = None if suffix_score is None else sum(candidate.logprobs) + suffix_score
        scored.append((candidate, total))
    order = rank(scored)
    best, best_score = scored[order[0]]
    alternatives = [_candidate(*scored[i]) for i in order[1:]]
    return Ranked(best, best_score, alternatives, searched=len(seeds))


def name_seeds(completer: Completer, branch: Branch, request: CompletionRequest) -> list[int]:
    """First tokens of the undefined names of the suffix that may start the content here (no
    healed bytes left to re-create, no indentation still owed)."""
    if branch.remaining or (request.indent_first and not branch.text):
        return []
    seeds = []
    for name in undefined_names(request.prefix, request.suffix, NAME_SEEDS):
        tokens = completer.vocab.tokenize(name)
        if tokens and not completer.vocab.ends_generation(tokens[0]):
            seeds.append(tokens[0])
    return seeds


def score_tail(completer: Completer, branch: Branch, tail: str, limits: Limits) -> float | None:
    """log P(the rest of the candidate + `tail` | prompt + the candidate's evaluated tokens),
    with the part of the candidate's own log-probs that this does not cover subtracted, so the
    sum with the candidate's log-probs is the likelihood of candidate + tail. None when
    cancelled, out of time or out of context.

    The candidate's last token is often not in the KV cache (the stop rule cut it, e.g. at its
    newline) or only partly kept, so the tokens kept are the longest run whose bytes start the
    candidate's text, and the rest of that text is scored together with the tail."""
    vocab, llm = completer.vocab, completer.llm
    text = branch.healed + branch.text.encode("utf-8", errors="surrogatepass")
    pieces = [vocab.piece(token) for token in branch.tokens[: branch.evaluated]]
    kept, joined = len(pieces), b"".join(pieces)
    while kept and not text.startswith(joined):
        kept -= 1
        joined = joined[: len(joined) - len(pieces[kept])]
    rest = (text[len(joined) :] + tail.encode()).decode("utf-8", errors="replace")
    tokens = vocab.tokenize(rest)
    position = branch.start + kept - 1  # the token whose logits predict the first one
    if position < 0 or not tokens or position + 1 + len(tokens) >= completer.n_ctx:
        return None
    previous = int(llm.input_ids[position])
    logprobs = _decode_scored(completer, [previous, *tokens], position, limits)
    if logprobs is None:
        return None
    # The candidate's own tokens after `kept` are re-scored inside `rest`: take them out.
    return sum(logprobs) - sum(branch.logprobs[kept:])


def _decode_scored(
    completer: Completer, tokens: list[int], n_past: int, limits: Limits
) -> list[float] | None:
    """Evaluate `tokens` from position `n_past` with logits for each; the log-prob of every
    token after the first (the first only conditions). None when stopped."""
    llm, n_vocab = completer.llm, completer.vocab.n_vocab
    llm._ctx.kv_cache_seq_rm(-1, n_past, -1)
    llm.n_tokens = n_past
    scores: list[float] = []
    for start in range(0, len(tokens), SCORE_CHUNK):
        if limits.exceeded(0, False) is not None:
            return None
        chunk = tokens[start : start + SCORE_CHUNK]
        llm._batch.set_batch(batch=chunk, n_past=n_past + start, logits_all=True)
        llm._ctx.decode(llm._batch)
        llm.input_ids[n_past + start : n_past + start + len(chunk)] = chunk
        llm.n_tokens = n_past + start + len(chunk)
        rows = np.ctypeslib.as_array(llm._ctx.get_logits(), shape=(len(chunk), n_vocab))
        for i in range(len(chunk)):
            following = start + i + 1
            if following < len(tokens):
                scores.append(log_softmax(rows[i], [tokens[following]])[0])
    return scores


def _candidate(branch: Branch, score: float | None) -> Candidate:
    return Candidate(
        text=branch.text,
        token_logprobs=list(branch.logprobs),
        stop_reason=branch.stop_reason or "stop",
        score=score,
    )
