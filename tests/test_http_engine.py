"""The HTTP engine against a real `python -m llama_cpp.server` serving the bundled GGUF."""

from __future__ import annotations

import json
import logging
import subprocess
import time

import pytest
from inference_server import LlamaCppServer, free_port, tokens_generated

from hintwise.lsp_server import config
from hintwise.lsp_server.engines.choice import choice_for, load_choice
from hintwise.models.engine import CompletionRequest, GenerationRequest
from hintwise.models.errors import EngineUnavailable
from hintwise.models.http.engine import HttpEngine
from hintwise.models.http.options import HttpOptions

pytestmark = [pytest.mark.model, pytest.mark.timeout(300)]

PROMPT = "def add(a, b):\n    return"


def first_line(text: str) -> int | None:
    return text.index("\n") if "\n" in text else None


@pytest.fixture(scope="module")
def llama_server(gemma_path, tmp_path_factory):
    server = LlamaCppServer(
        gemma_path, tmp_path_factory.mktemp("server") / "server.log", logits_all=True
    ).start()
    yield server
    server.kill()


@pytest.fixture
def engine(llama_server):
    statuses: list[tuple[str, str]] = []
    engine = HttpEngine(
        HttpOptions(url=llama_server.url + "/v1", logprobs="on"),
        on_status=lambda state, message: statuses.append((state, message)),
    )
    engine.statuses = statuses
    yield engine
    engine.close()


def test_the_engine_knows_what_it_talks_to(engine, gemma_path):
    assert engine.health == "ok"
    assert engine.facts.kind == "llama-cpp-python"
    assert engine.facts.model == str(gemma_path)
    assert engine.info.fim_family is None  # Gemma 3 has no FIM tokens: prefix continuation
    assert engine.statuses == [("ok", f"llama-cpp-python serving {gemma_path}")]


def test_a_completion_is_the_in_process_engines_with_the_same_log_probs(engine, gemma_engine):
    request = CompletionRequest(
        prefix=PROMPT, max_tokens=16, stop=first_line, token_healing=False, time_limit_s=60
    )
    local = gemma_engine.complete(request, lambda: False)
    remote = engine.complete(request, lambda: False)
    assert remote.text == local.text == " a + b"
    assert remote.stop_reason == "stop"
    assert len(remote.token_logprobs) == len(local.token_logprobs) >= 3
    for there, here in zip(remote.token_logprobs, local.token_logprobs, strict=False):
        assert there == pytest.approx(here, abs=0.05)


def test_log_probs_are_off_by_default_with_llama_cpp_python(llama_server):
    engine = HttpEngine(HttpOptions(url=llama_server.url))
    try:
        assert engine.facts.logprobs is False
        result = engine.complete(
            CompletionRequest(prefix=PROMPT, max_tokens=8, stop=first_line), lambda: False
        )
        assert result.text == " a + b" and result.token_logprobs == []
        assert result.generated_tokens >= 3
    finally:
        engine.close()


def test_a_server_that_refuses_log_probs_is_asked_again_without(gemma_path, tmp_path):
    """llama_cpp.server started with --logits_all false fails a request for log-probs: the
    engine asks again without, remembers, and says nothing alarming to the user."""
    server = LlamaCppServer(gemma_path, tmp_path / "server.log", logits_all=False).start()
    statuses: list[str] = []
    engine = HttpEngine(
        HttpOptions(url=server.url, logprobs="on"),
        on_status=lambda state, message: statuses.append(state),
    )
    try:
        assert engine.facts.logprobs is True
        request = CompletionRequest(prefix=PROMPT, max_tokens=8, stop=first_line)
        result = engine.complete(request, lambda: False)
        assert result.text == " a + b" and result.token_logprobs == []
        assert engine.facts.logprobs is False and engine.status()["logprobs"] is False
        assert statuses == ["ok"]
        assert engine.complete(request, lambda: False).text == " a + b"
    finally:
        engine.close()
        server.kill()


def test_generate_answers_json_that_follows_the_schema(engine):
    schema = {
        "type": "object",
        "properties": {"line": {"type": "integer"}, "ok": {"type": "boolean"}},
        "required": ["line", "ok"],
    }
    result = engine.generate(
        GenerationRequest(
            messages=[
                {"role": "user", "content": "Which line has the bug? Answer in JSON.\n1 x = 1\n"}
            ],
            max_tokens=40,
            json_schema=schema,
        ),
        lambda: False,
    )
    answer = json.loads(result.text)
    assert isinstance(answer["line"], int) and isinstance(answer["ok"], bool)
    assert result.generated_tokens > 3 and result.stop_reason in ("eos", "stop")


def test_a_cancel_closes_the_stream_and_the_server_stops_generating(llama_server):
    """Counted on the server side: after the cancel, its KV cache holds the prompt and the
    tokens it generated, which a probe with the full greedy answer reveals (inference_server).
    Without log-probs the server generates ~30 tokens/s here, so one that went on would be
    dozens of tokens further after the pause."""
    engine = HttpEngine(HttpOptions(url=llama_server.url, logprobs="off"))
    prompt = "import os\nimport sys\n\n\ndef main():\n"
    full = engine.complete(
        CompletionRequest(prefix=prompt, max_tokens=96, time_limit_s=120), lambda: False
    )
    assert full.stop_reason == "max_tokens" and full.generated_tokens == 96
    # The probe counts what a server generated: the whole answer when nothing was cancelled.
    assert 95 <= tokens_generated(llama_server, prompt, full.text) <= 96
    at_cancel: list[int] = []

    def cancelled() -> bool:
        if engine.live_generated >= 8 and not at_cancel:
            at_cancel.append(engine.live_generated)
        return bool(at_cancel)

    started = time.monotonic()
    result = engine.complete(
        CompletionRequest(prefix=prompt, max_tokens=96, time_limit_s=120), cancelled
    )
    assert result.stop_reason == "cancelled"
    assert time.monotonic() - started < 60
    time.sleep(1.5)
    generated = tokens_generated(llama_server, prompt, full.text)
    engine.close()
    after = generated - at_cancel[0]
    print(f"tokens received at the cancel {at_cancel[0]}, generated by the server {generated}")
    assert -1 <= after <= 2, (at_cancel, generated)


def test_a_server_that_is_down_degrades_to_nothing_quickly():
    statuses: list[str] = []
    engine = HttpEngine(
        HttpOptions(url=f"http://127.0.0.1:{free_port()}"),
        on_status=lambda state, message: statuses.append(state),
    )
    try:
        assert engine.health == "down" and statuses == ["down"]
        for _ in range(3):
            started = time.monotonic()
            with pytest.raises(EngineUnavailable, match="cannot reach the inference server"):
                engine.complete(CompletionRequest(prefix=PROMPT), lambda: False)
            assert time.monotonic() - started < 1.0
        assert statuses == ["down"]  # told once, not on every keystroke
    finally:
        engine.close()


def test_an_api_key_from_a_file_or_the_environment_never_logged(
    gemma_path, tmp_path, monkeypatch, caplog
):
    secret = "sk-hintwise-test-0123456789"
    server = LlamaCppServer(gemma_path, tmp_path / "server.log", api_key=secret).start()
    caplog.set_level(logging.DEBUG)
    try:
        settings = config.apply(
            config.Settings(), {"engine.kind": "http", "engine.url": server.url}
        )[0]
        choice = choice_for(settings, "completion")
        monkeypatch.delenv("HINTWISE_API_KEY", raising=False)
        refused = load_choice(settings, choice)
        assert refused.health == "refused" and "refused the API key" in refused.health_message
        with pytest.raises(EngineUnavailable, match="API key"):
            refused.complete(CompletionRequest(prefix=PROMPT), lambda: False)
        refused.close()

        monkeypatch.setenv("HINTWISE_API_KEY", secret)
        from_env = load_choice(settings, choice)
        request = CompletionRequest(prefix=PROMPT, max_tokens=8, stop=first_line)
        assert from_env.complete(request, lambda: False).text == " a + b"
        assert secret not in repr(from_env.options)
        from_env.close()

        monkeypatch.delenv("HINTWISE_API_KEY")
        key_file = tmp_path / "key"
        key_file.write_text(secret + "\n")
        settings = config.apply(settings, {"engine.api_key_file": str(key_file)})[0]
        from_file = load_choice(settings, choice)
        assert from_file.complete(request, lambda: False).text == " a + b"
        from_file.close()
    finally:
        server.kill()
    assert secret not in caplog.text


def test_tls_is_verified_unless_told_otherwise(gemma_path, tmp_path):
    key, cert = tmp_path / "key.pem", tmp_path / "cert.pem"
    subprocess.run(
        [
            "openssl",
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-days",
            "1",
            "-subj",
            "/CN=127.0.0.1",
            "-addext",
            "subjectAltName=IP:127.0.0.1",
            "-keyout",
            str(key),
            "-out",
            str(cert),
        ],
        check=True,
        capture_output=True,
    )
    server = LlamaCppServer(gemma_path, tmp_path / "server.log", tls=(key, cert)).start()
    request = CompletionRequest(prefix=PROMPT, max_tokens=8, stop=first_line)
    try:
        assert server.url.startswith("https://")
        strict = HttpEngine(HttpOptions(url=server.url))
        assert strict.health == "down"
        assert "TLS verification failed" in strict.health_message
        assert "engine.ca_file" in strict.health_message
        strict.close()
        for options in (
            HttpOptions(url=server.url, ca_file=str(cert)),
            HttpOptions(url=server.url, verify_tls=False),
        ):
            engine = HttpEngine(options)
            assert engine.complete(request, lambda: False).text == " a + b"
            engine.close()
    finally:
        server.kill()


def test_the_prompt_window_keeps_its_start_while_typing():
    """The prefix is cut at a line start only when it outgrows its budget, so the server's
    prompt cache stays valid from one keystroke to the next."""
    engine = HttpEngine.__new__(HttpEngine)  # _windows needs no connection
    lines = "".join(f"line_{i} = {i}\n" for i in range(400))
    request = CompletionRequest(prefix=lines + "x = ", suffix="\n" * 2000, prefix_budget=256)
    prefix, suffix, cut = engine._windows(request)
    assert lines[cut - 1] == "\n" and prefix == request.prefix[cut:]
    assert len(prefix) <= 256 * 3 and len(suffix) <= 128 * 3
    typed = CompletionRequest(prefix=request.prefix[cut:] + "1", prefix_budget=256)
    assert engine._windows(typed)[2] == 0  # the anchored prefix is not cut again


def test_llama_server_infill_events_give_text_and_log_probs():
    """The two shapes of llama-server's /infill stream: `logprob` per token (current) and the
    probabilities of the top candidates (older servers)."""
    from hintwise.models.engine import Completion
    from hintwise.models.http.streams import CompletionStream

    engine = HttpEngine.__new__(HttpEngine)
    request = CompletionRequest(prefix="x", max_tokens=8, stop=first_line)
    state = CompletionStream(request, Completion(text=""), engine)
    assert not state.on_event({"content": " a", "completion_probabilities": [{"logprob": -0.5}]})
    old = {
        "content": " +",
        "completion_probabilities": [
            {
                "content": " +",
                "probs": [{"tok_str": " -", "prob": 0.2}, {"tok_str": " +", "prob": 0.5}],
            }
        ],
    }
    assert not state.on_event(old)
    assert state.on_event({"content": " b\n", "stop": True, "stopped_limit": False})
    assert state.text == " a + b" and state.stopped
    assert state.result.token_logprobs[:2] == [-0.5, pytest.approx(-0.6931, abs=1e-3)]


def test_a_slow_server_is_reported_and_skipped(llama_server):
    """A first token later than engine.timeout_ms: the suggestion is skipped (no wait beyond
    it) and the health says slow, once."""
    statuses: list[str] = []
    engine = HttpEngine(
        HttpOptions(url=llama_server.url, read_timeout_s=0.3, logprobs="off"),
        on_status=lambda state, message: statuses.append(state),
    )
    long_prompt = "".join(f"def f{i}(x):\n    return x * {i} + {i * i}\n\n" for i in range(150))
    try:
        started = time.monotonic()
        with pytest.raises(EngineUnavailable, match=r"is slow: no first token within 0\.3 s"):
            engine.complete(CompletionRequest(prefix=long_prompt, max_tokens=8), lambda: False)
        assert time.monotonic() - started < 1.5
        assert engine.health == "slow" and statuses[-1:] == ["slow"] and statuses.count("slow") == 1
    finally:
        engine.close()
