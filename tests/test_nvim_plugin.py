"""The Neovim plugin (editors/nvim) in a real headless Neovim, 0.7.2 and 0.11.4, with real keys.

`tests/nvim/plugin.lua` calls `require("hintwise").setup()`, lets the plugin start `hintwise
serve` (real model), then types: entering Insert mode on the blank line of examples/primes.py
shows ghost text (read back from the extmarks) and <Tab> accepts it; in a new function <M-Right>
accepts a word and <M-C-Right> a line; in another <C-]> dismisses. It runs :checkhealth hintwise,
:HintwiseStats and :HintwiseToggle, and, when the server has them, review-on-save and
:HintwiseExplain. The feedback store is read afterwards: every action reached the server.
"""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import pytest
from conftest import ROOT, hintwise_command
from test_neovim import EDITORS, _find_editor, _tail, run_headless

PLUGIN_LUA = Path(__file__).resolve().parent / "nvim" / "plugin.lua"
PLUGIN_DIR = ROOT / "editors" / "nvim"
EXAMPLE = ROOT / "examples" / "primes.py"
STEP_TIMEOUT_MS = 15_000
NVIM_TIMEOUT_S = 150
SETTINGS = {"completion": {"time_limit_ms": 10_000}}
MODEL_ALIAS = "nvim-settings-model.gguf"
"""setup({settings = {model = {path = ...}}}) names the model file by this name (a symlink to the
bundled one): the server reporting it shows that the plugin's settings reached it."""
"""A generous generation limit: this test is about the editor, not latency (see test_neovim)."""


def _run(
    binary: Path, tmp_path: Path, env: dict[str, str], settings: dict
) -> tuple[dict, str, int | None]:
    source = tmp_path / "primes.py"
    source.write_text(EXAMPLE.read_text())
    out = tmp_path / "observed.json"
    server_log = tmp_path / "server.log"
    xdg = tmp_path / "xdg"
    env = {
        **env,
        "HWTEST_PLUGIN_DIR": str(PLUGIN_DIR),
        "HWTEST_NVIM_CMD": json.dumps(
            [*hintwise_command(), "serve", "--log-file", str(server_log)]
        ),
        "HWTEST_NVIM_OUT": str(out),
        "HWTEST_NVIM_SETTINGS": json.dumps(settings),
        "HWTEST_NVIM_STEP_TIMEOUT_MS": str(STEP_TIMEOUT_MS),
        "NVIM_LOG_FILE": str(tmp_path / "nvim.log"),
        **{f"XDG_{kind}_HOME": str(xdg / kind.lower()) for kind in ("CONFIG", "DATA", "STATE")},
        "XDG_CACHE_HOME": str(xdg / "cache"),
    }
    _, returncode, _, stderr, _, elapsed = run_headless(
        binary, PLUGIN_LUA, source, env, tmp_path, NVIM_TIMEOUT_S
    )
    observed = json.loads(out.read_text()) if out.exists() else {}
    diagnostics = "\n".join(
        [
            f"exit code {returncode} after {elapsed:.1f} s",
            f"stderr: {stderr[-2000:]!r}",
            f"observed: {json.dumps(observed, indent=1)[-8000:]}",
            f"server log:\n{_tail(server_log)}",
        ]
    )
    return observed, diagnostics, returncode


def _events(store: Path) -> dict[str, list[tuple]]:
    with sqlite3.connect(store) as db:
        rows = db.execute(
            "SELECT suggestion_id, kind, reason, accepted_chars FROM events ORDER BY id"
        ).fetchall()
    found: dict[str, list[tuple]] = {}
    for suggestion_id, kind, reason, accepted in rows:
        found.setdefault(suggestion_id, []).append((kind, reason, accepted))
    return found


@pytest.mark.editor
@pytest.mark.timeout(NVIM_TIMEOUT_S + 30)
@pytest.mark.parametrize(("binary", "version", "install"), EDITORS)
def test_nvim_plugin_ghost_text_accept_dismiss_commands(
    binary: Path,
    version: str,
    install: str,
    tmp_path: Path,
    server_env: dict[str, str],
    gemma_path: Path,
) -> None:
    nvim = _find_editor(binary, install)
    data = tmp_path / "data"
    env = {**server_env, "HINTWISE_DATA_DIR": str(data), "HINTWISE_MODEL": str(gemma_path)}
    alias = tmp_path / MODEL_ALIAS
    alias.symlink_to(gemma_path)
    settings = {**SETTINGS, "model": {"path": str(alias)}}
    observed, diagnostics, returncode = _run(nvim, tmp_path, env, settings)
    print(", ".join(f"{s['name']} {s['at_ms']} ms" for s in observed.get("steps", [])))

    assert "lua_error" not in observed, diagnostics
    assert observed.get("done") is True, diagnostics
    assert returncode == 0, diagnostics
    assert observed["nvim_version"].startswith(version), diagnostics
    assert observed["attached"] is True, diagnostics
    assert observed["model_state"] == "ready", diagnostics
    assert observed["model"] == str(tmp_path / MODEL_ALIAS), diagnostics
    inline_pos = "inline" if version == "0.11." else "eol"

    # :checkhealth hintwise found the server, the loaded model and the store.
    health = "\n".join(observed["health"])
    assert "server found" in health, diagnostics
    assert "model loaded" in health, diagnostics
    assert "FIM support" in health, diagnostics
    assert str(data / "telemetry.db") in health, diagnostics

    # 1. Ghost text at the cursor, drawn as virtual text (inline on 0.10+, end of line on 0.7).
    first = observed["first"]
    assert first["mode"] == "i", diagnostics
    assert first["text"] and first["text"].strip(), diagnostics
    mark = first["marks"][0]
    assert (mark["row"], mark["col"]) == (14, 12), diagnostics
    assert mark["virt_text_pos"] == inline_pos, diagnostics
    assert mark["virt_text"][0][0] == first["text"].split("\n")[0], diagnostics
    # <Tab> inserted it at the cursor, cleared the marks and ran the accept command.
    expected = (first["line_before"] + first["text"]).split("\n")
    assert first["lines_after"][14 : 14 + len(expected)] == expected, diagnostics
    assert first["marks_after"] == [], diagnostics
    assert first["accept"]["result"] == {"accepted": True, "id": first["id"]}, diagnostics

    # 2. Accept word took a leading part and left the rest on screen.
    second = observed["second"]
    assert second["text"], diagnostics
    word = second["after_word"]
    taken = word["line"][len(word["before"]) :]
    assert taken and second["text"].startswith(taken), diagnostics
    assert len(taken) < len(second["text"]), diagnostics
    assert word["remaining"] == second["text"][len(taken) :], diagnostics
    assert word["marks"], diagnostics

    # The debounce follows the gate's last score (Copilot's curve), the midpoint without one.
    curve = observed["debounce_curve"]
    assert curve["likely"] < 30 and curve["unlikely"] > 270 and curve["unknown"] == 150, curve
    gate = second.get("gate")
    expected_delay = 150 if gate is None else round(25 + 250 / (1 + (gate / 0.275) ** 6))
    assert abs(second["debounce_ms"] - expected_delay) <= 1, (gate, second["debounce_ms"])

    # 3. Dismiss: the marks went away and the buffer stayed as it was.
    third = observed["third"]
    assert third["id"] and third["text"], diagnostics
    # Next/previous kept a suggestion on screen and came back to the first one.
    assert third["cycled"]["items"] >= 1, diagnostics
    assert third["back"] == {"index": 1, "visible": True}, diagnostics
    assert third["marks_after"] == [] and third["unchanged"] is True, diagnostics

    # The server recorded each action against the right suggestion.
    events = _events(data / "telemetry.db")
    assert ("accepted", None, len(first["text"])) in events[first["id"]], events
    partial = [e for e in events[second["id"]] if e[0] == "partially_accepted"]
    assert partial and partial[0][2] == len(taken), events
    assert ("rejected", "explicit", None) in events[third["id"]], events

    # :HintwiseStats opened a float with the store's figures; :HintwiseToggle flipped.
    stats = observed["stats"]
    assert stats["reply"]["result"]["today"]["accepted"] >= 1, diagnostics
    assert any(line.startswith("Completions:") for line in stats["float_lines"]), diagnostics
    assert stats["float_is_floating"] is True and stats["closed"] is True, diagnostics
    assert Path(stats["reply"]["result"]["chart"]).is_file(), diagnostics
    assert observed["toggled_off"] is True, diagnostics
    assert observed["shutdown"]["exited"] is True, diagnostics

    # No error was shown to the user.
    errors = [m for m in observed["messages"] if m.get("level", 0) >= 4]
    assert errors == [], diagnostics

    if "hintwise.review" in observed["commands"]:
        # Saving made the server review and publish; :HintwiseReview published as many review
        # diagnostics as it reported comments (the bundled 270M model often has none to give).
        review = observed["review"]
        assert review["on_save"] is not None, diagnostics
        assert len(review["after_save"]) == review["on_save"], diagnostics
        comments = review["command"]["result"]["comments"]
        assert review["published"] == comments == len(review["diagnostics"]), diagnostics
    if "hintwise.explain" in observed["commands"]:
        explain = observed["explain"]
        assert explain["reply"]["result"]["markdown"].strip(), diagnostics
        assert explain["title"] == "hintwise explanation", diagnostics
        assert explain["float_lines"] and any(line.strip() for line in explain["float_lines"])
        assert explain["rated"].get("err") is None and explain["rated"]["result"], diagnostics
    if "hintwise.explainTraceback" in observed["commands"]:
        traceback = observed["traceback"]
        assert traceback["reply"].get("err") is None, diagnostics
        assert traceback["reply"]["result"]["markdown"].strip(), diagnostics
        assert any("TypeError" in line for line in traceback["float_lines"]), diagnostics
