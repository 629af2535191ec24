"""`hintwise feedback stats|export|recent|purge` on a real store written by telemetry.Writer."""

from __future__ import annotations

import json
import subprocess
import time

import pytest
from conftest import hintwise_command

from hintwise.telemetry import Event, Suggestion, Writer, default_path


def run(args: list[str], env: dict[str, str]) -> subprocess.CompletedProcess:
    return subprocess.run(
        [*hintwise_command(), "feedback", *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )


@pytest.fixture
def store_env(server_env, tmp_path):
    """A store with one accepted-and-survived, one rejected-with-replacement and one timed-out
    suggestion for the same prompt, as the server records them."""
    env = {**server_env, "HINTWISE_DATA_DIR": str(tmp_path / "data")}
    writer = Writer.start(default_path(tmp_path / "data"))
    now = int(time.time() * 1000)
    prompt = "<bos>def area(r):\n    "
    rows = [
        (
            "a",
            "return 3.14159 * r * r",
            [("accepted", {}), ("survival", {"check_after_s": 30, "similarity": 1.0})],
        ),
        (
            "b",
            "pass",
            [
                ("rejected", {"reason": "diverged"}),
                ("replacement", {"text": "return math.pi * r ** 2"}),
            ],
        ),
        ("c", "print(r)", [("rejected", {"reason": "timeout"})]),
    ]
    for number, (sid, text, events) in enumerate(rows):
        writer.record(
            Suggestion(
                id=sid,
                created_ms=now + number,
                language="python",
                prompt=prompt,
                text=text,
                model="gemma3-270m",
            )
        )
        writer.record(Event(suggestion_id=sid, kind="shown", time_ms=now + number))
        for kind, values in events:
            writer.record(Event(suggestion_id=sid, kind=kind, time_ms=now + 10, **values))
    assert writer.close(timeout=10)
    return env


def test_stats(store_env, tmp_path):
    chart = tmp_path / "chart.png"
    done = run(["stats", "--json", "--chart", str(chart)], store_env)
    assert done.returncode == 0, done.stderr
    figures = json.loads(done.stdout)
    assert figures["completions"] == 3
    overall = figures["acceptance"]["overall"]
    assert (overall["count"], overall["n"]) == (1, 3)
    assert figures["acceptance"]["by_language"]["python"]["n"] == 3
    assert figures["survival"]["30"]["mean_similarity"] == 1.0
    assert figures["rejections"]["diverged"] == 1 and figures["rejections"]["timeout"] == 1
    assert chart.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    text = run(["stats", "--chart", str(chart)], store_env)
    assert "Accepted" in text.stdout and "33.3 %" in text.stdout and "(1 of 3)" in text.stdout


def test_export_dpo_and_kto(store_env, tmp_path):
    dpo = tmp_path / "dpo.jsonl"
    done = run(["export", "--format", "dpo", "--out", str(dpo)], store_env)
    assert done.returncode == 0, done.stderr
    pairs = [json.loads(line) for line in dpo.read_text().splitlines()]
    assert {
        "prompt": "<bos>def area(r):\n    ",
        "chosen": "return 3.14159 * r * r",
        "rejected": "pass",
    } in pairs
    assert {
        "prompt": "<bos>def area(r):\n    ",
        "chosen": "return math.pi * r ** 2",
        "rejected": "pass",
    } in pairs
    kto = tmp_path / "kto.jsonl"
    assert run(["export", "--format", "kto", "--out", str(kto)], store_env).returncode == 0
    labels = {
        row["completion"]: row["label"] for row in map(json.loads, kto.read_text().splitlines())
    }
    assert labels == {"return 3.14159 * r * r": True, "pass": False, "print(r)": False}


def test_recent_and_purge(store_env):
    recent = run(["recent", "-n", "5"], store_env)
    assert recent.returncode == 0 and "accepted" in recent.stdout
    assert run(["purge"], store_env).returncode != 0  # says what to delete, deletes nothing
    done = run(["purge", "--all"], store_env)
    assert "deleted 3 suggestions" in done.stdout
    assert json.loads(run(["stats", "--json"], store_env).stdout)["completions"] == 0


def test_a_missing_store_is_explained(server_env, tmp_path):
    done = run(["stats"], {**server_env, "HINTWISE_DATA_DIR": str(tmp_path / "empty")})
    assert done.returncode != 0 and "no feedback store yet" in done.stderr
