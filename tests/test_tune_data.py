"""`hintwise tune`'s inputs and its install rule, without training: what the store says the user
kept (written by the real Writer), the held-out split, the regression file, and the decision."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from hintwise.lsp_server.tune import data
from hintwise.lsp_server.tune.cases import Answer, Case
from hintwise.lsp_server.tune.decide import decide, paired, wilson
from hintwise.telemetry import Event, Suggestion, Writer
from hintwise.telemetry.kept import KeptCounts, kept_rows

T0 = 1_790_000_000_000


def _suggestion(writer: Writer, sid: str, at: int, text: str, **kw) -> None:
    fields = dict(language="python", prefix=f"# {sid}\nx = ", suffix="\n", prompt=f"# {sid}")
    fields.update(kw)
    writer.record(Suggestion(id=sid, created_ms=at, text=text, **fields))  # type: ignore[arg-type]


def _event(writer: Writer, sid: str, kind: str, at: int, **kw) -> None:
    writer.record(Event(sid, kind, time_ms=at, **kw))


@pytest.fixture
def store(tmp_path: Path) -> Path:
    path = tmp_path / "telemetry.db"
    writer = Writer.start(path)
    _suggestion(writer, "acc", T0, "1")
    _event(writer, "acc", "accepted", T0 + 1)
    _event(writer, "acc", "survival", T0 + 2, check_after_s=30, similarity=1.0)
    _suggestion(writer, "deleted", T0 + 10, "2")  # accepted, then deleted: not kept
    _event(writer, "deleted", "accepted", T0 + 11)
    _event(writer, "deleted", "survival", T0 + 12, check_after_s=30, similarity=0.1)
    _suggestion(writer, "rep", T0 + 20, "3")
    _event(writer, "rep", "rejected", T0 + 21, reason="explicit")
    _event(writer, "rep", "replacement", T0 + 22, text="42")
    _suggestion(writer, "rej", T0 + 30, "4")  # rejected, nothing written instead
    _event(writer, "rej", "rejected", T0 + 31, reason="timeout")
    _suggestion(writer, "part", T0 + 40, "5 + 6")  # partial: where they stopped taking it
    _event(writer, "part", "partially_accepted", T0 + 41, accepted_chars=1)
    _suggestion(writer, "hashed", T0 + 50, "7", prefix="a" * 64)
    _event(writer, "hashed", "accepted", T0 + 51)
    _suggestion(writer, "review", T0 + 60, "8", kind="review")
    _event(writer, "review", "accepted", T0 + 61)
    assert writer.close()
    return path


def test_the_store_gives_what_the_user_kept_and_counts_the_rest(store: Path) -> None:
    counts = KeptCounts()
    rows = list(kept_rows(store, counts))
    assert [(row.id, row.kept, row.source) for row in rows] == [
        ("acc", "1", "accepted"),
        ("rep", "42", "replacement"),
    ]
    assert rows[1].suggested == "3" and rows[0].prefix == "# acc\nx = "
    assert counts.completions == 6  # the review comment is not a completion
    assert counts.not_stored == 1 and counts.no_answer == 3  # deleted, rej, part
    assert [row.id for row in kept_rows(store, since_ms=T0 + 15)] == ["rep"]


def test_too_little_data_says_how_much_more_is_needed(store: Path) -> None:
    stored = data.store_data(store)
    assert stored.rows == 2 < data.MIN_STORE_ROWS
    message = data.too_little(stored)
    assert f"{data.MIN_STORE_ROWS - 2} more" in message and "--from-repo" in message


def test_the_most_recent_quarter_is_held_out(tmp_path: Path) -> None:
    path = tmp_path / "telemetry.db"
    writer = Writer.start(path)
    for n in range(20):
        _suggestion(writer, f"s{n:02}", T0 + n, str(n))
        _event(writer, f"s{n:02}", "accepted", T0 + n)
    assert writer.close()
    stored = data.store_data(path)
    assert len(stored.train) == 15 and len(stored.held_out) == 5
    assert max(c.time_ms for c in stored.train) < min(c.time_ms for c in stored.held_out)
    case = stored.held_out[0]
    assert case.text[: case.offset].endswith("x = ") and case.expected == "15"


def test_regression_holes_are_posed_after_the_indentation(tmp_path: Path) -> None:
    path = tmp_path / "fim.jsonl"
    rows = [
        {"prompt": "def f(x):\n", "suffix": "    return y\n", "canonical_solution": "    y = x\n"},
        {"prompt": "a = 1\n", "suffix": "", "canonical_solution": "b = 2\nc = 3\n"},  # 2 lines
        {"prompt": "p\n", "suffix": "", "canonical_solution": "    q()\n"},
    ]
    path.write_text("".join(json.dumps(row) + "\n" for row in rows))
    cases = data.fim_cases(path, limit=5)
    assert [case.expected for case in cases] == ["y = x", "q()"]
    first = cases[0]
    assert first.text[: first.offset] == "def f(x):\n    "
    assert first.text[first.offset :] == "\n    return y\n"
    assert len(data.fim_cases(path, limit=1)) == 1


def _answer(suggestion: str, expected: str) -> Answer:
    return Answer(Case("", 0, "python", expected, "t:1"), suggestion, (1, 2), "")


def test_exact_and_characters_saved() -> None:
    assert _answer("a + b  ", "a + b").exact
    assert not _answer("", "").exact
    assert _answer("a + ", "a + b").chars_saved == 3
    assert _answer("a - b", "a + b").chars_saved == 2  # "a " before the wrong character
    example = _answer("x", "a + b").example()
    assert example is not None and example.target == "a + b" and example.prompt == (1, 2)


def test_install_only_when_clearly_better_and_not_clearly_worse() -> None:
    same = paired([True] * 50 + [False] * 50, [True] * 50 + [False] * 50)
    assert same.gain_points == 0 and not decide(same, None).install
    better = paired([False] * 100, [True] * 30 + [False] * 70)
    assert better.ci95[0] > 0 and decide(better, None).install
    worse = paired([True] * 100, [True] * 60 + [False] * 40)
    decision = decide(better, worse)
    assert not decision.install and "regression" in decision.reason
    noisy = paired([False] * 10, [True] * 1 + [False] * 9)
    assert not decide(noisy, None).install  # one row better of ten: not shown to be better
    assert not decide(paired([], []), None).install
    low, high = wilson(30, 100)
    assert low < 0.3 < high


def test_other_training_settings_keep_the_base_answers_other_data_does_not(
    tmp_path: Path,
) -> None:
    from hintwise.lsp_server.config import Settings
    from hintwise.lsp_server.tune.run import Options, Run, train_dir

    settings, base = Settings(data_dir=str(tmp_path / "data")), tmp_path / "base.gguf"
    base.write_bytes(b"GGUF" + b"\0" * 100)
    first = Run(settings, base, Options(repo="/src/a"))
    for name in ("answers-base-held.json", "answers-tuned-held.json", "cases.json"):
        (first.work / name).write_text("[]")
    (train_dir(settings.data_path, base) / "checkpoint").mkdir(parents=True)

    same = Run(settings, base, Options(repo="/src/a"))  # resumed: everything stays
    assert (same.work / "answers-tuned-held.json").exists()
    retrain = Run(settings, base, Options(repo="/src/a", train={"epochs": 3.0}))
    assert (retrain.work / "answers-base-held.json").exists()
    assert (retrain.work / "cases.json").exists()
    assert not (retrain.work / "answers-tuned-held.json").exists()
    assert not train_dir(settings.data_path, base).exists()
    (retrain.work / "answers-tuned-held.json").write_text("[]")
    text = Run(settings, base, Options(repo="/src/a", train={"epochs": 3.0}, objective="lines"))
    assert (text.work / "answers-base-held.json").exists()
    assert not (text.work / "answers-tuned-held.json").exists()
    other = Run(settings, base, Options(repo="/src/b", train={"epochs": 3.0}))
    assert not (other.work / "answers-base-held.json").exists()
