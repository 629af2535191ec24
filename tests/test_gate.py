"""The acceptance gate: training is deterministic, features are the same at training and serving,
the running server reloads a new gate, falls back from a broken one, and a blocking threshold
means no model call. Real LightGBM, real CUPS data, the real server and model."""

from __future__ import annotations

import json
import math
import os
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
import sqlite_utils
from conftest import SHARED_DATA, hintwise_command
from lsp_session import EXAMPLE, inline, open_document, session, status, wait_ready

from hintwise.lsp_server.code.documents import Document
from hintwise.lsp_server.completion import context as cursor_context
from hintwise.lsp_server.config import CompletionSettings, GateSettings
from hintwise.lsp_server.gate.inputs import (
    EventsFileError,
    cups_input,
    read_cups,
    request_input,
    with_suggestion,
)
from hintwise.lsp_server.gate.keeper import Gatekeeper
from hintwise.lsp_server.gate.training import cups_data, train_default
from hintwise.models.errors import GateModelError
from hintwise.models.gate import model as gate_model
from hintwise.models.gate import train
from hintwise.models.gate.features import (
    POST_FEATURES,
    PRE_FEATURES,
    History,
    named,
    post_features,
    pre_features,
    vector,
)

CUPS = SHARED_DATA / "cups" / "events.jsonl"
needs_cups = pytest.mark.skipif(
    not CUPS.exists(), reason=f"CUPS data not found at {CUPS} (see ../shared/data/README.md)"
)
URI = "file:///work/example/primes.py"


def cups_rows(limit: int | None = None) -> list[dict]:
    with open(CUPS, encoding="utf-8") as lines:
        rows = [json.loads(line) for line in lines]
    return rows[:limit] if limit else rows


# -- training ------------------------------------------------------------------------------------


@needs_cups
def test_training_is_deterministic(tmp_path):
    data = cups_data(list(read_cups(CUPS)))
    first, second = train.fit_all(data), train.fit_all(data)
    for stage in ("pre", "post"):
        assert first[stage].model_to_string() == second[stage].model_to_string()
    # and the shipped default is exactly what its documented command produces
    meta = train_default(CUPS, tmp_path / "gate")
    for name in ("pre.txt", "post.txt"):
        assert (tmp_path / "gate" / name).read_bytes() == (
            gate_model.DEFAULT_DIR / name
        ).read_bytes(), f"models/gate/default/{name} is not reproducible"
    shipped = json.loads((gate_model.DEFAULT_DIR / "gate.json").read_text())
    assert meta["thresholds"] == shipped["thresholds"]


@needs_cups
def test_features_are_the_same_at_training_and_serving_time():
    """A live request whose document is a CUPS row's code gets the features the row gets, except
    what CUPS did not log (the rest of the line, typing speed, per-token minimum)."""
    unknown_in_cups = {"rest_of_line_blank", "typing_cps", "min_logprob", "repeats_suffix"}
    compared = 0
    for row in cups_rows(250):
        if row["chars_after_cursor"]:
            continue  # the document went on after the cursor; CUPS has no text for it
        trained = cups_input(row)
        document = Document("file:///cups.py", row["language"], 1, row["prefix"])
        offset = len(row["prefix"])
        ctx = cursor_context.build(document, offset, CompletionSettings())
        history = trained.history
        served = request_input(document.text, offset, ctx, history)
        measurements = row["copilot_measurements"]
        logprobs = [measurements["meanLogProb"]] * int(measurements["numTokens"])
        served = with_suggestion(
            served, row["suggestion"], logprobs, int(measurements["numTokens"])
        )
        # CUPS's documentLength counts the logged prompt header too
        served = type(served)(**{**served.__dict__, "document_chars": trained.document_chars})
        served = type(served)(**{**served.__dict__, "cursor_offset": trained.cursor_offset})
        a, b = post_features(trained), post_features(served)
        for name, x, y in zip(POST_FEATURES, a, b, strict=True):
            if name in unknown_in_cups:
                continue
            assert (math.isnan(x) and math.isnan(y)) or x == pytest.approx(y), (
                name,
                row["event_id"],
            )
        compared += 1
    assert compared >= 20


def test_stored_features_come_back_as_the_same_vector():
    """The server stores named features (NaN as null); training turns them back into vectors."""
    data = request_input(
        "def f(x):\n    return ",
        21,
        cursor_context.build(
            Document("file:///f.py", "python", 1, "def f(x):\n    return "),
            21,
            CompletionSettings(),
        ),
        History(prev_outcome="rejected", seconds_since_outcome=3.0, shown=4, accepted=1),
    )
    data = with_suggestion(data, "x + 1", [-0.2, -1.5, -0.1])
    for names, compute in ((PRE_FEATURES, pre_features), (POST_FEATURES, post_features)):
        values = compute(data)
        stored = json.loads(json.dumps(named(values, names)))
        back = vector(stored, names)
        assert np.allclose(back, values, equal_nan=True, atol=1e-6)


@needs_cups
def test_a_cups_file_with_a_missing_field_names_the_field_and_line(tmp_path):
    rows = cups_rows(3)
    del rows[1]["copilot_measurements"]["meanLogProb"]
    bad = tmp_path / "events.jsonl"
    bad.write_text("\n".join(json.dumps(row) for row in rows) + "\n")
    with pytest.raises(
        EventsFileError, match=r"events.jsonl:2: missing field 'copilot_measurements.meanLogProb'"
    ):
        list(read_cups(bad))
    run = subprocess.run(
        [*hintwise_command(), "gate", "train", "--cups", str(bad), "--output", str(tmp_path / "g")],
        capture_output=True,
        text=True,
    )
    assert run.returncode == 1
    assert "events.jsonl:2: missing field 'copilot_measurements.meanLogProb'" in run.stderr
    bad.write_text("{not json\n")
    with pytest.raises(EventsFileError, match=r":1: not JSON"):
        list(read_cups(bad))


# -- loading -------------------------------------------------------------------------------------


def test_a_broken_gate_falls_back_to_the_shipped_default(tmp_path):
    personal = tmp_path / "gate"
    shutil.copytree(gate_model.DEFAULT_DIR, personal)
    (personal / "post.txt").write_text("this is not a LightGBM model\n")
    messages: list[str] = []
    keeper = Gatekeeper(
        GateSettings(),
        tmp_path,
        now=lambda: 0.0,
        tell=messages.append,
    )
    assert keeper.model is not None and keeper.model.is_default
    assert "cannot be used" in messages[0] and "post.txt" in messages[0]
    # a gate trained for another feature version is refused the same way
    meta = json.loads((personal / "gate.json").read_text())
    shutil.copy(gate_model.DEFAULT_DIR / "post.txt", personal / "post.txt")
    (personal / "gate.json").write_text(json.dumps({**meta, "feature_version": 999}))
    with pytest.raises(GateModelError, match="feature version 999"):
        gate_model.load(personal)


# -- the running server --------------------------------------------------------------------------


def _blocking_gate(directory: Path) -> None:
    """A copy of the default gate whose own thresholds hold everything back."""
    shutil.copytree(gate_model.DEFAULT_DIR, directory, dirs_exist_ok=True)
    meta = json.loads((directory / "gate.json").read_text())
    meta["thresholds"] = {"pre": 1.0, "post": 1.0}
    meta["label"] = "blocking (test)"
    (directory / "gate.json").write_text(json.dumps(meta))


@pytest.mark.model
@pytest.mark.timeout(240)
async def test_a_blocking_threshold_means_no_model_call(clock_env, tmp_path):
    async with session(clock_env, settings={"gate.pre_threshold": 1.0}) as client:
        open_document(client, URI, EXAMPLE)
        await wait_ready(client)
        before = (await status(client)).completions
        for _ in range(3):
            result = await inline(client, URI, 14, 12, invoked=False)
            assert not result.items
        after = (await status(client)).completions
        assert after.model_calls == before.model_calls, "the gate let the model run"
        assert after.gated == before.gated + 3
        # a request the user invokes is scored but never held back
        invoked = await inline(client, URI, 14, 12, invoked=True)
        assert invoked.items and invoked.items[0].command.arguments[1]["pre"] < 1.0
        assert (await status(client)).completions.model_calls > after.model_calls
        await client.protocol.send_request_async("hintwise/_test/advanceClock", {"seconds": 0})
    db = sqlite_utils.Database(tmp_path / "telemetry.db")
    decisions = [row["decision"] for row in db.query("select decision from requests order by id")]
    assert decisions.count("skipped") == 3 and decisions[-1] == "generated"


@pytest.mark.model
@pytest.mark.timeout(240)
async def test_the_running_server_picks_up_a_new_gate_and_survives_a_broken_one(
    clock_env, tmp_path
):
    async with session(clock_env) as client:
        open_document(client, URI, EXAMPLE)
        await wait_ready(client)
        assert (await status(client)).gate.kind == "default"
        shown = await inline(client, URI, 14, 12, invoked=False)
        assert shown.items, "the default gate should let this obvious line through"
        # `hintwise gate train` installs into <data_dir>/gate; no restart
        _blocking_gate(tmp_path / "gate")
        await _until(client, lambda s: s.gate.model == str(tmp_path / "gate"))
        held = await inline(client, URI, 14, 11, invoked=False)
        assert not held.items
        gate = (await status(client)).gate
        assert gate.kind == "trained" and gate.pre_skipped >= 1
        # a corrupt file: a message, the default gate, completions go on
        (tmp_path / "gate" / "pre.txt").write_text("garbage")
        (tmp_path / "gate" / "gate.json").write_text("{}")
        await _until(client, lambda s: s.gate.kind == "default")
        assert any("cannot be used" in m.message for m in client.messages)
        again = await inline(client, URI, 14, 12, invoked=True)
        assert again.items and 0 <= again.items[0].command.arguments[1]["gate"] <= 1


@pytest.mark.model
@pytest.mark.timeout(120)
async def test_a_gate_broken_before_the_server_starts_is_reported_in_the_editor(
    clock_env, tmp_path
):
    """The server loads the installed gate as it starts, before the client can hear anything:
    what went wrong then is still shown once the client is there."""
    _blocking_gate(tmp_path / "gate")
    (tmp_path / "gate" / "pre.txt").write_text("garbage")
    async with session(clock_env) as client:
        assert (await status(client)).gate.kind == "default"
        assert any("cannot be used" in m.message for m in client.messages)


async def _until(client, predicate, attempts: int = 40):
    import asyncio

    for _ in range(attempts):
        # any request gives the gate its chance to look at its file (at most once a second)
        await inline(client, URI, 0, 0, invoked=False)
        if predicate(await status(client)):
            return
        await asyncio.sleep(0.25)
    raise AssertionError(f"gave up waiting: {(await status(client)).gate}")


# -- a personal gate from the feedback store ------------------------------------------------------


def _store_from_cups(data_dir: Path, rows: list[dict]) -> None:
    """A feedback store holding CUPS suggestions as if one user had answered them, with the
    features stored as the server stores them (the same functions compute them)."""
    from hintwise.models.gate.features import FEATURE_VERSION
    from hintwise.telemetry import Event, Suggestion, Writer

    writer = Writer.start(data_dir / "telemetry.db")
    for index, row in enumerate(sorted(rows, key=lambda r: r["timestamp"])):
        data = cups_input(row)
        created = int(row["timestamp"] * 1000)
        writer.record(
            Suggestion(
                id=f"s{index}",
                created_ms=created,
                language=row["language"],
                text=row["suggestion"],
                features={
                    "gate": {
                        "version": FEATURE_VERSION,
                        "pre": named(pre_features(data), PRE_FEATURES),
                        "post": named(post_features(data), POST_FEATURES),
                    }
                },
            )
        )
        kind = "accepted" if row["accepted"] else "rejected"
        writer.record(Event(suggestion_id=f"s{index}", kind=kind, time_ms=created + 500))
    assert writer.close(timeout=30)


def _hintwise(data_dir: Path, *args: str) -> subprocess.CompletedProcess:
    import os

    env = {k: v for k, v in os.environ.items() if not k.startswith("HINTWISE_")}
    env["HINTWISE_DATA_DIR"] = str(data_dir)
    return subprocess.run(
        [*hintwise_command(), "gate", *args], capture_output=True, text=True, env=env, cwd=data_dir
    )


@needs_cups
def test_a_personal_gate_is_trained_from_the_store_and_installed_only_if_better(tmp_path):
    rows = cups_rows()
    _store_from_cups(tmp_path, rows[:120])
    too_few = _hintwise(tmp_path, "train")
    assert too_few.returncode == 1
    assert "120 answered suggestions in the feedback store, 200 needed (80 more" in too_few.stderr
    assert "80 more" in _hintwise(tmp_path, "status").stdout

    (tmp_path / "telemetry.db").unlink(missing_ok=True)
    _store_from_cups(tmp_path, rows)
    trained = _hintwise(tmp_path, "train", "--json")
    assert trained.returncode == 0, trained.stderr
    result = json.loads(trained.stdout)
    assert result["rows"] == len(rows) and result["held_out"] == round(len(rows) * 0.25)
    assert result["current"] == str(gate_model.DEFAULT_DIR)
    better = result["auc_new"]["post"] > result["auc_current"]["post"]
    installed = (tmp_path / "gate" / "gate.json").exists()
    assert result["installed"] == installed
    if better and result["auc_new"]["pre"] >= result["auc_current"]["pre"] - 0.02:
        assert installed
        assert gate_model.load(tmp_path / "gate").meta["validation"]["method"].startswith("time")
    else:
        assert not installed

    evaluated = _hintwise(tmp_path, "eval", "--store", "--json", "--chart", "store.png")
    assert evaluated.returncode == 0, evaluated.stderr
    report = json.loads(evaluated.stdout)
    assert report["rows"] == len(rows) and 0.5 < report["post"]["auc"] <= 1
    assert report["survival"]["answered"] == len(rows)
    assert (tmp_path / "store.png").stat().st_size > 10_000


@needs_cups
def test_gate_eval_on_a_cups_file_reports_the_figures_and_draws_them(tmp_path):
    run = _hintwise(tmp_path, "eval", "--events", str(CUPS), "--chart", "gate.png")
    assert run.returncode == 0, run.stderr
    assert "AUC" in run.stdout and "model calls avoided" in run.stdout
    assert (tmp_path / "gate.png").stat().st_size > 10_000
    as_json = json.loads(_hintwise(tmp_path, "eval", "--events", str(CUPS), "--json").stdout)
    assert as_json["rows"] == 768
    for stage in ("pre", "post"):
        assert {"auc", "keep_90", "keep_95", "calibration"} <= set(as_json[stage])
    # in-sample figures of the shipped model: better than its cross-validated ones
    assert as_json["post"]["auc"] > 0.75


@needs_cups
def test_a_better_personal_gate_is_installed_and_loads(tmp_path):
    """Against a gate that knows nothing (trained on shuffled labels), the store's gate wins and
    is installed where the server looks for it."""
    from hintwise.lsp_server.gate.training import store_data, train_personal

    _store_from_cups(tmp_path, cups_rows())
    data = store_data(tmp_path / "telemetry.db").data
    shuffled = np.random.default_rng(1).permutation(data.labels)
    boosters = train.fit_all(train.Data(data.pre, data.post, shuffled, data.groups, data.times))
    clueless = tmp_path / "clueless"
    gate_model.save(clueless, boosters, train.meta({}, {"pre": 0.5, "post": 0.5}))
    result = train_personal(
        tmp_path / "telemetry.db", tmp_path, gate_model.load(clueless), min_labels=200
    )
    assert result["installed"], result
    installed = gate_model.load(tmp_path / "gate")
    assert installed.meta["label"].startswith("personal (768 suggestions")
    assert 0 < installed.post.threshold < 1


@needs_cups
def test_the_server_retrains_in_the_background_after_enough_answers(tmp_path, monkeypatch):
    """gate.retrain_every answers start a training thread on the store (real server state,
    no client: the LSP part of answering is covered by the feedback tests)."""
    from hintwise.lsp_server import config
    from hintwise.lsp_server.gate.training import store_data
    from hintwise.lsp_server.server import HintwiseServer

    monkeypatch.setenv("HINTWISE_TEST_CLOCK", "1")
    _store_from_cups(tmp_path, cups_rows())
    data = store_data(tmp_path / "telemetry.db").data
    shuffled = np.random.default_rng(1).permutation(data.labels)
    clueless = tmp_path / "clueless"
    gate_model.save(
        clueless,
        train.fit_all(train.Data(data.pre, data.post, shuffled, data.groups, data.times)),
        train.meta({}, {"pre": 0.5, "post": 0.5}),
    )
    settings, problems = config.apply(
        config.Settings(),
        {
            "data_dir": str(tmp_path),
            "gate.retrain_every": 3,
            "gate.model": str(clueless),
            "telemetry.retention_days": 0,  # CUPS is from 2022: a year's retention empties it
        },
    )
    assert not problems
    server = HintwiseServer(settings)
    server.feedback.open(settings.telemetry, settings.data_path)
    assert server.gate.model.directory == clueless
    for outcome in ("accepted", "rejected"):
        server.answered(outcome)
    assert server.retrainer.running is None  # not yet: 2 of 3
    server.answered("rejected")
    thread = server.retrainer.running
    assert thread is not None
    thread.join(timeout=120)
    result = server.retrainer.last_result
    assert result["rows"] == 768 and result["installed"]
    assert result["process"] != os.getpid()  # trained in a child: its memory is not the server's
    assert gate_model.load(tmp_path / "gate").meta["label"].startswith("personal")
    assert server.gate.session.shown == 3 and server.gate.session.accepted == 1
    server.stop()


def test_items_carry_the_gate_scores_for_plugins():
    """Inline items in the accept command's second argument, list items in `data`."""
    from hintwise.lsp_server.completion.result import Result
    from hintwise.lsp_server.features.completion import completion_items, inline_items
    from hintwise.lsp_server.gate.keeper import Verdict

    document = Document("file:///f.py", "python", 1, "def f(x):\n    return ")
    result = Result(
        "x + 1",
        "ok",
        id="abc",
        offset=len(document.text),
        verdicts={
            "pre": Verdict("pre", 0.61, 0.19, True),
            "post": Verdict("post", 0.83, 0.17, True),
        },
    )
    [inline] = inline_items(document, result).items
    assert inline.command.arguments == ["abc", {"gate": 0.83, "pre": 0.61}]
    [item] = completion_items(document, result).items
    assert item.data == {"id": "abc", "gate": 0.83, "pre": 0.61}
    ungated = Result("x + 1", "ok", id="abc", offset=len(document.text))
    assert inline_items(document, ungated).items[0].command.arguments[1] == {
        "gate": None,
        "pre": None,
    }


@needs_cups
def test_retraining_reads_the_store_in_bounded_memory(tmp_path):
    """The server retrains every `gate.retrain_every` answers and malloc keeps each peak, so a
    peak that grew with the store made bench/soak.py's RSS climb (~5 MB per 1,000 requests).
    Rows are reduced to arrays as they are read (they were kept as parsed JSON, ~6.4 KB each)
    and only the `max_rows` most recent are kept."""
    import tracemalloc

    from hintwise.lsp_server.gate.training import store_data

    _store_from_cups(tmp_path, cups_rows())
    db = tmp_path / "telemetry.db"
    peaks, found = {}, {}
    for cap in (50, 768):
        tracemalloc.start()
        found[cap] = store_data(db, max_rows=cap).data
        peaks[cap] = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
    assert len(found[50]) == 50 and len(found[768]) == 768
    assert list(found[50].times) == list(found[768].times[-50:])  # the most recent
    assert peaks[768] < 2_500 * 768, peaks
    assert peaks[50] < peaks[768] / 4, peaks
