"""`hintwise feedback export`: DPO pairs, KTO labels, filters, skipped rows, and streaming."""

from __future__ import annotations

import io
import json
import sqlite3
import tracemalloc
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest

from hintwise.telemetry import Event, Privacy, Suggestion, Writer, open_db
from hintwise.telemetry.export import (
    DUPLICATE,
    EMPTY,
    NO_SURVIVAL,
    NOT_STORED,
    SAME_TEXT,
    export,
    export_detailed,
)
from hintwise.telemetry.store import to_epoch_ms

T0 = to_epoch_ms(datetime(2026, 11, 2, 9, 0))

# Prompts as the server builds them: the code before the cursor, exactly.
ADD = "def add(a, b):\n    "
ADD_SPACE = "def add(a, b):\n     "  # one more space: a different prompt
GREET = 'def greet(name):\n    return f"Hello, '
MAIN = "if __name__ == "
SQUARE = "def square(x):\n    return "
LOOP = "for item in items:\n    "
CLOSE = "with open(path) as f:\n    data = f."


class Store:
    """Writes suggestions and their outcomes through the real Writer."""

    def __init__(self, path: Path, privacy: Privacy | None = None) -> None:
        self.writer = Writer.start(path, privacy=privacy)
        self.clock = T0

    def add(self, id: str, prompt: str, text: str, *outcomes: Event, **columns: Any) -> None:
        self.clock += 60_000
        at = columns.pop("created_ms", self.clock)
        columns.setdefault("language", "python")
        self.writer.record(Suggestion(id=id, created_ms=at, prompt=prompt, text=text, **columns))
        self.writer.record(Event(suggestion_id=id, kind="shown", time_ms=at + 50))
        for offset, event in enumerate(outcomes, start=1):
            event.suggestion_id = id
            event.time_ms = at + 1000 * offset
            self.writer.record(event)

    def close(self) -> None:
        assert self.writer.close()
        stats = self.writer.stats()
        assert stats.written == stats.enqueued and stats.invalid == 0


def accepted() -> Event:
    return Event(suggestion_id="", kind="accepted")


def rejected(reason: str = "explicit") -> Event:
    return Event(suggestion_id="", kind="rejected", reason=reason)


def partial(chars: int) -> Event:
    return Event(suggestion_id="", kind="partially_accepted", accepted_chars=chars)


def kept(after_s: int, similarity: float) -> Event:
    return Event(suggestion_id="", kind="survival", check_after_s=after_s, similarity=similarity)


def replaced(text: str) -> Event:
    return Event(suggestion_id="", kind="replacement", text=text)


@pytest.fixture
def store(tmp_path: Path) -> Path:
    path = tmp_path / "telemetry.db"
    s = Store(path)
    # ADD: one accepted, two rejected → two pairs, each text used once at least.
    s.add("a1", ADD, "return a + b", accepted(), kept(30, 1.0), kept(300, 0.95))
    s.add("a2", ADD, "return a - b", rejected())
    s.add("a3", ADD, "pass", rejected("timeout"))
    # The same words after one more space: not the same prompt, never paired with ADD.
    s.add("a4", ADD_SPACE, "return b", rejected())
    # GREET: the user's own text after rejecting; a replacement equal to the suggestion is none.
    s.add("g1", GREET, '{name}"', rejected("superseded"), replaced('{name}!"'))
    s.add("g2", GREET, 'world"', rejected("diverged"), replaced('world"'))
    # MAIN: accepted but later mostly deleted (latest check 0.3); and one never checked.
    s.add("m1", MAIN, '"__main__":', accepted(), kept(30, 0.95), kept(300, 0.3))
    s.add("m2", MAIN, '"main":', rejected())
    # SQUARE: survived 0.6 (above KTO's default 0.5).
    s.add("q1", SQUARE, "x * x", accepted(), kept(30, 0.6))
    s.add("q2", SQUARE, "x ** 3", rejected())
    # LOOP: partial acceptance is a KTO row (its prefix), not a DPO answer.
    s.add("l1", LOOP, "print(item)\n    total += 1", partial(11))
    s.add("l2", LOOP, "pass", rejected())
    # CLOSE: the same text accepted once and rejected once: not a pair.
    s.add("c1", CLOSE, "read()", accepted())
    s.add("c2", CLOSE, "read()", rejected())
    # No outcome yet: in no training file.
    s.add("n1", ADD, "return 0")
    # Another language.
    s.add("j1", ADD, "return a + b;", rejected(), replaced("return a + b"), language="javascript")
    s.close()
    return path


def read(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


def dpo(store: Path, tmp_path: Path, **options: Any) -> list[tuple[str, str, str]]:
    out = tmp_path / "dpo.jsonl"
    written = export(store, "dpo", out, **options)
    rows = read(out)
    assert written == len(rows)
    assert all(set(row) == {"prompt", "chosen", "rejected"} for row in rows)
    return sorted((row["prompt"], row["chosen"], row["rejected"]) for row in rows)


def kto(store: Path, tmp_path: Path, **options: Any) -> list[tuple[str, str, bool]]:
    out = tmp_path / "kto.jsonl"
    written = export(store, "kto", out, **options)
    rows = read(out)
    assert written == len(rows)
    assert all(set(row) == {"prompt", "completion", "label"} for row in rows)
    return [(row["prompt"], row["completion"], row["label"]) for row in rows]


def test_dpo_pairs(store: Path, tmp_path: Path) -> None:
    assert dpo(store, tmp_path) == sorted(
        [
            (ADD, "return a + b", "return a - b"),
            (ADD, "return a + b", "pass"),
            (ADD, "return a + b", "return a + b;"),  # javascript: the user's own text
            (GREET, '{name}!"', '{name}"'),
            (MAIN, '"__main__":', '"main":'),
            (SQUARE, "x * x", "x ** 3"),
        ]
    )


def test_dpo_skips_and_says_why(store: Path, tmp_path: Path) -> None:
    result = export_detailed(store, "dpo", tmp_path / "dpo.jsonl")
    assert result.written == 6
    # g2's replacement is its own text; c2's text was also accepted at that prompt; j1 gives
    # ("return a + b", "return a + b;") twice: replaced by a1's text, and rejected where a1 was
    # accepted.
    assert result.reasons == {SAME_TEXT: 2, DUPLICATE: 1}
    assert result.skipped == 3


def test_dpo_min_survival(store: Path, tmp_path: Path) -> None:
    """With min_survival, an accepted text is chosen only if its latest check shows it kept."""
    pairs = dpo(store, tmp_path, min_survival=0.5)
    assert (MAIN, '"__main__":', '"main":') not in pairs  # latest check 0.3 (first was 0.95)
    assert (SQUARE, "x * x", "x ** 3") in pairs  # 0.6
    assert (ADD, "return a + b", "pass") in pairs  # 0.95
    result = export_detailed(store, "dpo", tmp_path / "d.jsonl", min_survival=0.7)
    assert result.written == 4  # ADD x2, ADD javascript replacement, GREET
    # m1 (0.3), q1 (0.6) and c1 (never checked) are not proven to have survived.
    assert result.reasons[NO_SURVIVAL] == 3


def test_dpo_language_and_since(store: Path, tmp_path: Path) -> None:
    assert dpo(store, tmp_path, language="javascript") == [(ADD, "return a + b", "return a + b;")]
    # From the first MAIN suggestion on: ADD's and GREET's suggestions are older.
    since = T0 + 7 * 60_000
    assert dpo(store, tmp_path, since_ms=since) == sorted(
        [
            (ADD, "return a + b", "return a + b;"),
            (MAIN, '"__main__":', '"main":'),
            (SQUARE, "x * x", "x ** 3"),
        ]
    )


def test_kto_labels(store: Path, tmp_path: Path) -> None:
    rows = kto(store, tmp_path)
    assert [row[1:] for row in rows] == [
        ("return a + b", True),  # accepted, latest survival 0.95
        ("return a - b", False),
        ("pass", False),
        ("return b", False),
        ('{name}"', False),
        ('world"', False),
        ('"__main__":', False),  # accepted, then 70 % of it deleted
        ('"main":', False),
        ("x * x", True),  # survival 0.6 ≥ 0.5
        ("x ** 3", False),
        ("print(item)", True),  # the 11 characters accepted
        ("pass", False),
        ("read()", True),  # accepted, no survival check yet
        ("read()", False),
        ("return a + b;", False),
    ]
    assert rows[0][0] == ADD and rows[10][0] == LOOP  # the exact prompts


def test_kto_min_survival(store: Path, tmp_path: Path) -> None:
    labels = {row[1]: row[2] for row in kto(store, tmp_path, min_survival=0.8)}
    assert labels["x * x"] is False  # 0.6 < 0.8
    assert labels["return a + b"] is True
    labels = {row[1]: row[2] for row in kto(store, tmp_path, min_survival=0.2)}
    assert labels['"__main__":'] is True  # 0.3 ≥ 0.2


def test_kto_filters(store: Path, tmp_path: Path) -> None:
    assert kto(store, tmp_path, language="javascript") == [(ADD, "return a + b;", False)]
    assert kto(store, tmp_path, language="rust") == []
    since = T0 + 13 * 60_000  # from c1 on
    assert [row[1:] for row in kto(store, tmp_path, since_ms=since)] == [
        ("read()", True),
        ("read()", False),
        ("return a + b;", False),
    ]


def test_code_not_stored_is_skipped_and_counted(tmp_path: Path) -> None:
    path = tmp_path / "t.db"
    full = Store(path)
    full.add("f1", ADD, "return a + b", accepted())
    full.add("f2", ADD, "return a * b", rejected())
    full.close()
    for store_code in ("hashed", "none"):
        other = Store(path, Privacy(store_code))
        other.add(f"{store_code}1", ADD, "return a + b", accepted())
        other.add(f"{store_code}2", ADD, "return a * b", rejected(), replaced("return b"))
        other.close()
    result = export_detailed(path, "kto", tmp_path / "kto.jsonl")
    assert result.written == 2 and result.reasons == {NOT_STORED: 4}
    result = export_detailed(path, "dpo", tmp_path / "dpo.jsonl")
    assert read(tmp_path / "dpo.jsonl") == [
        {"prompt": ADD, "chosen": "return a + b", "rejected": "return a * b"}
    ]
    assert result.reasons == {NOT_STORED: 4}
    # For inspection, the events export shows every suggestion as stored.
    events = read_events(path, tmp_path)
    assert len(events) == 6
    hashed = next(row for row in events if row["id"] == "hashed1")
    assert len(hashed["prompt"]) == 64 and hashed["prompt"] != ADD
    assert next(row for row in events if row["id"] == "none1")["prompt"] is None


def test_replacement_stored_hashed_is_not_a_pair(tmp_path: Path) -> None:
    """Suggestion text stored in full but replacement hashed cannot happen with one setting; a
    store written under two settings can mix them, and the pair must not carry a hash."""
    path = tmp_path / "t.db"
    s = Store(path)
    s.add("x1", ADD, "return 1", rejected())
    s.close()
    other = Writer.start(path, privacy=Privacy("hashed"))
    other.record(Event(suggestion_id="x1", kind="replacement", text="return 2", time_ms=T0 * 2))
    assert other.close()
    result = export_detailed(path, "dpo", tmp_path / "dpo.jsonl")
    assert result.written == 0 and result.reasons == {NOT_STORED: 1}


def test_empty_texts_are_skipped(tmp_path: Path) -> None:
    path = tmp_path / "t.db"
    s = Store(path)
    s.add("e1", ADD, "   ", rejected())
    s.add("e2", LOOP, "pass", rejected(), replaced("\n"))
    s.add("e3", SQUARE, "  x", partial(2))
    s.close()
    result = export_detailed(path, "kto", tmp_path / "kto.jsonl")
    assert read(tmp_path / "kto.jsonl") == [{"prompt": LOOP, "completion": "pass", "label": False}]
    assert result.reasons == {EMPTY: 2}
    result = export_detailed(path, "dpo", tmp_path / "dpo.jsonl")
    assert result.written == 0 and result.reasons == {EMPTY: 1}


def read_events(path: Path, tmp_path: Path, **options: Any) -> list[dict[str, Any]]:
    out = tmp_path / "events.jsonl"
    written = export(path, "events", out, **options)
    rows = read(out)
    assert written == len(rows)
    return rows


def test_events_export(store: Path, tmp_path: Path) -> None:
    rows = read_events(store, tmp_path)
    assert len(rows) == 16  # every suggestion, with or without an outcome
    first = rows[0]
    assert first["id"] == "a1" and first["prompt"] == ADD and first["language"] == "python"
    assert [event["kind"] for event in first["events"]] == [
        "shown",
        "accepted",
        "survival",
        "survival",
    ]
    assert first["events"][3] == {
        "kind": "survival",
        "time": first["events"][3]["time"],
        "time_ms": T0 + 60_000 + 3000,
        "check_after_s": 300,
        "similarity": 0.95,
    }
    no_outcome = next(row for row in rows if row["id"] == "n1")
    assert [event["kind"] for event in no_outcome["events"]] == ["shown"]
    javascript = read_events(store, tmp_path, language="javascript")
    assert [row["id"] for row in javascript] == ["j1"]
    assert javascript[0]["events"][-1] == {
        **javascript[0]["events"][-1],
        "kind": "replacement",
        "text": "return a + b",
    }


def test_json_columns_are_decoded(tmp_path: Path) -> None:
    path = tmp_path / "t.db"
    s = Store(path)
    s.add("s1", ADD, "return a", accepted(), scores={"pre": 0.4}, token_logprobs=[-0.1, -0.2])
    s.close()
    (row,) = read_events(path, tmp_path)
    assert row["scores"] == {"pre": 0.4} and row["token_logprobs"] == [-0.1, -0.2]


def test_output_to_a_stream_and_errors(store: Path, tmp_path: Path) -> None:
    stream = io.StringIO()
    assert export(store, "kto", stream) == 15
    assert len(stream.getvalue().splitlines()) == 15
    with pytest.raises(ValueError, match="unknown export format"):
        export(store, "csv", tmp_path / "x.jsonl")
    with pytest.raises(ValueError, match="min_survival"):
        export(store, "kto", tmp_path / "x.jsonl", min_survival=1.5)
    assert not list(tmp_path.glob("*.jsonl*"))


def test_a_failed_export_leaves_no_file(store: Path, tmp_path: Path) -> None:
    out = tmp_path / "out.jsonl"
    conn = sqlite3.connect(store)
    conn.execute("DROP INDEX idx_events_suggestion_id_kind")  # the export needs it by name
    conn.close()
    with pytest.raises(sqlite3.OperationalError):
        export(store, "kto", out)
    assert not out.exists() and not out.with_name("out.jsonl.partial").exists()


# --- streaming ----------------------------------------------------------------------------------

# Enough rows that keeping them would take megabytes (about 10 MB as strings), few enough to
# build in a second or two.
MANY = 50_000


@pytest.fixture(scope="module")
def big_store(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """50,000 suggestions over 25,000 prompts (one accepted and one rejected on each), with
    events, inserted directly (the writer's own speed is bench/store.py's business)."""
    path = tmp_path_factory.mktemp("big") / "telemetry.db"
    db = open_db(path)
    header = "import os\nimport sys\n\n\ndef handler(event, context):\n"
    suggestions, events = [], []
    for n in range(MANY):
        at = T0 + n * 1000
        sid = f"s{n:07d}"
        prompt = f"{header}    value_{n // 2} = compute({n // 2})\n    return "
        text = f"value_{n // 2} + {n}"
        suggestions.append((sid, at, "completion", "python", prompt, text))
        events.append((sid, at + 10, "shown", None, None))
        events.append((sid, at + 900, "accepted" if n % 2 else "rejected", None, None))
        if n % 2:
            events.append((sid, at + 30_900, "survival", 30, 0.9))
    with db.conn:
        db.conn.executemany(
            "INSERT INTO suggestions (id, created_ms, kind, language, prompt, text) "
            "VALUES (?, ?, ?, ?, ?, ?)",
            suggestions,
        )
        db.conn.executemany(
            "INSERT INTO events (suggestion_id, time_ms, kind, check_after_s, similarity) "
            "VALUES (?, ?, ?, ?, ?)",
            events,
        )
    db.close()
    return path


@pytest.mark.parametrize(
    "fmt, since, expected",
    [
        ("kto", None, MANY),
        ("dpo", None, MANY // 2),
        # The last quarter only: tracemalloc makes this format's many small objects slow.
        ("events", T0 + MANY * 3 // 4 * 1000, MANY // 4),
    ],
    ids=["kto", "dpo", "events"],
)
def test_export_streams_in_constant_memory(
    big_store: Path, tmp_path: Path, fmt: str, since: int | None, expected: int
) -> None:
    """Python's peak allocation while exporting 50,000 suggestions stays far below what the rows
    take (about 10 MB as strings): nothing accumulates per row. (tracemalloc sees Python's
    allocations; SQLite's sorter for DPO spills to temporary files past its cache.)"""
    out = tmp_path / f"{fmt}.jsonl"
    tracemalloc.start()
    try:
        written = export(big_store, fmt, out, since_ms=since)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert written == expected
    assert out.stat().st_size > expected * 100
    # Measured: about 40 KB for each format.
    assert peak < 1_000_000, f"peak Python allocation {peak:,} bytes"
