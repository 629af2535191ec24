"""`hintwise feedback stats` for people: the dict from `telemetry.stats.compute` as plain text.

Every rate is printed with the counts it rests on ("37.5 %  (3 of 8)"): a rate over a handful of
suggestions must look like one. Kept apart from stats.py so that the numbers (JSON, tests) and
their wording (this file) can change independently.
"""

from __future__ import annotations

from typing import Any

NONE = "–"  # no data: printed instead of a misleading 0 %


def percent(value: float | None) -> str:
    return NONE if value is None else f"{value * 100:5.1f} %"


def rate_line(label: str, entry: dict[str, Any], width: int = 14) -> str:
    """`label  37.5 %  (3 of 8)`."""
    return f"  {label:<{width}} {percent(entry['rate']):>7}  ({entry['count']} of {entry['n']})"


def _section(title: str, entries: dict[str, dict[str, Any]]) -> list[str]:
    lines = [title]
    lines += [rate_line(key, entry) for key, entry in entries.items()] or [f"  {NONE}"]
    return lines


def _survival(checks: dict[str, dict[str, Any]]) -> list[str]:
    lines = ["Accepted text still there (mean similarity; share of checks ≥ 0.9)"]
    for check, entry in checks.items():
        mean = entry["mean_similarity"]
        kept = entry["at_least_0_9"]
        lines.append(
            f"  after {_delay(int(check)):<7} {NONE if mean is None else f'{mean:.2f}':>7}"
            f"  {percent(kept['rate']):>7} ≥ 0.9  ({entry['n']} checks)"
        )
    return lines


def _delay(seconds: int) -> str:
    return f"{seconds // 60} min" if seconds >= 60 and seconds % 60 == 0 else f"{seconds} s"


def render(stats: dict[str, Any]) -> str:
    """The whole report, one section per question a user asks of their history."""
    acceptance = stats["acceptance"]
    overall = acceptance["overall"]
    rejections = stats["rejections"]
    gate = stats["gate"]
    hours = {f"{hour}:00": entry for hour, entry in acceptance["by_hour"].items()}
    lines = [
        f"Completions: {stats['completions']} generated, {overall['shown']} shown",
        rate_line("Accepted", overall)
        + f"  [{overall['accepted']} in full, {overall['partially_accepted']} in part]",
        "",
        *_section("By language", acceptance["by_language"]),
        "",
        *_section("By hour of day", hours),
        "",
        *_section("By length (characters)", acceptance["by_length"]),
        "",
        *_survival(stats["survival"]),
        "",
        "Rejections: "
        + ", ".join(
            f"{reason} {count}" for reason, count in rejections.items() if reason != "total"
        )
        + f" (total {rejections['total']})",
        f"Model calls avoided by the gate: {percent(gate['calls_avoided']['rate']).strip()}"
        f"  ({gate['skipped']} of {gate['requests']} requests); suggestions it hid: "
        f"{gate['hidden']}",
    ]
    return "\n".join(lines) + "\n"
