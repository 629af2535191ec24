"""The server's LoRA adapter: a real GGUF LoRA changes the model (or, with B = 0, does not),
bad ones fall back to the base model with one message, and a running server picks up a newly
installed or reverted adapter without a restart."""

from __future__ import annotations

import asyncio
import dataclasses
import json
import subprocess
from pathlib import Path

import pytest
from conftest import hintwise_command
from lora_file import base_shapes, write_lora
from lsp_session import EXAMPLE, inline, open_document, session, status, wait_ready

from hintwise.lsp_server.config import Settings
from hintwise.lsp_server.engines import adapter
from hintwise.lsp_server.engines.adapter import AdapterState
from hintwise.lsp_server.engines.choice import load_engine
from hintwise.models.engine import CompletionRequest
from hintwise.models.files import adapters

URI = "file:///work/example/primes.py"
BODY_LINE, BODY_COLUMN = 14, 12  # the blank line inside `if n % divisor == 0:`
PROMPT = "def is_even(n):\n    return"

# The shape of a report `hintwise tune` writes (lsp_server/tune/run.py), trimmed.
REPORT = {
    "decision": "better on your held-out data: +10.0 points [+2.5, +17.5] on 40 rows",
    "installed": True,
    "figures": {"held_out": {"base": {"n": 40, "exact": 0.3}, "tuned": {"n": 40, "exact": 0.4}}},
}


def _settings(data: Path, model: Path, lora: str = "") -> Settings:
    settings = Settings(data_dir=str(data))
    return dataclasses.replace(
        settings, model=dataclasses.replace(settings.model, path=str(model), adapter=lora)
    )


def _complete(data: Path, model: Path, lora: str) -> tuple[str, AdapterState]:
    states: list[AdapterState] = []
    engine = load_engine(_settings(data, model, lora), on_adapter=states.append)
    try:
        request = CompletionRequest(prefix=PROMPT, max_tokens=12, time_limit_s=60)
        return engine.complete(request, lambda: False).text, states[0]
    finally:
        engine.close()


def _install(data: Path, model: Path, run_id: str, **lora) -> Path:
    run = adapters.model_dir(data, model) / "runs" / run_id
    run.mkdir(parents=True)
    write_lora(model, run / adapters.ADAPTER_FILE, **lora)
    (run / adapters.REPORT_FILE).write_text(json.dumps(REPORT))
    adapters.install(data, model, run)
    return run


def test_a_garbled_installed_json_is_a_problem_with_its_fix(tmp_path: Path) -> None:
    base = tmp_path / "model.gguf"
    base.write_bytes(b"GGUF" + b"x" * 5000)
    folder = adapters.model_dir(tmp_path, base)
    folder.mkdir(parents=True)
    (folder / adapters.INSTALLED_FILE).write_text('{"current": "r1", ')
    state = adapter.pick("", tmp_path, base)
    assert state.path is None and state.problem and "not readable JSON" in state.problem
    assert "hintwise tune --revert" in state.message("model.gguf")
    assert adapter.pick("none", tmp_path, base).problem is None
    missing = adapter.pick(str(tmp_path / "nope.gguf"), tmp_path, base)
    assert missing.problem == "the file does not exist" and '"none"' in missing.fix()


def test_the_stamp_changes_with_an_install_and_a_revert(tmp_path: Path) -> None:
    base = tmp_path / "model.gguf"
    base.write_bytes(b"GGUF" + b"x" * 5000)
    registry = adapters.model_dir(tmp_path, base)
    before = adapter.stamp("", registry)
    run = registry / "runs" / "r1"
    run.mkdir(parents=True)
    (run / adapters.ADAPTER_FILE).write_bytes(b"lora")
    adapters.install(tmp_path, base, run)
    installed = adapter.stamp("", registry)
    assert installed != before
    adapters.revert(tmp_path, base)
    assert adapter.stamp("", registry) != installed
    assert adapter.stamp("none", registry) == ("none",)


@pytest.mark.model
def test_a_zero_lora_changes_nothing_and_a_random_one_changes_the_output(
    gemma_path: Path, tmp_path: Path
) -> None:
    base_text, state = _complete(tmp_path, gemma_path, "none")
    assert state.source == "none" and not state.loaded
    zero = write_lora(gemma_path, tmp_path / "zero.gguf", zero_b=True)
    zero_text, state = _complete(tmp_path, gemma_path, str(zero))
    assert state.loaded and state.problem is None
    assert zero_text == base_text
    # std 0.1 on every linear layer garbles the model: a difference with a wide margin.
    strong = write_lora(gemma_path, tmp_path / "strong.gguf", std=0.1)
    strong_text, state = _complete(tmp_path, gemma_path, str(strong))
    assert state.loaded and strong_text != base_text


@pytest.mark.model
@pytest.mark.parametrize("kind", ["not a gguf", "another architecture", "other shapes"])
def test_an_adapter_llama_cpp_refuses_leaves_the_base_model_serving(
    gemma_path: Path, tmp_path: Path, kind: str
) -> None:
    """llama-cpp-python's own `lora_path` let these through as a NULL adapter, and the first
    evaluation died with a segmentation fault."""
    path = tmp_path / "bad.gguf"
    if kind == "not a gguf":
        path.write_bytes(b"not a model " * 100)
        reason = "failed to load lora adapter"
    elif kind == "another architecture":
        write_lora(gemma_path, path, architecture="llama", targets=("attn_q",))
        reason = "arch mismatch"
    else:
        _, shapes = base_shapes(gemma_path, ("attn_q",))
        write_lora(gemma_path, path, shapes={k: (n * 2, m) for k, (n, m) in shapes.items()})
        reason = "incorrect shape"
    text, state = _complete(tmp_path, gemma_path, str(path))
    assert not state.loaded and state.problem and reason in state.problem
    assert text.strip()  # the base model answered


async def _until(client, check, timeout: float = 90.0):
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        current = await status(client)
        if check(current):
            return current
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"still {current.adapter} after {timeout} s")
        await asyncio.sleep(0.5)


def _env(server_env: dict, data: Path, model: Path) -> dict:
    return {**server_env, "HINTWISE_DATA_DIR": str(data), "HINTWISE_MODEL": str(model)}


@pytest.mark.model
@pytest.mark.timeout(300)
async def test_the_installed_adapter_is_used_and_a_new_one_is_picked_up_without_restart(
    server_env, gemma_path: Path, tmp_path: Path
) -> None:
    _install(tmp_path, gemma_path, "r1", zero_b=True)
    async with session(_env(server_env, tmp_path, gemma_path)) as client:
        ready = await wait_ready(client, timeout=120)
        assert ready.state == "ready"
        assert ready.adapter.run_id == "r1" and ready.adapter.loaded
        assert ready.adapter.report.figures.held_out.tuned.exact == 0.4
        open_document(client, URI, EXAMPLE)
        result = await inline(client, URI, BODY_LINE, BODY_COLUMN)
        assert result.items[0].insert_text.strip() == "return False"  # B = 0 changes nothing

        hits = (await status(client)).completions.cache_hits
        _install(tmp_path, gemma_path, "r2", zero_b=True, seed=1)
        await asyncio.sleep(adapter.CHECK_EVERY_S + 0.5)
        # This request finds the new install: the model reloads on its thread, the request
        # waits in the queue and is answered by the reloaded model, not from the typing cache.
        answered = await inline(client, URI, BODY_LINE, BODY_COLUMN)
        assert answered.items[0].insert_text.strip() == "return False"
        now = await status(client)
        assert now.adapter.run_id == "r2" and now.adapter.loaded and now.state == "ready"
        assert now.completions.cache_hits == hits

        adapters.revert(tmp_path, gemma_path)
        back = await _until(client, lambda s: s.adapter.run_id == "r1" and s.state == "ready")
        assert back.adapter.loaded
        logged = [m.message for m in client.log_messages if "completions now use" in m.message]
        assert len(logged) == 2 and "r2" in logged[0] and "r1" in logged[1]
        assert not [m for m in client.messages if "completions now use" in m.message]


@pytest.mark.model
@pytest.mark.timeout(300)
async def test_a_broken_installed_adapter_falls_back_with_one_message(
    server_env, gemma_path: Path, tmp_path: Path
) -> None:
    _install(tmp_path, gemma_path, "r1", architecture="llama", targets=("attn_q",))
    async with session(_env(server_env, tmp_path, gemma_path)) as client:
        ready = await wait_ready(client, timeout=120)
        assert ready.state == "ready" and not ready.adapter.loaded
        assert "arch mismatch" in ready.adapter.problem
        assert "hintwise tune --revert" in ready.adapter.fix
        open_document(client, URI, EXAMPLE)
        for _ in range(2):
            result = await inline(client, URI, BODY_LINE, BODY_COLUMN)
            assert result.items[0].insert_text.strip() == "return False"
        await asyncio.sleep(adapter.CHECK_EVERY_S + 0.5)
        await status(client)
        said = [m.message for m in client.messages if "cannot be used" in m.message]
        assert len(said) == 1 and "base model" in said[0]


def _hintwise(args: list[str], data: Path, model: Path | None = None):
    env = {"HINTWISE_DATA_DIR": str(data), "PATH": "/usr/bin:/bin"}
    if model is not None:
        env["HINTWISE_MODEL"] = str(model)
    return subprocess.run(
        [*hintwise_command(), *args], capture_output=True, text=True, timeout=600, env=env
    )


@pytest.mark.model
def test_doctor_shows_the_adapter_and_names_a_broken_one_with_its_fix(
    gemma_path: Path, tmp_path: Path
) -> None:
    _install(tmp_path, gemma_path, "r1", zero_b=True)
    done = _hintwise(["doctor", "--json", "--no-speed"], tmp_path, gemma_path)
    lora = json.loads(done.stdout)["model"]["adapter"]
    assert lora["run_id"] == "r1" and lora["loaded"] and lora["size_bytes"] > 1_000_000
    assert lora["report"]["decision"] == REPORT["decision"]
    text = _hintwise(["doctor", "--no-speed"], tmp_path, gemma_path).stdout
    assert "adapter: run r1" in text and "its run: better on your held-out data" in text
    assert "held-out exact answers: base 30.0% → tuned 40.0% (40 cases)" in text

    _install(tmp_path, gemma_path, "r2", architecture="llama", targets=("attn_q",))
    broken = _hintwise(["doctor", "--no-speed"], tmp_path, gemma_path)
    assert broken.returncode == 1
    assert "NOT USED, model arch and LoRA arch mismatch" in broken.stdout
    assert "hintwise tune --revert" in broken.stdout


def test_models_list_shows_the_adapters_of_each_model(gemma_path: Path, tmp_path: Path) -> None:
    models = tmp_path / "models"
    models.mkdir()
    linked = models / gemma_path.name
    linked.symlink_to(gemma_path)
    run = adapters.model_dir(tmp_path, linked) / "runs" / "r7"
    run.mkdir(parents=True)
    (run / adapters.ADAPTER_FILE).write_bytes(b"x" * 300_000)
    adapters.install(tmp_path, linked, run)
    listed = json.loads(_hintwise(["models", "list", "--json"], tmp_path).stdout)
    assert listed["files"][0]["adapters"] == {"installed": "r7", "installed_mb": 0.3, "runs": 1}
    text = _hintwise(["models", "list"], tmp_path).stdout
    assert "LoRA adapters (hintwise tune): run r7 installed (0.3 MB), 1 run(s)" in text


def test_the_pool_says_a_problem_once_and_a_switch_in_the_log() -> None:
    from hintwise.lsp_server.engines.workers import EnginePool

    said: dict[str, list[str]] = {"warn": [], "note": []}
    pool = EnginePool(
        Settings(),
        tell=lambda m: None,
        warn=said["warn"].append,
        error=lambda m: None,
        note=said["note"].append,
    )
    first = adapter.loaded(AdapterState("installed", Path("/a/r1.gguf"), "r1"))
    pool._adapter_loaded(first)
    assert said == {"warn": [], "note": []}  # the first load: told with "model ready"
    pool._adapter_loaded(adapter.loaded(AdapterState("none")))  # reverted
    assert said["note"] == ["hintwise: completions now use the base model, no adapter"]
    assert pool.adapter_status()["source"] == "none"
    broken = adapter.refused(AdapterState("installed", Path("/a/r2.gguf"), "r2"), "arch mismatch")
    pool._adapter_loaded(broken)
    pool._adapter_loaded(broken)  # e.g. reloaded for a settings change: not said again
    assert len(said["warn"]) == 1 and "arch mismatch" in said["warn"][0]
    assert len(said["note"]) == 1  # the base model served before and serves now
