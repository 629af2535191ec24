"""The VS Code extension (editors/vscode) in a real VS Code: code-server 4.100.3 in headless
Chromium, driven by playwright-core (editors/vscode/test/ui.mjs).

The extension is built and packaged with `npx @vscode/vsce package`, installed into code-server
with `--install-extension`, and used like a user would: open examples/primes.py, type on the
blank line, see ghost text from the real server and model, Tab accepts it, save; Ctrl+Right
accepts a word of another suggestion, Escape dismisses a third; the feedback stats panel opens.
The file on disk and the feedback store are checked here. A screenshot of the ghost text is kept
in tests/artifacts/.

Needs node/npm, Chromium and code-server (editors/vscode/scripts/install-code-server.sh; .ci/run
installs them). Missing, the test skips, unless HINTWISE_REQUIRE_EDITORS=1 (CI), which fails it.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import ROOT, hintwise_command

VSCODE = ROOT / "editors" / "vscode"
UI_SCRIPT = VSCODE / "test" / "ui.mjs"
EXAMPLE = ROOT / "examples" / "primes.py"
ARTIFACTS = ROOT / "tests" / "artifacts"
CODE_SERVER = Path(
    os.environ.get("HINTWISE_CODE_SERVER", Path.home() / ".cache" / "hintwise" / "code-server")
)
CHROMIUM = Path(os.environ.get("HINTWISE_CHROMIUM", "/usr/bin/chromium"))
STEP_TIMEOUT_MS = 45_000
RUN_TIMEOUT_S = 400
NBSP = "\u00a0"


def _require(ok: bool, reason: str) -> None:
    if ok:
        return
    if os.environ.get("HINTWISE_REQUIRE_EDITORS") == "1":
        pytest.fail(f"HINTWISE_REQUIRE_EDITORS=1 but {reason}")
    pytest.skip(reason)


def _run(command: list[str], cwd: Path, timeout: int = 600) -> None:
    done = subprocess.run(command, cwd=cwd, capture_output=True, text=True, timeout=timeout)
    assert done.returncode == 0, f"{command} failed:\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}"


@pytest.fixture(scope="session")
def vsix(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The extension, built and packaged as CI does (once the editor to test it in is there)."""
    _require(shutil.which("npm") is not None, "npm not found (apt-get install npm)")
    _require(CHROMIUM.exists(), f"{CHROMIUM} not found (apt-get install chromium)")
    _require(
        (CODE_SERVER / "node_modules" / ".bin" / "code-server").exists(),
        f"code-server not installed in {CODE_SERVER} "
        "(editors/vscode/scripts/install-code-server.sh DIR)",
    )
    if not (VSCODE / "node_modules" / "@vscode" / "vsce").exists():
        _run(["npm", "ci", "--no-audit", "--no-fund"], VSCODE)
    out = tmp_path_factory.mktemp("vsix") / "hintwise.vsix"
    _run(["npm", "run", "build"], VSCODE)
    _run(
        [
            "npx",
            "@vscode/vsce",
            "package",
            "--no-dependencies",
            "--allow-missing-repository",
            "--skip-license",
            "-o",
            str(out),
        ],
        VSCODE,
    )
    return out


def _server_commands() -> set[str]:
    """The commands this server registers (review/explain arrive with issue 5)."""
    from hintwise.lsp_server.features import create_server

    return set(create_server().protocol.fm.commands)


def test_every_server_setting_is_contributed_to_vscode() -> None:
    from hintwise.lsp_server import config

    check = subprocess.run(
        [sys.executable, str(VSCODE / "scripts" / "contribute_settings.py"), "--check"],
        capture_output=True,
        text=True,
    )
    assert check.returncode == 0, check.stderr
    properties = json.loads((VSCODE / "package.json").read_text())["contributes"]["configuration"][
        "properties"
    ]
    for key, default in config.defaults().items():
        assert properties[f"hintwise.{key}"]["default"] == default, key
        assert properties[f"hintwise.{key}"]["markdownDescription"], key


def _events(store: Path) -> list[tuple]:
    with sqlite3.connect(store) as db:
        return db.execute(
            "SELECT suggestion_id, kind, reason, accepted_chars, value FROM events ORDER BY id"
        ).fetchall()


@pytest.mark.editor
@pytest.mark.timeout(RUN_TIMEOUT_S + 60)
def test_vscode_ghost_text_tab_word_escape_in_code_server(
    vsix: Path, tmp_path: Path, server_env: dict[str, str], gemma_path: Path
) -> None:
    workspace, home, shots, data = (tmp_path / name for name in ("ws", "home", "shots", "data"))
    for folder in (workspace, home, shots, data):
        folder.mkdir()
    source = workspace / "primes.py"
    source.write_text(EXAMPLE.read_text())
    (workspace / "trace.log").write_text(
        "Traceback (most recent call last):\n"
        f'  File "{source}", line 21, in primes_below\n'
        "    return [n for n in range(limit) if is_prime(n)]\n"
        "ZeroDivisionError: division by zero\n"
    )
    out = tmp_path / "observed.json"
    crash = tmp_path / "crashing-hintwise"
    crash.write_text("#!/bin/sh\necho 'hintwise: simulated crash' >&2\nexit 3\n")
    crash.chmod(0o755)
    # Two names for the bundled model file: one set in the user settings before the start, one
    # set while the server runs; the status bar shows which one the server loaded.
    first_model, second_model = tmp_path / "settings-model.gguf", tmp_path / "changed-model.gguf"
    first_model.symlink_to(gemma_path)
    second_model.symlink_to(gemma_path)
    commands = _server_commands()
    env = {
        **server_env,
        "HINTWISE_DATA_DIR": str(data),
        "HINTWISE_MODEL": str(gemma_path),
        "HWTEST_CODE_SERVER": str(CODE_SERVER),
        "HWTEST_VSIX": str(vsix),
        "HWTEST_HINTWISE": hintwise_command()[0],
        "HWTEST_WORKSPACE": str(workspace),
        "HWTEST_HOME": str(home),
        "HWTEST_OUT": str(out),
        "HWTEST_SHOTS": str(shots),
        "HWTEST_CHROMIUM": str(CHROMIUM),
        "HWTEST_STEP_TIMEOUT_MS": str(STEP_TIMEOUT_MS),
        # This test is about the editor, not latency (see tests/test_neovim.py).
        "HWTEST_SETTINGS": json.dumps(
            {"hintwise.completion.time_limit_ms": 10_000, "hintwise.model.path": str(first_model)}
        ),
        "HWTEST_MODEL_CHANGE": str(second_model),
        "HWTEST_CRASH_SCRIPT": str(crash),
        "HWTEST_EXPECT_REVIEW": "1" if "hintwise.review" in commands else "0",
        "HWTEST_EXPECT_EXPLAIN": "1" if "hintwise.explain" in commands else "0",
    }
    run = subprocess.run(
        ["node", str(UI_SCRIPT)],
        env=env,
        cwd=VSCODE,
        capture_output=True,
        text=True,
        timeout=RUN_TIMEOUT_S,
    )
    observed = json.loads(out.read_text()) if out.exists() else {}
    ARTIFACTS.mkdir(exist_ok=True)
    for shot in shots.glob("*.png"):
        shutil.copy(shot, ARTIFACTS / shot.name)
    diagnostics = (
        f"exit {run.returncode}\nstderr: {run.stderr[-3000:]}\n"
        f"observed: {json.dumps(observed, indent=1)[-6000:]}"
    )
    print(", ".join(f"{s['name']} {s['at_ms']} ms" for s in observed.get("steps", [])))

    assert run.returncode == 0 and observed.get("done") is True, diagnostics
    assert observed["install"]["status"] == 0, diagnostics
    # The user's settings reached the server at start (it loaded the model file they name) and
    # a change while it ran did too (it reloaded the other one).
    assert "settings-model.gguf · ready" in (observed["status_before"] or ""), diagnostics
    assert "changed-model.gguf · ready" in observed["model_change"]["status"], diagnostics

    # Ghost text from the real server; Tab put it into the document, which was saved.
    ghost = observed["ghost"]
    assert ghost["shown"] is True and ghost["text"].strip(), diagnostics
    suggestion = ghost["text"].replace(NBSP, " ")
    original = EXAMPLE.read_text().splitlines()[14]
    saved = source.read_text().splitlines()
    assert saved[14] == original + "r" + suggestion, diagnostics
    assert observed["ghost_after_tab"] == "", diagnostics
    assert (ARTIFACTS / "vscode-ghost-text.png").stat().st_size > 10_000

    # The status bar: model, state, latency, gate, today's acceptance.
    status = observed["status_after_accept"]
    assert re.search(r"model.gguf · ready · \d+ ms · gate (on|off) · [1-9]\d*% today", status), (
        status
    )

    # The store saw the acceptance, the word accepted with Ctrl+Right and the Escape.
    events = _events(data / "telemetry.db")
    accepted = [e for e in events if e[1] == "accepted"]
    assert accepted and accepted[0][3] == len(suggestion), events
    assert observed["word"]["shown"] and observed["dismiss"]["shown"], diagnostics
    partial = [e for e in events if e[1] == "partially_accepted"]
    assert partial and partial[0][3] > 0, events
    assert observed["word"]["after"] != observed["word"]["text"], diagnostics
    assert any(e[1:3] == ("rejected", "explicit") for e in events), events
    assert observed["dismiss"]["after"] == "", diagnostics

    assert observed["stats_panel"] is True, diagnostics

    # A server that crashes at once is restarted after 1 s, 2 s, 4 s; one that cannot be found
    # is reported with how to install it.
    delays = [
        int(re.search(r"in (\d+) s", line).group(1)) for line in observed["crash"]["restarts"]
    ]
    assert delays[:3] == [1, 2, 4], diagnostics
    assert "pip install hintwise" in (observed["missing"]["message"] or ""), diagnostics
    assert "not installed" in (observed["missing"]["status_any"] or ""), diagnostics
    problems = [
        n for n in observed["notifications"] if re.search(r"fail|error|not found", json.dumps(n))
    ]
    assert problems == [], diagnostics
    if "hintwise.review" in commands:
        review = observed["review"]
        assert review["message"] and "review done" in review["message"], diagnostics
        assert (review["markers"] > 0) == (review["comments"] > 0), diagnostics
    if "hintwise.explain" in commands:
        explain = observed["explain"]
        assert explain["panel"] is True and explain["clicked"] is True, diagnostics
        assert "helpful" in (explain["thanks"] or ""), diagnostics
        # The server recorded the rating (the stats command afterwards flushed the store).
        assert any(e[1] == "rated" and e[4] == 1.0 for e in events), events
        # A traceback selected in an editor is explained in the same panel.
        assert "ZeroDivisionError" in (observed["traceback"]["panel_text"] or ""), diagnostics
