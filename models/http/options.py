"""How to reach an inference server (HttpOptions) and what it said about itself (ServerFacts)."""

from __future__ import annotations

from dataclasses import dataclass, field

from hintwise.models import fim as fim_formats

SERVER_KINDS = ("llama-server", "llama-cpp-python", "vllm", "ollama", "openai")


@dataclass(frozen=True)
class HttpOptions:
    """Where the server is and how to talk to it. The API key is never printed (repr=False)."""

    url: str
    model: str = ""  # the server's model name; "" = the first one it lists
    api_key: str | None = field(default=None, repr=False)
    connect_timeout_s: float = 3.0
    # Longest wait for the first token (the server evaluates the prompt meanwhile) and between
    # two tokens; a completion also stops at its own time limit.
    read_timeout_s: float = 10.0
    retries: int = 2
    backoff_s: float = 0.25
    max_pause_s: float = 8.0
    verify_tls: bool = True
    ca_file: str = ""
    kind: str = "auto"  # or one of SERVER_KINDS, to skip detection
    # Per-token log-probabilities: "on", "off", or "auto" = on except from llama-cpp-python,
    # whose server log-softmaxes and sorts the whole vocabulary in Python for every token
    # (measured here with Gemma's 262,144 tokens: 16 tokens in 7.1 s with, 0.39 s without).
    logprobs: str = "auto"


@dataclass
class ServerFacts:
    """What `probe` learned about the server."""

    kind: str = "openai"
    model: str = ""
    context_length: int | None = None
    fim: fim_formats.FimFormat | None = None  # a FIM prompt built as text (llama-cpp-python, vLLM)
    infill: bool = False  # llama-server's /infill does FIM itself
    logprobs: bool = True  # cleared when the server refuses them


def base_url(url: str) -> str:
    """The server's address without a trailing slash or `/v1` (paths are added per request)."""
    url = url.strip().rstrip("/")
    if url.endswith("/v1"):
        url = url[: -len("/v1")]
    return url
