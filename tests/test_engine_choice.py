"""Per-feature engines: which engine completions, explanations and reviews run on, and
`HintwiseServer.engines.worker_for(feature)` handing out the right worker (real model, real
server)."""

from __future__ import annotations

import json

import pytest
from inference_server import LlamaCppServer

from hintwise.lsp_server import config
from hintwise.lsp_server.engines.choice import EngineChoice, choice_for
from hintwise.lsp_server.server import HintwiseServer
from hintwise.models.engine import GenerationRequest
from hintwise.models.http.engine import HttpEngine
from hintwise.models.llama.engine import LlamaEngine
from hintwise.models.worker import Priority


def settings_with(values: dict) -> config.Settings:
    settings, problems = config.apply(config.Settings(), values)
    assert problems == []
    return settings


def test_every_feature_follows_the_completion_engine_by_default():
    local = settings_with({})
    assert {choice_for(local, f) for f in ("completion", "explain", "review")} == {
        EngineChoice("local", "gemma3-270m")
    }
    remote = settings_with({"engine": {"kind": "http", "url": "http://gpu:8080", "model": "m"}})
    assert {choice_for(remote, f) for f in ("completion", "explain", "review")} == {
        EngineChoice("http", "m", "http://gpu:8080")
    }


def test_explanations_and_reviews_can_have_their_own_engine():
    settings = settings_with(
        {
            "engine": {"kind": "http", "url": "http://gpu:8080", "model": "coder-1.5b"},
            "explain_engine": {"kind": "http", "model": "coder-7b-instruct"},
            "review_engine": {"kind": "local", "model": "/models/big.gguf"},
        }
    )
    assert choice_for(settings, "completion") == EngineChoice(
        "http", "coder-1.5b", "http://gpu:8080"
    )
    # Same server (engine.url), another model on it.
    assert choice_for(settings, "explain") == EngineChoice(
        "http", "coder-7b-instruct", "http://gpu:8080"
    )
    assert choice_for(settings, "review") == EngineChoice("local", "/models/big.gguf")
    other = settings_with({"explain_engine": {"kind": "http", "url": "http://big:8000"}})
    # Another server: its own default model, not the completion engine's.
    assert choice_for(other, "explain") == EngineChoice("http", "", "http://big:8000")
    assert choice_for(other, "completion") == EngineChoice("local", "gemma3-270m")


def test_a_bad_engine_kind_is_reported_and_ignored():
    settings, problems = config.apply(config.Settings(), {"explain_engine.kind": "cloud"})
    assert settings.explain_engine.kind == ""
    assert problems == ["explain_engine.kind must be one of , local, http, not 'cloud'"]


@pytest.fixture(scope="module")
def llama_server(gemma_path, tmp_path_factory):
    server = LlamaCppServer(gemma_path, tmp_path_factory.mktemp("server") / "server.log").start()
    yield server
    server.kill()


@pytest.mark.model
@pytest.mark.timeout(300)
def test_worker_for_gives_each_feature_its_engine(gemma_path, llama_server, tmp_path):
    values = {
        "data_dir": str(tmp_path),
        "model": {"path": str(gemma_path)},
        "explain_engine": {"kind": "http", "url": llama_server.url},
    }
    server = HintwiseServer(settings_with(values))
    try:
        server.engines.apply(server.settings)
        completion = server.engines.worker_for("completion")
        explain = server.engines.worker_for("explain")
        assert (
            completion is server.engines.completion
            and server.engines.worker_for("review") is server.engines.completion
        )
        assert explain is not completion
        assert completion.wait_ready(60) and explain.wait_ready(60)
        assert isinstance(completion.engine, LlamaEngine)
        assert isinstance(explain.engine, HttpEngine)

        # An explanation-style request through the explain worker, answered by the server.
        request = GenerationRequest(
            messages=[{"role": "user", "content": "Is `x = 1` valid Python? Answer in JSON."}],
            max_tokens=20,
            json_schema={
                "type": "object",
                "properties": {"valid": {"type": "boolean"}},
                "required": ["valid"],
            },
        )
        job = explain.submit(
            lambda engine, cancelled: engine.generate(request, cancelled),
            Priority.BACKGROUND,
            key="explain:test",
        )
        assert isinstance(json.loads(job.future.result(120).text)["valid"], bool)

        # Reviews on the same server share the explanations' worker; completions keep theirs.
        # (What a settings change does, without the telemetry side, which needs an LSP loop.)
        server.settings = settings_with(
            {**values, "review_engine": {"kind": "http", "url": llama_server.url}}
        )
        server.engines.apply(server.settings)
        assert server.engines.worker_for("review") is explain
        assert server.engines.worker_for("completion") is completion

        # Back to one engine for everything: the extra worker is stopped.
        server.settings = settings_with(
            {"data_dir": str(tmp_path), "model": {"path": str(gemma_path)}}
        )
        server.engines.apply(server.settings)
        assert (
            server.engines.worker_for("explain")
            is server.engines.worker_for("review")
            is completion
        )
        assert server.engines.features == {}
    finally:
        server.stop()


@pytest.mark.model
@pytest.mark.timeout(300)
def test_a_second_local_model_for_explanations(gemma_path, tmp_path):
    """Completions on Gemma, explanations on SmolLM2, both in-process: two models, two workers,
    neither evicting the other's cache."""
    server = HintwiseServer(
        settings_with(
            {
                "data_dir": str(tmp_path),
                "model": {"path": str(gemma_path)},
                "explain_engine": {"kind": "local", "model": "smollm2-135m"},
            }
        )
    )
    try:
        server.engines.apply(server.settings)
        completion, explain = (
            server.engines.worker_for("completion"),
            server.engines.worker_for("explain"),
        )
        assert explain is not completion and server.engines.worker_for("review") is completion
        assert completion.wait_ready(60) and explain.wait_ready(60)
        assert completion.engine.info.architecture == "gemma3"
        assert explain.engine.info.architecture == "llama"  # SmolLM2
    finally:
        server.stop()
