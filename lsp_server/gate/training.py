"""Glue between the feedback store (or a CUPS file) and the gate's trainer: `hintwise gate train`
and `gate eval`, and the server's background retraining, all call these functions.
"""

from __future__ import annotations

import math
from array import array
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import numpy as np

from hintwise.lsp_server.gate.inputs import LabelledInput, read_cups
from hintwise.lsp_server.gate.keeper import personal_dir
from hintwise.models.gate import metrics, train
from hintwise.models.gate import model as gate_model
from hintwise.models.gate.features import (
    FEATURE_VERSION,
    STAGES,
    post_features,
    pre_features,
    vector,
)
from hintwise.telemetry import labels as store_labels

CUPS_SOURCE = {
    "data": "CUPS (microsoft/coderec_programming_states): 768 real GitHub Copilot suggestions "
    "shown to 15 programmers in a user study, with accept/reject (Aug 2022)",
    "license": "MIT, © Microsoft (Mozannar et al., CHI 2024 / AAAI 2024)",
}


class NotEnoughData(ValueError):
    """Too few labelled suggestions; the message says how many more are needed."""


def cups_data(inputs: list[LabelledInput]) -> train.Data:
    return train.Data(
        pre=np.array([pre_features(item.data) for item in inputs], dtype=np.float64),
        post=np.array([post_features(item.data) for item in inputs], dtype=np.float64),
        labels=np.array([item.accepted for item in inputs], dtype=bool),
        groups=np.array([item.group for item in inputs]),
        times=np.array([item.time for item in inputs], dtype=np.float64),
    )


def train_default(events: Path, output: Path, command: str | None = None) -> dict:
    """Train the shipped gate on a CUPS file: validated leave-one-programmer-out, then fitted on
    all rows, with thresholds from the out-of-fold scores."""
    data = cups_data(list(read_cups(events)))
    report = train.cross_validate(data)
    boosters = train.fit_all(data)
    meta = train.meta(
        report,
        report["thresholds"],
        label="default (CUPS)",
        source=CUPS_SOURCE,
        command=command or f"hintwise gate train --cups {events} --output {output}",
        trained=datetime.now(UTC).strftime("%Y-%m-%d"),
    )
    gate_model.save(output, boosters, meta)
    return meta


@dataclass
class StoreData:
    data: train.Data
    label: str  # "accepted" or "survived"
    counts: dict = field(default_factory=dict)


# The most recent answered suggestions a personal gate trains on. A bound, so that retraining's
# memory does not grow with the store: the server retrains every `gate.retrain_every` answers,
# and the peak of each retrain stays in the process (malloc keeps it), so a peak that grew with
# the store read as a leak of ~5 MB per 1,000 requests in bench/soak.py.
MAX_ROWS = 10_000


def store_data(db, min_survival: int = 200, max_rows: int = MAX_ROWS) -> StoreData:
    """The user's answered suggestions (the `max_rows` most recent) as training rows, using the
    features the server stored when it showed each one (so training sees exactly what serving
    saw). Trained on survived acceptance (accepted text still there at the last check) once
    that many have survival data.

    Each row is reduced to flat arrays as it is read (~0.5 KB a row; its JSON parsed into
    dicts is ~6 KB)."""
    pre, post, times = array("d"), array("d"), array("d")
    accepted, survival = array("b"), array("b")  # survival: -1 none, 0 deleted, 1 survived
    for row in store_labels.labelled(db, newest=max_rows):  # newest first
        gate = row.features.get("gate")
        if not isinstance(gate, dict) or gate.get("version") != FEATURE_VERSION:
            continue
        pre.extend(vector(gate.get("pre", {}), STAGES["pre"]))
        post.extend(vector(gate.get("post", {}), STAGES["post"]))
        times.append(row.created_ms)
        accepted.append(row.accepted)
        survival.append(-1 if row.survival is None else int(bool(row.survived)))
    rows = len(times)
    order = slice(None, None, -1)  # oldest first
    data = train.Data(
        pre=np.frombuffer(pre, dtype=np.float64).reshape(rows, len(STAGES["pre"]))[order].copy(),
        post=np.frombuffer(post, dtype=np.float64).reshape(rows, len(STAGES["post"]))[order].copy(),
        labels=np.frombuffer(accepted, dtype=np.int8)[order].astype(bool),
        groups=np.full(rows, "you"),
        times=np.frombuffer(times, dtype=np.float64)[order].copy(),
    )
    known = np.frombuffer(survival, dtype=np.int8)[order]
    with_survival = int((data.labels & (known >= 0)).sum())
    label = "survived" if with_survival >= min_survival else "accepted"
    if label == "survived":
        keep = ~data.labels | (known >= 0)
        data = data.subset(keep)
        data.labels = known[keep] == 1
    counts = {
        "labelled": len(data),
        "accepted": int(data.labels.sum()),
        "with_survival": with_survival,
    }
    return StoreData(data, label, counts)


def _score(model: gate_model.GateModel, data: train.Data) -> dict[str, float]:
    return {
        stage: metrics.auc(data.labels, model.stage(stage).scores(data.stage(stage)))
        for stage in STAGES
    }


def train_personal(
    db, data_dir: Path, current: gate_model.GateModel, min_labels: int = 200
) -> dict:
    """Train on the user's store; install into `<data_dir>/gate` only if it beats `current` on
    the most recent quarter of the user's suggestions. Returns what happened, for printing."""
    found = store_data(db)
    data = found.data
    if len(data) < min_labels:
        raise NotEnoughData(
            f"{len(data)} answered suggestions in the feedback store, {min_labels} needed "
            f"({min_labels - len(data)} more; gate.min_labels)"
        )
    older, recent = train.time_split(data)
    held = data.subset(recent)
    if held.labels.all() or not held.labels.any():
        raise NotEnoughData("the most recent suggestions are all accepted or all rejected")
    candidate_boosters = train.fit_all(data.subset(older))
    candidate = gate_model.GateModel(
        Path("candidate"),
        gate_model.StageModel(candidate_boosters["pre"], STAGES["pre"], 0.0),
        gate_model.StageModel(candidate_boosters["post"], STAGES["post"], 0.0),
    )
    new, old = _score(candidate, held), _score(current, held)
    better = new["post"] > old["post"] and not new["pre"] < old["pre"] - 0.02
    result = {
        "rows": len(data),
        "label": found.label,
        "counts": found.counts,
        "held_out": len(held),
        "auc_new": new,
        "auc_current": old,
        "current": str(current.directory),
        "installed": False,
    }
    if not better:
        return result
    thresholds = {
        stage: metrics.threshold_for_keep(
            held.labels, candidate.stage(stage).scores(held.stage(stage)), train.KEEP
        )
        for stage in STAGES
    }
    report = {
        "method": "time-ordered: the most recent 25% held out",
        "rows": len(data),
        **{
            stage: metrics.summary(held.labels, candidate.stage(stage).scores(held.stage(stage)))
            for stage in STAGES
        },
    }
    output = personal_dir(data_dir)
    gate_model.save(
        output,
        train.fit_all(data),
        train.meta(
            report,
            thresholds,
            label=f"personal ({len(data)} suggestions, label: {found.label})",
            source={"data": "your feedback store", "license": "yours"},
            command="hintwise gate train",
            trained=datetime.now(UTC).strftime("%Y-%m-%d %H:%M"),
        ),
    )
    result.update(installed=True, output=str(output))
    return result


def evaluate(model: gate_model.GateModel, data: train.Data) -> dict:
    """The installed (or given) gate on labelled rows: both stages, thresholds as installed."""
    report: dict = {"model": str(model.directory), "rows": len(data)}
    for stage in STAGES:
        scores = model.stage(stage).scores(data.stage(stage))
        at_model = metrics.at_threshold(data.labels, scores, model.stage(stage).threshold)
        report[stage] = {**metrics.summary(data.labels, scores), "at_model_threshold": at_model}
    report["calls_avoided"] = report["pre"]["at_model_threshold"]["hidden"]
    return report


def survival_weighted(db) -> dict:
    """Acceptance counted by how much of the accepted text survived (CDHF's caution)."""
    rows = list(store_labels.labelled(db))
    accepted = [row for row in rows if row.accepted]
    with_survival = [row.survival for row in accepted if row.survival is not None]
    return {
        "answered": len(rows),
        "acceptance": len(accepted) / len(rows) if rows else math.nan,
        "survival_weighted_acceptance": (
            sum(with_survival) / len(rows) if rows and with_survival else math.nan
        ),
        "accepted_with_survival": len(with_survival),
    }
