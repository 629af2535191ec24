"""The gate learns the model it guards: retrained on a replay's rows, installed only if better.

The shipped gate learned from Copilot's suggestions (CUPS); a replay yields the served model's
own suggestions with the features the server computed for them, labelled by whether the user's
real line came out (exact = accepted). The candidate is fitted on the training files' rows and
compared with the installed gate on the held-out files' rows; the difference in AUC gets a
paired bootstrap interval (resampling whole files when there are enough of them, since rows of
one file are alike), and the candidate is installed only when the interval of the post-stage
difference lies above zero and the pre stage is not worse beyond noise.
"""

from __future__ import annotations

import math
import time
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Protocol

import numpy as np

from hintwise.lsp_server.config import Settings
from hintwise.lsp_server.gate.keeper import Gatekeeper, personal_dir
from hintwise.models.gate import metrics, train
from hintwise.models.gate import model as gate_model
from hintwise.models.gate.features import FEATURE_VERSION, STAGES, vector

MIN_TRAIN_ROWS = 100  # LightGBM's leaves need 20 rows each: fewer rows learn nothing useful
MIN_CLASS_ROWS = 10  # of each label, in the training rows and in the held-out ones
MIN_FILE_CLUSTERS = 8  # fewer held-out files: the bootstrap resamples rows instead
ROUNDS = 1000


class GateRow(Protocol):
    """A replayed suggestion as the gate learns from it (a ReplayRow, or an Answer of
    `hintwise tune`)."""

    @property
    def gate(self) -> dict: ...
    @property
    def exact(self) -> bool: ...
    @property
    def group(self) -> str: ...


def gate_data(rows: Sequence[GateRow]) -> train.Data:
    """The rows the gate can learn from (a suggestion was shown: both stages scored), as the
    trainer's matrices; label = exact, group = the file."""
    usable = [
        row
        for row in rows
        if row.gate.get("version") == FEATURE_VERSION and "pre" in row.gate and "post" in row.gate
    ]
    return train.Data(
        pre=np.array([vector(row.gate["pre"], STAGES["pre"]) for row in usable]).reshape(
            -1, len(STAGES["pre"])
        ),
        post=np.array([vector(row.gate["post"], STAGES["post"]) for row in usable]).reshape(
            -1, len(STAGES["post"])
        ),
        labels=np.array([row.exact for row in usable], dtype=bool),
        groups=np.array([row.group for row in usable]),
        times=np.arange(len(usable), dtype=np.float64),
    )


def _candidate(data: train.Data) -> gate_model.GateModel:
    boosters = train.fit_all(data)
    return gate_model.GateModel(
        Path("candidate"),
        gate_model.StageModel(boosters["pre"], STAGES["pre"], 0.0),
        gate_model.StageModel(boosters["post"], STAGES["post"], 0.0),
    )


def auc_difference(
    labels: np.ndarray, old: np.ndarray, new: np.ndarray, groups: np.ndarray, seed: int = 0
) -> dict:
    """AUC(new) − AUC(old) on the same rows, with a paired bootstrap 95% interval: whole groups
    (files) are resampled when there are MIN_FILE_CLUSTERS of them, else single rows."""
    names = np.unique(groups)
    by_file = len(names) >= MIN_FILE_CLUSTERS
    members = [np.flatnonzero(groups == name) for name in names] if by_file else []
    rng = np.random.default_rng(seed)
    samples = []
    for _ in range(ROUNDS):
        if by_file:
            picked = np.concatenate([members[i] for i in rng.integers(0, len(names), len(names))])
        else:
            picked = rng.integers(0, len(labels), len(labels))
        value = metrics.auc(labels[picked], new[picked]) - metrics.auc(labels[picked], old[picked])
        if not math.isnan(value):
            samples.append(value)
    point = metrics.auc(labels, new) - metrics.auc(labels, old)
    low, high = np.percentile(samples, [2.5, 97.5]) if samples else (math.nan, math.nan)
    return {
        "points": round(float(point), 4),
        "ci95": [round(float(low), 4), round(float(high), 4)],
        "resampled": "files" if by_file else "rows",
    }


def _too_little(train_data: train.Data, held: train.Data) -> str | None:
    """Why these rows cannot decide anything, or None."""
    if len(train_data) < MIN_TRAIN_ROWS:
        return (
            f"{len(train_data)} suggestions from the training files, {MIN_TRAIN_ROWS} needed "
            f"({MIN_TRAIN_ROWS - len(train_data)} more: replay more holes per file)"
        )
    for name, data in (("training", train_data), ("held-out", held)):
        accepted = int(data.labels.sum())
        if min(accepted, len(data) - accepted) < MIN_CLASS_ROWS:
            return (
                f"the {name} files gave {accepted} exact and {len(data) - accepted} wrong "
                f"suggestions; at least {MIN_CLASS_ROWS} of each are needed"
            )
    return None


def _at_thresholds(
    current: gate_model.GateModel,
    candidate: gate_model.GateModel,
    train_data: train.Data,
    held: train.Data,
    scores: dict[str, tuple[np.ndarray, np.ndarray]],
) -> dict:
    """What each gate's threshold does on the held-out rows (exact kept, wrong hidden): the
    installed gate's own threshold, and the candidate's chosen on the training rows to keep
    95% of their exact suggestions."""
    report = {}
    for stage, (old, new) in scores.items():
        chosen = metrics.threshold_for_keep(
            train_data.labels, candidate.stage(stage).scores(train_data.stage(stage)), train.KEEP
        )
        report[stage] = {
            "current": metrics.at_threshold(held.labels, old, current.stage(stage).threshold),
            "new": metrics.at_threshold(held.labels, new, chosen),
        }
    return report


def retrain_gate(
    train_rows: Sequence[GateRow],
    heldout_rows: Sequence[GateRow],
    settings: Settings,
    install: bool,
) -> dict:
    """Fit a gate on the training files' rows, compare it with the installed gate on the
    held-out files' rows, and (if `install` and better beyond noise) install it as the user's
    own gate, fitted on all rows. Returns what happened, for printing or JSON."""
    current = Gatekeeper(settings.gate, settings.data_path, now=time.monotonic).model
    train_data, held = gate_data(train_rows), gate_data(heldout_rows)
    result: dict = {
        "train_rows": len(train_data),
        "heldout_rows": len(held),
        "heldout_exact": int(held.labels.sum()),
        "current": str(current.directory) if current else None,
        "installed": False,
    }
    problem = _too_little(train_data, held)
    if problem is not None or current is None:
        result["reason"] = problem or "no installed gate to compare with"
        return result
    candidate = _candidate(train_data)
    scores = {
        stage: (
            current.stage(stage).scores(held.stage(stage)),
            candidate.stage(stage).scores(held.stage(stage)),
        )
        for stage in STAGES
    }
    result["auc_current"] = {
        s: round(metrics.auc(held.labels, old), 4) for s, (old, _) in scores.items()
    }
    result["auc_new"] = {
        s: round(metrics.auc(held.labels, new), 4) for s, (_, new) in scores.items()
    }
    result["difference"] = {
        stage: auc_difference(held.labels, old, new, held.groups)
        for stage, (old, new) in scores.items()
    }
    result["at_threshold"] = _at_thresholds(current, candidate, train_data, held, scores)
    post, pre = result["difference"]["post"]["ci95"], result["difference"]["pre"]["ci95"]
    better = post[0] > 0 and pre[1] >= 0
    result["better"] = better
    if not better:
        result["reason"] = (
            f"not better beyond noise on the held-out files: post-stage AUC difference "
            f"{result['difference']['post']['points']:+.3f} (95% {post[0]:+.3f} to {post[1]:+.3f})"
            + ("" if pre[1] >= 0 else f", pre stage worse ({pre[0]:+.3f} to {pre[1]:+.3f})")
        )
        return result
    if not install:
        result["reason"] = "better, not installed (install=False)"
        return result
    result["output"] = str(_install(candidate, train_data, held, settings, result))
    result.update(installed=True, reason="better beyond noise: installed")
    return result


def _install(
    candidate: gate_model.GateModel,
    train_data: train.Data,
    held: train.Data,
    settings: Settings,
    result: dict,
) -> Path:
    """Save the gate fitted on all rows, with thresholds from the candidate's held-out scores
    (keep 95% of the exact suggestions, as the shipped gate's thresholds do)."""
    thresholds = {
        stage: metrics.threshold_for_keep(
            held.labels, candidate.stage(stage).scores(held.stage(stage)), train.KEEP
        )
        for stage in STAGES
    }
    everything = train.Data(
        *(
            np.concatenate([getattr(train_data, name), getattr(held, name)])
            for name in ("pre", "post", "labels", "groups", "times")
        )
    )
    report = {
        "method": "repository replay: fitted on the training files, validated on held-out files",
        "rows": len(everything),
        "comparison": {key: result[key] for key in ("auc_current", "auc_new", "difference")},
        **{
            stage: metrics.summary(held.labels, candidate.stage(stage).scores(held.stage(stage)))
            for stage in STAGES
        },
    }
    output = personal_dir(settings.data_path)
    gate_model.save(
        output,
        train.fit_all(everything),
        train.meta(
            report,
            thresholds,
            label=f"replay ({len(everything)} replayed suggestions, label: exact line)",
            source={
                "data": "a replay of your repository through the served model",
                "license": "yours",
            },
            command="hintwise tune --from-repo",
            trained=datetime.now(UTC).strftime("%Y-%m-%d %H:%M"),
        ),
    )
    return output
