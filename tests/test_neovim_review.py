"""A real Neovim (0.7 and 0.11, headless) saves a file, gets hintwise's review comments as
diagnostics, applies a fix through a code action and gets an explanation as a message."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from conftest import hintwise_command
from test_neovim import EDITORS, _find_editor, run_headless
from test_review_e2e import BUGGY

SCRIPT = Path(__file__).resolve().parent / "nvim" / "review.lua"
# name_length and largest: the two functions of the end-to-end test with a seeded defect each.
SOURCE = BUGGY.split("\n\n\ndef mean")[0] + "\n"


@pytest.mark.editor
@pytest.mark.model
@pytest.mark.timeout(300)
@pytest.mark.parametrize(("binary", "version", "install"), EDITORS)
def test_neovim_review_on_save_apply_fix_and_explain(
    binary: Path, version: str, install: str, tmp_path: Path, server_env: dict[str, str]
) -> None:
    nvim = _find_editor(binary, install)
    source = tmp_path / "numbers.py"
    source.write_text(SOURCE)
    out = tmp_path / "observed.json"
    env = {
        **server_env,
        "HWTEST_NVIM_CMD": json.dumps([*hintwise_command(), "serve"]),
        "HWTEST_NVIM_OUT": str(out),
        "HOME": str(tmp_path),
        **{
            f"XDG_{kind}_HOME": str(tmp_path / "xdg" / kind)
            for kind in ("CONFIG", "DATA", "STATE", "CACHE")
        },
    }
    run_headless(nvim, SCRIPT, source, env, tmp_path, 240)
    observed = json.loads(out.read_text()) if out.exists() else {}
    assert observed.get("done"), observed
    assert "lua_error" not in observed, observed
    hintwise = [d for d in observed["diagnostics"] if d["source"] == "hintwise"]
    # The seeded defects are on lines 1 (name_length) and 7 (largest). llama.cpp's numerics
    # differ across CPUs and thread counts; name_length's `is` for `is not` is far past the
    # review's margin, largest's `<` is not: what holds everywhere with a wide margin is that
    # line 1 is flagged and nothing outside the two defects is.
    flagged = {d["lnum"] for d in hintwise}
    assert 1 in flagged and flagged <= {1, 7}, observed
    assert observed["has_lsp_diagnostic"], observed
    assert {"Apply fix", "Dismiss", "Explain in detail"} <= set(observed["actions"]), observed
    assert observed["apply"]["result"]["applied"] is True, observed
    # The fix and the lines around it, for whichever of the flagged lines the script acted on.
    fixed = {1: "    if user is not None:", 7: "        if v > best:"}
    line = observed["fixed_line"]
    assert observed["lines_after_fix"][line] == fixed[line], observed
    unchanged = SOURCE.split("\n")
    assert [t for i, t in enumerate(observed["lines_after_fix"]) if i != line] == [
        t for i, t in enumerate(unchanged[: len(observed["lines_after_fix"])]) if i != line
    ]
    assert observed["explain"]["result"]["markdown"].startswith(
        "**name_length(None) raised AttributeError**"
    )
    # Shown by the server: a markdown document where the client supports showDocument (0.11),
    # else a message (0.7).
    answer = observed["explain"]["result"]
    opened = [name for name in observed["buffers"] if name.endswith(f"{answer['id']}.md")]
    if version == "0.11.":
        assert opened, observed
        assert Path(opened[0]).read_text() == answer["markdown"]
    else:
        assert observed["messages"][-1] == answer["markdown"], observed
