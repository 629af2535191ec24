"""A tiny repository replayed through the real completion pipeline and the real bundled model:
rows the test knows the answer to are counted right, and each row carries what the adapter and
the gate train on (the prompt's token ids, the gate's features)."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from hintwise.lsp_server.config import GateSettings, Settings
from hintwise.lsp_server.tune.replay import Hole, examples, holes, replay, split_files, summary
from hintwise.models.llama.engine import LlamaEngine
from hintwise.models.worker import ModelWorker

pytestmark = pytest.mark.model

# A numbered sequence (the model surely writes its seventh line) and a random token it cannot
# guess. (A line equal to the one above would not do: the pipeline drops such a suggestion.)
TABLE = """import os

STEP_1 = 1
STEP_2 = 2
STEP_3 = 3
STEP_4 = 4
STEP_5 = 5
STEP_6 = 6
STEP_7 = 7
STEP_8 = 8
TOKEN = "q8Zt4vW0kLx2"
"""
HELPERS = '''def add(a: int, b: int) -> int:
    """Return a + b."""
    return a + b


def scale(values: list[float], factor: float) -> list[float]:
    return [value * factor for value in values]
'''


@pytest.fixture(scope="module")
def worker(gemma_path):
    started = ModelWorker(lambda: LlamaEngine(gemma_path, name="gemma3-270m")).start()
    assert started.wait_ready(60)
    yield started
    started.stop()


def test_a_repeated_line_is_exact_and_a_random_token_is_not(worker, tmp_path):
    path = tmp_path / "table.py"
    path.write_text(TABLE)
    known = [
        Hole(path, 8, 0, "STEP_7 = 7", "line"),
        Hole(path, 10, 8, '"q8Zt4vW0kLx2"', "rest"),
    ]
    settings = Settings(data_dir=str(tmp_path / "data"))
    seen = []
    rows = replay(worker, known, settings, progress=lambda done, total: seen.append((done, total)))
    assert seen == [(1, 2), (2, 2)]
    repeated, token = rows
    assert repeated.exact and repeated.chars_saved == len(repeated.hole.hidden), repeated
    assert not token.exact and token.chars_saved < len(token.hole.hidden)
    report = summary(rows)
    assert (report["n"], report["exact"]) == (2, 1)
    for row in rows:
        assert len(row.prompt) > 20  # the engine's token ids for this request
        assert set(row.gate) >= {"version", "pre"} and row.scores.get("pre") is not None
    assert "post" in repeated.gate and "post" in repeated.scores  # a suggestion was scored
    made = examples(rows)
    assert made[0].target.endswith("STEP_7 = 7")
    assert made[0].prompt == repeated.prompt and made[0].source == "replay"


def test_a_small_repository_replays_end_to_end(worker, tmp_path):
    repo = tmp_path / "repo"
    (repo / "pkg").mkdir(parents=True)
    (repo / "pkg" / "table.py").write_text(TABLE)
    (repo / "pkg" / "helpers.py").write_text(HELPERS)
    (repo / ".venv").mkdir()
    (repo / ".venv" / "skipped.py").write_text(HELPERS)
    train, held = split_files(repo)
    assert len(train) == 1 and len(held) == 1
    found = holes(train + held, per_file=2, seed=0, root=repo)
    # The user turned the gate off: a replay still records its scores (it retrains on them).
    settings = Settings(data_dir=str(tmp_path / "data"), gate=GateSettings(enabled=False))
    rows = replay(worker, found, settings, automatic=True)
    assert [row.hole for row in rows] == found and len(rows) == 4
    assert all(row.prompt for row in rows)
    assert all("pre" in row.scores for row in rows if row.suggestion)
    assert all(row.exact == (row.suggestion.rstrip() == row.hole.hidden.rstrip()) for row in rows)
    assert summary(rows)["files"] == 2
    assert not Path(tmp_path / "data" / "gate").exists()  # replaying never installs a gate


def test_training_prompts_are_built_as_the_answers_prompts_without_answering(worker, tmp_path):
    """`hintwise tune` trains on prompts built without generation (cases.prompts); they must be
    the very token ids the server's pipeline builds when it answers (cases.ask)."""
    from hintwise.lsp_server.tune.cases import Case, ask, prompts

    settings = Settings(data_dir=str(tmp_path / "data"))
    lines = TABLE.splitlines(keepends=True)
    cut = sum(map(len, lines[:8]))
    table = TABLE[:cut] + TABLE[cut + len("STEP_7 = 7") :]
    body = HELPERS.index("a + b\n\n")
    asked_cases = [
        Case(table, cut, "python", "STEP_7 = 7", "repo:t:8"),
        Case(HELPERS[:body] + HELPERS[body + 5 :], body, "python", "a + b", "repo:h:3"),
        Case("", 0, "python", "x", "repo:empty:0"),
    ]
    answered = ask(worker, asked_cases, settings)
    built = prompts(worker, asked_cases, settings)
    assert [a.prompt for a in built[:2]] == [a.prompt for a in answered[:2]]
    assert [a.healed for a in built[:2]] == [a.healed for a in answered[:2]]
    assert all(len(a.prompt) > 10 and a.suggestion == "" for a in built[:2])
    assert built[0].example() is not None and built[0].example().target.endswith("STEP_7 = 7")
    assert built[2].prompt == answered[2].prompt


def test_text_windows_become_examples_whose_prompt_is_bos_and_the_code_before(worker, tmp_path):
    """`--objective text` trains on the files' text: each example's prompt is what the server
    would send before that code ([BOS] and the text, tokenized by the model it runs)."""
    from hintwise.lsp_server.tune.text_windows import examples, file_windows

    (tmp_path / "helpers.py").write_text(HELPERS * 6)
    found = file_windows(tmp_path / "helpers.py", tmp_path)
    built = examples(worker, found)
    assert len(built) == len(found) > 1
    vocab = worker.engine.vocab
    for window, example in zip(found, built, strict=True):
        assert example.target == window.target and example.source == "text"
        assert list(example.prompt[:1]) == vocab.bos_tokens()
        text = vocab.llm.detokenize(list(example.prompt[1:])).decode()
        assert text == window.before


def test_a_text_run_trains_on_the_store_as_lines_and_on_the_repository_as_text(
    gemma_path, tmp_path
):
    from hintwise.lsp_server.config import apply
    from hintwise.lsp_server.tune import text_windows
    from hintwise.lsp_server.tune.cases import Case
    from hintwise.lsp_server.tune.run import Options, Run, training_examples

    repo = tmp_path / "repo"
    repo.mkdir()
    for name in ("a.py", "b.py", "c.py", "d.py", "e.py"):
        (repo / name).write_text(HELPERS * 8)
    settings, _ = apply(Settings(data_dir=str(tmp_path / "data")), {"model.path": str(gemma_path)})
    options = Options(repo=str(repo), objective="text", max_train=5)
    run = Run(settings, gemma_path, options)
    stored = Case("import os\nx = ", 14, "python", "os.getcwd()", "store:s1")
    replayed = Case("def f():\n    ", 13, "python", "return 1", "repo:a.py:2")
    found = training_examples(run, [stored, replayed])
    # a fifth of the windows are the standard library's (text_windows.GENERAL_SHARE)
    assert [e.source for e in found] == ["store", "text", "text", "text", "text", "general"]
    # (token healing gives the prompt's last space back to the target)
    assert found[0].target.endswith("os.getcwd()") and found[1].target.startswith("def add")
    assert {e.target_tokens for e in found[1:]} == {text_windows.TARGET_TOKENS}
    assert found[0].target_tokens == 0  # a line keeps the default third
    assert (run.work / "text-train.json").exists()
    assert training_examples(run, [stored, replayed])[1:] == found[1:]  # read back, same ids
    alone = Run(settings, gemma_path, dataclasses.replace(options, general=0.0))
    assert (alone.work / "text-train.json").exists() is False  # other windows: built again
    assert [e.source for e in training_examples(alone, [stored, replayed])[1:]] == ["text"] * 5
    lines = Run(settings, gemma_path, Options(repo=str(repo), max_train=5, objective="lines"))
    both = training_examples(lines, [stored, replayed])
    assert [e.source for e in both] == ["store", "repo"] and both[1].target.endswith("return 1")
