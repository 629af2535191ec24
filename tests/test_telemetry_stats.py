"""`hintwise feedback stats`: the figures, checked exactly on a store written by the real Writer."""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path

import pytest

from hintwise.telemetry import Event, Privacy, Request, Suggestion, Writer, open_db
from hintwise.telemetry.report import render
from hintwise.telemetry.stats import chart, compute
from hintwise.telemetry.store import DAY_MS, to_epoch_ms

DAY1 = to_epoch_ms(datetime(2026, 11, 2, 9, 0))  # local time, as the user lives it
DAY2 = to_epoch_ms(datetime(2026, 11, 3, 14, 0))
OLD = DAY1 - 30 * DAY_MS
MINUTE = 60_000

PROMPT = "import math\n\n\ndef area(radius: float) -> float:\n    " + "# docs\n" * 300


def completion(
    id: str, at: int, language: str, text: str, *events: Event, kind: str = "completion"
) -> list:
    """A suggestion row and its events, times relative to its creation."""
    rows: list = [
        Suggestion(
            id=id,
            kind=kind,
            created_ms=at,
            language=language,
            model="gemma3-270m",
            prompt=PROMPT,
            text=text,
            scores={"pre": 0.4, "post": 0.6},
            latency={"generate": 140.0},
        )
    ]
    for event in events:
        event.suggestion_id = id
        event.time_ms = at + (event.time_ms or 0)
        rows.append(event)
    return rows


def ev(kind: str, after_ms: int = 100, **fields) -> Event:
    return Event(suggestion_id="", kind=kind, time_ms=after_ms, **fields)


def survival(after_s: int, similarity: float) -> Event:
    return ev("survival", 1000 + after_s * 1000, check_after_s=after_s, similarity=similarity)


def history() -> list:
    """Day 1: five Python completions; day 2: four Go ones; plus what must not count."""
    return [
        *completion(
            "p1",
            DAY1,
            "python",
            "x + 1",
            ev("shown"),
            ev("seen", 800),
            ev("accepted", 1000),
            survival(30, 1.0),
            survival(120, 0.95),
            survival(300, 0.8),
        ),
        *completion(
            "p2",
            DAY1 + MINUTE,
            "python",
            "return math.pi * r",
            ev("shown"),
            ev("partially_accepted", 900, accepted_chars=8),
            survival(30, 0.85),
        ),
        *completion(
            "p3",
            DAY1 + 2 * MINUTE,
            "python",
            "r" * 45,
            ev("shown"),
            ev("rejected", 500, reason="explicit"),
        ),
        *completion(
            "p4",
            DAY1 + 3 * MINUTE,
            "python",
            "s" * 100,
            ev("shown"),
            ev("rejected", 10_000, reason="timeout"),
        ),
        *completion(
            "p5",
            DAY1 + 4 * MINUTE,
            "python",
            "print()",
            ev("shown"),
            ev("rejected", 300, reason="superseded"),
            ev("replacement", 20_000, text="print(area(2))"),
        ),
        *completion(
            "g1",
            DAY2,
            "go",
            "return x * 2.5",
            ev("shown"),
            ev("accepted", 700),
            survival(30, 0.9),
            survival(300, 0.5),
        ),
        *completion(
            "g2",
            DAY2 + MINUTE,
            "go",
            "g" * 50,
            ev("shown"),
            ev("rejected", 400, reason="diverged"),
        ),
        # Generated but never shown: not in any rate.
        *completion("g3", DAY2 + 2 * MINUTE, "go", "never shown"),
        # Accepted although its `shown` row is missing: it was on screen all the same.
        *completion("g4", DAY2 + 3 * MINUTE, "go", "fmt.Println()", ev("accepted", 600)),
        # A review comment: not a completion.
        *completion(
            "r1", DAY2, "go", "unused variable", ev("shown"), ev("accepted"), kind="review"
        ),
        # A month earlier: only without `since`.
        *completion(
            "old", OLD, "python", "old one", ev("shown"), ev("accepted"), survival(30, 0.1)
        ),
    ]


def requests() -> list[Request]:
    recent = [Request(decision="skipped", time_ms=DAY1 + n) for n in range(3)]
    recent += [Request(decision="generated", time_ms=DAY1 + 10 + n) for n in range(6)]
    recent += [Request(decision="hidden", time_ms=DAY1 + 20)]
    return recent + [Request(decision="generated", time_ms=OLD) for _ in range(5)]


@pytest.fixture
def store(tmp_path: Path) -> Path:
    path = tmp_path / "telemetry.db"
    writer = Writer.start(path)
    for row in [*history(), *requests()]:
        assert writer.record(row)
    assert writer.close()
    assert writer.stats().written == writer.stats().enqueued
    return path


def hour(ms: int) -> str:
    return f"{datetime.fromtimestamp(ms / 1000).hour:02d}"


def r(count: int, n: int) -> dict:
    return {"rate": count / n if n else None, "count": count, "n": n}


def test_acceptance_overall_and_by_group(store: Path) -> None:
    stats = compute(store, since_ms=DAY1)
    assert stats["completions"] == 9  # p1..p5, g1..g4
    acceptance = stats["acceptance"]
    assert acceptance["overall"] == {
        **r(4, 8),
        "shown": 8,
        "accepted": 3,
        "partially_accepted": 1,
    }
    assert acceptance["by_language"] == {"go": r(2, 3), "python": r(2, 5)}
    assert acceptance["by_hour"] == {hour(DAY1): r(2, 5), hour(DAY2): r(2, 3)}
    assert acceptance["by_length"] == {
        "1-10": r(1, 2),  # p1 accepted, p5 rejected
        "11-30": r(3, 3),  # p2 partly, g1, g4
        "31-80": r(0, 2),
        "81+": r(0, 1),
    }


def test_survival_rejections_and_gate(store: Path) -> None:
    stats = compute(store, since_ms=DAY1)
    survival = stats["survival"]
    assert list(survival) == ["30", "120", "300"]
    assert survival["30"]["n"] == 3
    assert survival["30"]["mean_similarity"] == pytest.approx((1.0 + 0.85 + 0.9) / 3)
    assert survival["30"]["at_least_0_9"] == r(2, 3)  # 0.9 itself counts as kept
    assert survival["120"] == {"n": 1, "mean_similarity": 0.95, "at_least_0_9": r(1, 1)}
    assert survival["300"]["mean_similarity"] == pytest.approx(0.65)
    assert survival["300"]["at_least_0_9"] == r(0, 2)
    assert stats["rejections"] == {
        "explicit": 1,
        "superseded": 1,
        "diverged": 1,
        "timeout": 1,
        "total": 4,
    }
    assert stats["gate"] == {
        "calls_avoided": r(3, 10),
        "requests": 10,
        "skipped": 3,
        "hidden": 1,
    }


def test_daily_series(store: Path) -> None:
    days = compute(store, since_ms=DAY1)["daily"]
    assert [day["day"] for day in days] == ["2026-11-02", "2026-11-03"]
    assert days[0]["acceptance"] == r(2, 5)
    assert days[0]["survival_30s"] == pytest.approx(0.925)
    assert days[0]["survival_300s"] == pytest.approx(0.8)
    assert days[1]["acceptance"] == r(2, 3)
    assert days[1]["survival_30s"] == pytest.approx(0.9)
    assert days[1]["survival_300s"] == pytest.approx(0.5)


def test_since_keeps_older_rows_out(store: Path) -> None:
    everything = compute(store)
    assert everything["since_ms"] is None
    assert everything["completions"] == 10
    assert everything["acceptance"]["overall"]["n"] == 9
    assert everything["acceptance"]["overall"]["count"] == 5
    assert everything["survival"]["30"]["n"] == 4
    assert everything["gate"]["requests"] == 15
    assert len(everything["daily"]) == 3
    later = compute(store, since_ms=DAY2)
    assert later["acceptance"]["overall"] == {
        **r(2, 3),
        "shown": 3,
        "accepted": 2,
        "partially_accepted": 0,
    }
    assert later["gate"]["requests"] == 0


def test_result_is_plain_json(store: Path) -> None:
    stats = compute(open_db(store, create=False))
    assert json.loads(json.dumps(stats)) == stats


def test_hashed_and_unstored_text_has_unknown_length(tmp_path: Path) -> None:
    """store_code = hashed leaves a sha256 in `text`: its length says nothing about the
    suggestion, so it must not land in the 31-80 bucket."""
    path = tmp_path / "t.db"
    for store_code, name in (("hashed", "h"), ("none", "n")):
        writer = Writer.start(path, privacy=Privacy(store_code))
        for row in completion(name, DAY1, "python", "x" * 5, ev("shown"), ev("accepted")):
            writer.record(row)
        assert writer.close()
    by_length = compute(path)["acceptance"]["by_length"]
    assert by_length["unknown"] == r(2, 2)
    assert by_length["1-10"] == by_length["31-80"] == r(0, 0)


def test_empty_store(tmp_path: Path) -> None:
    path = tmp_path / "t.db"
    open_db(path).close()
    stats = compute(path)
    assert stats["acceptance"]["overall"]["rate"] is None
    assert stats["survival"]["30"]["mean_similarity"] is None
    assert stats["gate"]["calls_avoided"] == r(0, 0)
    assert stats["daily"] == []
    png = chart(path, tmp_path / "empty.png")
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_missing_store_is_not_created(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError):
        compute(tmp_path / "nothing.db")
    assert not (tmp_path / "nothing.db").exists()


def test_chart_is_a_png(store: Path, tmp_path: Path) -> None:
    out = chart(store, tmp_path / "report" / "feedback.png")
    assert out == tmp_path / "report" / "feedback.png"
    data = out.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    width, height = int.from_bytes(data[16:20], "big"), int.from_bytes(data[20:24], "big")
    assert (width, height) == (990, 605)  # 9 x 5.5 inches at 110 dpi
    assert len(data) > 20_000  # lines, labels and legend, not a blank canvas


def test_text_report_shows_counts_with_rates(store: Path) -> None:
    text = render(compute(store, since_ms=DAY1))
    assert "Completions: 9 generated, 8 shown" in text
    assert "  Accepted        50.0 %  (4 of 8)  [3 in full, 1 in part]" in text
    assert "  python          40.0 %  (2 of 5)" in text
    assert "  81+              0.0 %  (0 of 1)" in text
    assert "  after 2 min      0.95  100.0 % ≥ 0.9  (1 checks)" in text
    assert "explicit 1, superseded 1, diverged 1, timeout 1 (total 4)" in text
    assert "Model calls avoided by the gate: 30.0 %  (3 of 10 requests)" in text
