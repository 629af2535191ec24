"""Accumulators for streamed answers: each server-sent event's JSON goes to `on_event`, which
collects text, token counts and log-probs, and returns True to close the stream early."""

from __future__ import annotations

import math
import time
from typing import Protocol

from hintwise.models.engine import (
    Completion,
    CompletionRequest,
    Engine,
    Generation,
    StopReason,
)

# A server's finish_reason as a stop reason.
FINISH: dict[str, StopReason] = {"length": "max_tokens", "stop": "eos", "eos": "eos"}


class AnswerStream(Protocol):
    """What the transport needs of an accumulator."""

    finish: StopReason | None  # the server's finish reason, once it gave one
    stopped: bool  # the caller's stop rule ended the answer

    def reset(self) -> None:
        """Forget what was collected (a retry starts the answer over)."""

    def on_event(self, data: dict) -> bool:
        """Take one event; True closes the stream."""


class CompletionStream:
    """Accumulates a streamed completion: text, token count, log-probs, the caller's stop rule.

    `engine.live_generated` follows the token count (the worker reads it when it cancels)."""

    def __init__(self, request: CompletionRequest, result: Completion, engine: Engine):
        self.request = request
        self.result = result
        self.engine = engine
        self.reset()

    def reset(self) -> None:
        self.result.token_logprobs = []
        self.result.generated_tokens = 0
        self.engine.live_generated = 0
        self.text = ""
        self.tokens = 0
        self.first_at: float | None = None
        self.first_wall = 0.0
        self.finish: StopReason | None = None
        self.stopped = False

    def _piece(self, data: dict) -> tuple[str, list[float], str | None]:
        if "choices" in data:  # OpenAI /v1/completions
            choices = data.get("choices") or [{}]
            choice = choices[0]
            logprobs = choice.get("logprobs") or {}
            values = [v for v in (logprobs.get("token_logprobs") or []) if v is not None]
            # llama-server answers in the chat shape: {"content": [{"token", "logprob"}, ...]}
            values += [e["logprob"] for e in logprobs.get("content") or [] if "logprob" in e]
            return choice.get("text") or "", values, choice.get("finish_reason")
        # llama-server /infill: {"content", "stop", "completion_probabilities"}
        values = []
        for entry in data.get("completion_probabilities") or []:
            if "logprob" in entry:
                values.append(float(entry["logprob"]))
            else:  # older servers: probabilities of the top candidates
                chosen = next(
                    (p for p in entry.get("probs", []) if p.get("tok_str") == entry.get("content")),
                    None,
                )
                if chosen and chosen.get("prob"):
                    values.append(math.log(chosen["prob"]))
        finish = None
        if data.get("stop"):
            finish = "length" if data.get("stopped_limit") else "stop"
        return data.get("content") or "", values, finish

    def on_event(self, data: dict) -> bool:
        text, logprobs, finish = self._piece(data)
        if text or logprobs:
            if self.first_at is None:
                self.first_at, self.first_wall = time.monotonic(), time.perf_counter()
            self.tokens += max(1, len(logprobs)) if text else len(logprobs)
            self.result.token_logprobs.extend(logprobs)
            self.result.generated_tokens = self.tokens
            self.engine.live_generated = self.tokens
            self.text += text
        if finish:
            self.finish = FINISH.get(finish, "eos")
        if self.result.generated_tokens >= self.request.max_tokens > 0:
            self.finish = "max_tokens"
        stop = self.request.stop
        if stop is not None and text:
            cut = stop(self.text)
            if cut is not None:
                self.text = self.text[:cut]
                self.stopped = True
                return True  # closes the stream: the server stops generating
        return False


class ChatStream:
    """Accumulates a streamed chat (or completion) answer."""

    stopped = False  # generation has no stop rule of its own

    def __init__(self, result: Generation):
        self.result = result
        self.reset()

    def reset(self) -> None:
        self.parts: list[str] = []
        self.tokens = 0
        self.first_at: float | None = None
        self.first_wall: float | None = None
        self.finish: StopReason | None = None

    def on_event(self, data: dict) -> bool:
        choice = (data.get("choices") or [{}])[0]
        delta = choice.get("delta") or {}
        text = delta.get("content") if "delta" in choice else choice.get("text")
        if text:
            if self.first_at is None:
                self.first_at, self.first_wall = time.monotonic(), time.perf_counter()
            self.parts.append(text)
            self.tokens += 1
        if choice.get("finish_reason"):
            self.finish = FINISH.get(choice["finish_reason"], "eos")
        return False
