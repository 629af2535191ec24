"""Which server this is, which model it serves, and how to ask it for fill-in-the-middle.

Servers told apart: llama.cpp's `llama-server` (`owned_by: llamacpp`, `/props`; its `/infill`
does FIM itself), `python -m llama_cpp.server` (`owned_by: me`), vLLM and Ollama (`/api/version`);
anything else is plain "openai". For llama-cpp-python and vLLM a FIM format is found by counting
tokens: a marker that the server's tokenizer reads as one token is a special token of the model.
"""

from __future__ import annotations

from hintwise.models import fim as fim_formats
from hintwise.models.http.options import ServerFacts
from hintwise.models.http.transport import Fatal, Retryable, Transport


async def probe(transport: Transport) -> ServerFacts:
    """What the server at `transport` is and serves (Retryable or Fatal when it cannot say)."""
    options, base = transport.options, transport.base
    facts = ServerFacts(kind=options.kind if options.kind != "auto" else "openai")
    response = await transport.request("GET", "/v1/models")
    if response.status_code != 200:
        raise transport.refusal(response, response.text)
    try:
        listed = response.json().get("data") or []
    except (ValueError, AttributeError):
        raise Fatal(
            f"{base}/v1/models did not answer JSON: is this an OpenAI-compatible server?"
        ) from None
    entry = next(
        (m for m in listed if not options.model or m.get("id") == options.model),
        None,
    )
    if entry is None and options.model:
        names = ", ".join(str(m.get("id")) for m in listed) or "none"
        raise Fatal(
            f"the inference server at {base} does not serve {options.model!r} "
            f"(it serves: {names}); check engine.model",
            "refused",
        )
    entry = entry or {}
    facts.model = options.model or str(entry.get("id", ""))
    owner = str(entry.get("owned_by", ""))
    if options.kind == "auto":
        facts.kind = await detect_kind(transport, owner)
    if facts.kind == "vllm":
        facts.context_length = entry.get("max_model_len")
    if facts.kind == "llama-server":
        await _llama_server_facts(transport, facts, entry)
    elif facts.kind in ("llama-cpp-python", "vllm"):
        facts.fim = await detect_fim(transport, facts)
    facts.logprobs = options.logprobs == "on" or (
        options.logprobs == "auto" and facts.kind != "llama-cpp-python"
    )
    return facts


async def _llama_server_facts(transport: Transport, facts: ServerFacts, entry: dict) -> None:
    """llama-server's context size (`/props`) and whether `/infill` answers."""
    meta = entry.get("meta") or {}
    facts.context_length = meta.get("n_ctx_train")
    props = await transport.request("GET", "/props")
    if props.status_code == 200:
        settings = props.json().get("default_generation_settings") or {}
        facts.context_length = settings.get("n_ctx") or facts.context_length
    infill = await transport.request(
        "POST", "/infill", json={"input_prefix": "", "input_suffix": "", "n_predict": 0}
    )
    facts.infill = infill.status_code == 200


async def detect_kind(transport: Transport, owner: str) -> str:
    """The server kind from the model list's `owned_by`, else from the paths it answers."""
    if owner == "llamacpp":
        return "llama-server"
    if owner == "me":  # llama-cpp-python's /v1/models says so
        return "llama-cpp-python"
    if owner == "vllm":
        return "vllm"
    for path, kind in (("/props", "llama-server"), ("/api/version", "ollama")):
        try:
            response = await transport.request("GET", path)
        except Retryable:
            continue
        if response.status_code == 200:
            return kind
    return "openai"


async def count_tokens(transport: Transport, facts: ServerFacts, text: str) -> int | None:
    """How many tokens the server's tokenizer makes of `text`; None when it will not say."""
    if facts.kind == "llama-cpp-python":
        response = await transport.request("POST", "/extras/tokenize", json={"input": text})
    else:
        response = await transport.request(
            "POST",
            "/tokenize",
            json={"model": facts.model, "prompt": text, "add_special_tokens": False},
        )
    if response.status_code != 200:
        return None
    return len(response.json().get("tokens", []))


async def detect_fim(transport: Transport, facts: ServerFacts) -> fim_formats.FimFormat | None:
    """The FIM format whose three markers the server's tokenizer reads as single tokens.

    The vocabulary is the truth, as for local models (see models.fim): a marker that is one
    token is a special token of the model."""
    baseline = await count_tokens(transport, facts, "")
    if baseline is None:
        return None
    for fmt in fim_formats.FORMATS:
        counts = [
            await count_tokens(transport, facts, text)
            for text in (fmt.prefix, fmt.suffix, fmt.middle)
        ]
        if all(count == baseline + 1 for count in counts):
            return fmt
    return None
