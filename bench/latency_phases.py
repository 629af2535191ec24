"""Two phases of bench/latency.py (issue 12, defects 1 and 2), kept here for its length.

* repeat (`--phases repeat`): ask, then ask again at the same position right after the answer,
  with no edit between (editors do: a re-trigger, a focus change, a second client). Once after
  the first (cold) request of a document and once after the next typed character (warm). Which
  path answered the second request (the typing cache, the model, neither) is read from
  `hintwise/status`.
* fullsync (`--phases fullsync`): typing along a shown suggestion, the characters it says one
  at a time with a request after each, through two servers side by side: one sent incremental
  `didChange` events (a range and the typed character), the other the whole document
  (`TextDocumentContentChangeWholeDocument`, which the spec allows any client to send). Per
  keystroke latency, how many keystrokes the typing cache answered, and what each server's
  feedback store recorded for the suggestions (outcomes, rejection reasons).
"""

from __future__ import annotations

import random
import sqlite3
import statistics
import sys
import tempfile
from pathlib import Path

from latency import (
    Client,
    Position,
    open_document,
    request,
    start,
    status,
    stop,
    summary,
    type_character,
)
from lsprotocol import types

QUIET = {"completion": {"prewarm": False}}
ALONG = 4  # characters of a suggestion typed along it


def with_interval(values: list[float]) -> dict:
    """`summary` plus a 95% percentile-bootstrap interval of the median (seeded)."""
    figures = summary(values)
    if len(values) >= 2:
        rng = random.Random(0)
        medians = sorted(statistics.median(rng.choices(values, k=len(values))) for _ in range(2000))
        figures["p50_ci95"] = [round(medians[50], 1), round(medians[1949], 1)]
    return figures


async def _served(client: Client, uri: str, line: int, column: int) -> tuple[float, str, str]:
    """(ms, suggestion, which path answered: cache | model | none) for one request."""
    before = (await status(client)).completions
    elapsed, text = await request(client, uri, line, column)
    after = (await status(client)).completions
    if after.cache_hits > before.cache_hits:
        return elapsed, text, "cache"
    return elapsed, text, "model" if after.model_calls > before.model_calls else "none"


async def measure_repeat(client: Client, places: list[Position]) -> dict:
    """The second of two identical requests, after a cold and after a warm first one."""
    figures: dict[str, list[float]] = {"repeat_after_cold": [], "repeat_after_warm": []}
    served: dict[str, dict[str, int]] = {}
    for number, place in enumerate(places):
        uri = f"file://{place.path}#repeat{number}"
        open_document(client, uri, place.document)
        column = place.column
        for key in ("repeat_after_cold", "repeat_after_warm"):
            if key == "repeat_after_warm":
                type_character(client, uri, 2, place.line, column, place.rest[:1] or " ")
                column += 1
            _, first, _ = await _served(client, uri, place.line, column)
            elapsed, _, path = await _served(client, uri, place.line, column)
            # after an empty answer (gated, hidden, nothing to say) apart: nothing was shown
            bucket = key if first else f"{key}_empty"
            figures.setdefault(bucket, []).append(elapsed)
            served.setdefault(bucket, {})[path] = served.get(bucket, {}).get(path, 0) + 1
        client.text_document_did_close(
            types.DidCloseTextDocumentParams(text_document=types.TextDocumentIdentifier(uri=uri))
        )
        print(f"  repeat {number + 1}/{len(places)} {place.path.name}", file=sys.stderr)
    result: dict = {f"{key}_ms": with_interval(values) for key, values in figures.items()}
    shown = [*figures["repeat_after_cold"], *figures["repeat_after_warm"]]
    result["repeat_ms"] = with_interval(
        shown
    )  # the figure: asking again after a suggestion
    result["served_by"] = served
    return result


def replace_all(client: Client, uri: str, version: int, text: str) -> None:
    """A didChange carrying the whole new text (no range)."""
    client.text_document_did_change(
        types.DidChangeTextDocumentParams(
            text_document=types.VersionedTextDocumentIdentifier(uri=uri, version=version),
            content_changes=[types.TextDocumentContentChangeWholeDocument(text=text)],
        )
    )


def _offset(text: str, line: int, column: int) -> int:
    lines = text.split("\n")
    return sum(len(part) + 1 for part in lines[:line]) + column


async def _type_along(client: Client, uri: str, place: Position, full: bool) -> dict:
    """Open, ask, then type the suggestion's first characters one by one, asking after each."""
    open_document(client, uri, place.document)
    _, suggestion, _ = await _served(client, uri, place.line, place.column)
    text, column, keystrokes = place.document, place.column, []
    typed = suggestion[: min(ALONG, len(suggestion) - 1)]
    if "\n" in typed or not typed.strip():
        return {"suggestion": suggestion, "keystrokes": []}
    for version, char in enumerate(typed, start=2):
        at = _offset(text, place.line, column)
        text = text[:at] + char + text[at:]
        if full:
            replace_all(client, uri, version, text)
        else:
            type_character(client, uri, version, place.line, column, char)
        column += 1
        elapsed, _, path = await _served(client, uri, place.line, column)
        keystrokes.append({"ms": elapsed, "served": path})
    return {"suggestion": suggestion, "keystrokes": keystrokes}


def outcomes(data_dir: Path) -> dict:
    """What a server's feedback store recorded: completions shown, outcome events by kind, and
    rejections by reason."""
    with sqlite3.connect(data_dir / "telemetry.db") as db:
        shown = db.execute("SELECT count(*) FROM suggestions WHERE kind = 'completion'").fetchone()
        events = dict(db.execute("SELECT kind, count(*) FROM events GROUP BY kind").fetchall())
        reasons = dict(
            db.execute(
                "SELECT coalesce(reason, '?'), count(*) FROM events WHERE kind = 'rejected' "
                "GROUP BY 1"
            ).fetchall()
        )
    return {"suggestions": shown[0], "events": events, "rejected_by_reason": reasons}


async def measure_fullsync(env: dict, places: list[Position], gguf: Path) -> dict:
    """Typing along the same suggestions through an incremental and a full-content client."""
    env = {**env, "HINTWISE_MODEL": str(gguf)}
    # No timeout rejections while the run lasts: what is left is what the edits caused.
    settings = {**QUIET, "telemetry": {"reject_after_s": 3600}}
    result: dict = {}
    with tempfile.TemporaryDirectory() as folder:
        dirs = {mode: Path(folder) / mode for mode in ("incremental", "full")}
        clients = {
            mode: await start(env, {**settings, "data_dir": str(path)})
            for mode, path in dirs.items()
        }
        runs: dict[str, list[dict]] = {mode: [] for mode in clients}
        for number, place in enumerate(places):
            for mode, client in clients.items():
                uri = f"file://{place.path}#along{number}"
                runs[mode].append(await _type_along(client, uri, place, mode == "full"))
            print(f"  fullsync {number + 1}/{len(places)} {place.path.name}", file=sys.stderr)
        for mode, client in clients.items():
            counts = (await status(client)).suggestions
            await stop(client)
            strokes = [stroke for run in runs[mode] for stroke in run["keystrokes"]]
            result[mode] = {
                "keystroke_ms": with_interval([stroke["ms"] for stroke in strokes]),
                "keystrokes_served_by": {
                    path: sum(stroke["served"] == path for stroke in strokes)
                    for path in ("cache", "model", "none")
                },
                "suggestions_typed_along": sum(bool(run["keystrokes"]) for run in runs[mode]),
                "status_outcomes": counts._asdict() if hasattr(counts, "_asdict") else {},
                "store": outcomes(dirs[mode]),
            }
    same = sum(
        a["suggestion"] == b["suggestion"]
        for a, b in zip(runs["incremental"], runs["full"], strict=True)
    )
    result["same_first_suggestion"] = f"{same}/{len(places)}"
    return result
