"""`hintwise tune --status | --revert` and its errors, through the real command (no training)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from hintwise.lsp_server.cli import main
from hintwise.models.files import adapters


@pytest.fixture
def env(tmp_path: Path) -> dict[str, str]:
    base = tmp_path / "base.gguf"
    base.write_bytes(b"GGUF" + b"\0" * 4096)
    return {"HINTWISE_DATA_DIR": str(tmp_path / "data"), "HINTWISE_MODEL": str(base)}


def _tune(env: dict[str, str], *args: str) -> tuple[int, str]:
    result = CliRunner().invoke(main, ["tune", *args], env=env)
    return result.exit_code, result.output


def _installed_run(env: dict[str, str], name: str, decision: str) -> Path:
    data, base = Path(env["HINTWISE_DATA_DIR"]), Path(env["HINTWISE_MODEL"])
    run = adapters.model_dir(data, base) / "runs" / name
    run.mkdir(parents=True)
    (run / adapters.ADAPTER_FILE).write_bytes(b"x" * 2000)
    (run / adapters.REPORT_FILE).write_text(json.dumps({"decision": decision}))
    adapters.install(data, base, run)
    return run


def test_status_and_revert_walk_back_through_the_installed_adapters(env) -> None:
    code, out = _tune(env, "--status")
    assert code == 0 and "none installed" in out
    _installed_run(env, "r1", "better on your held-out data: +9.0 points")
    _installed_run(env, "r2", "better again")
    code, out = _tune(env, "--status", "--json")
    status = json.loads(out)
    assert status["installed"]["run"] == "r2" and len(status["runs"]) == 2
    assert status["installed"]["report"]["decision"] == "better again"
    code, out = _tune(env, "--revert")
    assert code == 0 and "now using r1" in out
    code, out = _tune(env, "--revert")
    assert "completions use the base model" in out
    code, out = _tune(env, "--revert")
    assert code == 0 and "nothing to revert" in out


def test_a_bad_date_or_a_missing_model_is_a_clear_error(env, tmp_path: Path) -> None:
    code, out = _tune(env, "--since", "yesterday")
    assert code == 2 and "not a date" in out
    missing = dict(env, HINTWISE_MODEL=str(tmp_path / "gone.gguf"))
    code, out = _tune(missing, "--status")
    assert code == 1 and "does not exist" in out
    code, out = _tune(env, "--objective", "text")
    assert code == 2 and "add --from-repo" in out
    code, out = _tune(env, "--general-share", "0.3")
    assert code == 2 and "add --from-repo" in out


def test_without_the_tune_extra_the_install_command_is_said_before_any_work(
    env, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    import sys

    monkeypatch.setitem(sys.modules, "torch", None)  # as without `pip install "hintwise[tune]"`
    code, out = _tune(env, "--from-repo", str(tmp_path))
    assert code == 1 and 'pip install "hintwise[tune]"' in out and "Traceback" not in out
    code, out = _tune(env, "--status")
    assert "unfinished" not in out  # nothing was started
