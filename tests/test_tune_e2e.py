"""`hintwise tune` end to end on a store written by the real Writer, with the real bundled model:
paused by its time limit and resumed, an adapter trained, written as GGUF, judged on the held-out
quarter and installed or refused, and then loaded to serve a suggestion.

Tiny on purpose (8 of the store's examples and a few windows of a small repository's text,
a few steps): CI proves the loop works, bench/tune.py measures whether it helps. Needs the tune
extra (torch, transformers, PEFT).
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest
from conftest import ROOT, hintwise_command

from hintwise.lsp_server.tune import text_windows
from hintwise.lsp_server.tune.replay import repo_cases
from hintwise.lsp_server.tune.replay_files import split_files
from hintwise.models.files import adapters
from hintwise.telemetry import Event, Suggestion, Writer

pytestmark = [pytest.mark.tune, pytest.mark.model]
for _module in ("torch", "transformers", "peft"):
    pytest.importorskip(_module, reason='needs the tune extra (pip install -e ".[tune]")')

T0 = 1_790_000_000_000
ROWS = 44  # the held-out quarter is the newest 11


def write_store(path: Path) -> None:
    """Accepted suggestions that survived, and rejected ones with what the user wrote instead."""
    writer = Writer.start(path)
    for n in range(ROWS):
        sid, at = f"s{n:03}", T0 + n * 60_000
        prefix = f"import logging\n\n\ndef handler_{n}(event):\n    log = "
        kept = "logging.getLogger(__name__)"
        suggested = kept if n % 3 else "None"
        writer.record(
            Suggestion(
                id=sid,
                created_ms=at,
                language="python",
                prompt=prefix,
                prefix=prefix,
                suffix=f"\n    log.info(event)\n    return {n}\n",
                text=suggested,
            )
        )
        if suggested == kept:
            writer.record(Event(sid, "accepted", time_ms=at + 500))
            writer.record(
                Event(sid, "survival", time_ms=at + 30_500, check_after_s=30, similarity=1.0)
            )
        else:
            writer.record(Event(sid, "rejected", time_ms=at + 500, reason="explicit"))
            writer.record(Event(sid, "replacement", time_ms=at + 9_000, text=kept))
    assert writer.close()


def write_repo(root: Path) -> Path:
    """A small package of the user's own code, for `--from-repo`."""
    root.mkdir()
    for n, name in enumerate(("events", "handlers", "routes", "store", "views")):
        body = "".join(
            f"def {name}_{i}(event):\n    log.info(event)\n    return event.get({i + n})\n\n\n"
            for i in range(12)
        )
        (root / f"{name}.py").write_text(f"import logging\n\nlog = logging.getLogger()\n\n\n{body}")
    return root


def hintwise(env: dict[str, str], *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [*hintwise_command(), *args], env=env, capture_output=True, text=True, timeout=1200
    )


@pytest.mark.timeout(1800)  # minutes on a busy 2-core machine; about 4 on an idle one
def test_tune_pauses_resumes_trains_judges_and_the_adapter_serves(
    server_env: dict[str, str], gemma_path: Path, tmp_path: Path
) -> None:
    env = {**server_env, "HINTWISE_DATA_DIR": str(tmp_path), "HINTWISE_MODEL": str(gemma_path)}
    write_store(tmp_path / "telemetry.db")
    repo = write_repo(tmp_path / "repo")
    tune = ["tune", "--json", "--max-examples", "8", "--regression-size", "3"]
    tune += ["--from-repo", str(repo), "--holes-per-file", "1"]  # its text trains too
    windows = text_windows.mixed(split_files(repo)[0], repo, 8, text_windows.GENERAL_SHARE)
    held_holes = repo_cases(repo, per_file=1)[1]

    paused = hintwise(env, *tune, "--max-minutes", "0.01")
    assert paused.returncode == 3, paused.stderr
    assert "run the same `hintwise tune` command again" in json.loads(paused.stdout)["message"]

    done = hintwise(env, *tune, "--max-minutes", "30")
    assert done.returncode == 0, done.stderr[-3000:]
    outcome = json.loads(done.stdout)
    figures = outcome["figures"]
    assert figures["objective"] == "text" and len(windows) >= 3
    assert figures["examples"] == 8 + len(windows) and figures["training"]["steps"] >= 2
    general = sum(window.source == "general" for window in windows)
    assert figures["examples_by_source"] == {"store": 8, "text": len(windows) - general} | (
        {"general": general} if general else {}
    )
    assert figures["held_out"]["base"]["n"] == ROWS // 4 + len(held_holes)
    assert figures["regression"]["base"]["n"] == 3
    assert 0 < figures["adapter_bytes"] <= 8_000_000
    run = Path(outcome["run_dir"])
    report = json.loads((run / adapters.REPORT_FILE).read_text())
    assert report["decision"] == outcome["decision"] and report["installed"] == outcome["installed"]

    status = json.loads(hintwise(env, "tune", "--status", "--json").stdout)
    assert [r["run"] for r in status["runs"]] == [run.name]
    assert (status["installed"] is not None) == outcome["installed"]
    if not outcome["installed"]:  # refused: install it anyway to see the server load it
        adapters.install(tmp_path, gemma_path, run)

    served = hintwise(env, "complete", f"{ROOT / 'examples' / 'primes.py'}:15:13", "--json")
    assert served.returncode == 0, served.stderr[-3000:]
    answer = json.loads(served.stdout)
    assert answer["adapter"] == str(run / adapters.ADAPTER_FILE)
    assert answer["text"], answer["reason"]
