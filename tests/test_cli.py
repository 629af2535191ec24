"""The `hintwise` command as a user runs it: complete, doctor, and their error messages."""

from __future__ import annotations

import json
import subprocess

import pytest
from conftest import ROOT, hintwise_command

pytestmark = pytest.mark.model


def run(args: list[str], env: dict[str, str], timeout: float = 300) -> subprocess.CompletedProcess:
    return subprocess.run(
        [*hintwise_command(), *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=timeout,
        cwd=ROOT,
    )


def test_complete_the_quickstart_example_as_json(server_env):
    done = run(["complete", "examples/primes.py:15:13", "--json"], server_env)
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout)
    assert result["text"] == "return False"
    assert result["model"] == "gemma3-270m"
    assert result["fim"] is False
    assert result["tokens"]["generated"] >= len(result["token_logprobs"]) > 0
    assert result["tokens"]["generated_per_attempt"][-1] == result["tokens"]["generated"]
    assert {"context", "prompt", "generate", "total"} <= set(result["latency_ms"])
    assert result["latency_ms"]["total"] >= result["latency_ms"]["prompt"]


def test_complete_prints_the_line_with_the_suggestion(server_env):
    done = run(["complete", "examples/primes.py:15:13"], server_env)
    assert done.returncode == 0, done.stderr
    assert "return False" in done.stdout
    assert "ms" in done.stderr  # the latency line


@pytest.mark.parametrize(
    ("location", "message"),
    [
        ("examples/primes.py", "FILE:LINE:COL"),
        ("examples/primes.py:999:1", "has 22 lines"),
        ("examples/primes.py:15:99", "column 99 does not exist"),
        ("examples/nope.py:1:1", "cannot read"),
    ],
)
def test_complete_explains_a_bad_location(server_env, location, message):
    done = run(["complete", location], server_env, timeout=60)
    assert done.returncode != 0
    assert message in done.stderr


def test_complete_without_a_model_says_what_to_do(server_env, tmp_path):
    env = {**server_env, "HINTWISE_MODEL": str(tmp_path / "missing.gguf")}
    done = run(["complete", "examples/primes.py:15:13"], env, timeout=60)
    assert done.returncode != 0
    assert "missing.gguf" in done.stderr and "hintwise doctor" in done.stderr


def test_doctor_reports_model_speed_and_grammars(server_env):
    done = run(["doctor", "--json"], server_env)
    assert done.returncode == 0, done.stdout + done.stderr
    report = json.loads(done.stdout)
    model = report["model"]
    assert model["architecture"] == "gemma3"
    assert model["fim"] is None and "no FIM tokens" in model["fim_note"]
    assert model["load_ms"] > 0
    assert model["prompt_tokens_per_s"] > 10 and model["decode_tokens_per_s"] > 1
    assert {"python", "javascript", "typescript", "go", "rust", "java", "c", "cpp"} <= set(
        report["grammars"]
    )
    assert report["problems"] == []
    text = run(["doctor", "--no-speed"], server_env)
    assert "no problems found" in text.stdout


def test_doctor_names_the_problem_with_a_broken_model(server_env, tmp_path):
    broken = tmp_path / "half.gguf"
    broken.write_bytes(b"GGUF" + b"\x03\x00\x00\x00" + b"\x00" * 10)
    done = run(["doctor", "--json", "--model", str(broken)], server_env, timeout=60)
    assert done.returncode == 1
    [problem] = json.loads(done.stdout)["problems"]
    assert "half.gguf" in problem
