"""Training the gate: fixed LightGBM settings, splits that respect who made the data, thresholds.

Deterministic: one thread, fixed seeds, `deterministic=True`; the same rows give the same model
file byte for byte. Two ways to validate, because the data differ:
- many programmers (CUPS): leave-one-programmer-out, since rows of one person are correlated;
- one user (the feedback store): the most recent rows are held out (time-ordered), since the
  model will be judged on what that user does next.
Thresholds keep 95% of the accepted suggestions on data the model was not fitted to.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import lightgbm as lgb
import numpy as np

from hintwise.models.gate import metrics
from hintwise.models.gate.features import FEATURE_VERSION, STAGES

PARAMS = {
    "objective": "binary",
    "learning_rate": 0.02,
    "num_leaves": 8,
    "min_data_in_leaf": 20,
    "lambda_l2": 1.0,
    "feature_fraction": 0.5,
    "bagging_fraction": 0.8,
    "bagging_freq": 1,
    "extra_trees": True,
    "seed": 0,
    "deterministic": True,
    "force_row_wise": True,
    "num_threads": 1,
    "verbose": -1,
}
ROUNDS = 400
KEEP = 0.95


@dataclass
class Data:
    """Feature matrices for both stages, with labels, groups and times (one row per suggestion)."""

    pre: np.ndarray
    post: np.ndarray
    labels: np.ndarray
    groups: np.ndarray
    times: np.ndarray

    def stage(self, name: str) -> np.ndarray:
        return self.pre if name == "pre" else self.post

    def subset(self, mask: np.ndarray) -> Data:
        return Data(
            self.pre[mask], self.post[mask], self.labels[mask], self.groups[mask], self.times[mask]
        )

    def __len__(self) -> int:
        return len(self.labels)


def fit(features: np.ndarray, labels: np.ndarray, names: tuple[str, ...]) -> lgb.Booster:
    dataset = lgb.Dataset(
        np.asarray(features, dtype=np.float64),
        np.asarray(labels, dtype=float),
        feature_name=list(names),
        free_raw_data=False,
    )
    return lgb.train(PARAMS, dataset, num_boost_round=ROUNDS)


def _group_spread(data: Data, scores: np.ndarray) -> dict:
    """Per-group AUCs, and a 95% interval of the pooled AUC from resampling whole groups."""
    groups = np.unique(data.groups)
    per_group = [
        metrics.auc(data.labels[data.groups == g], scores[data.groups == g]) for g in groups
    ]
    per_group = [value for value in per_group if not math.isnan(value)]
    rng = np.random.default_rng(0)
    members = [np.flatnonzero(data.groups == g) for g in groups]
    pooled = []
    for _ in range(500):
        chosen = np.concatenate([members[i] for i in rng.integers(0, len(groups), len(groups))])
        value = metrics.auc(data.labels[chosen], scores[chosen])
        if not math.isnan(value):
            pooled.append(value)
    return {
        "groups": len(groups),
        "auc_per_group": {
            "median": float(np.median(per_group)) if per_group else math.nan,
            "q25": float(np.percentile(per_group, 25)) if per_group else math.nan,
            "q75": float(np.percentile(per_group, 75)) if per_group else math.nan,
        },
        "auc_ci95": [float(np.percentile(pooled, 2.5)), float(np.percentile(pooled, 97.5))]
        if pooled
        else [math.nan, math.nan],
    }


def cross_validate(data: Data) -> dict:
    """Leave-one-group-out scores for both stages, with metrics and their spread.

    The threshold applied to each held-out programmer is chosen on the other programmers'
    out-of-fold scores, so the "kept" and "hidden" shares are what a new user would see.
    """
    report: dict = {"method": "leave-one-programmer-out", "rows": len(data)}
    out_of_fold: dict[str, np.ndarray] = {}
    for stage, names in STAGES.items():
        features = data.stage(stage)
        scores = np.zeros(len(data))
        for group in np.unique(data.groups):
            held = data.groups == group
            booster = fit(features[~held], data.labels[~held], names)
            scores[held] = booster.predict(features[held], num_threads=1)
        out_of_fold[stage] = scores
        shown = np.zeros(len(data), dtype=bool)
        for group in np.unique(data.groups):
            held = data.groups == group
            threshold = metrics.threshold_for_keep(data.labels[~held], scores[~held], KEEP)
            shown[held] = scores[held] >= threshold
        labels = data.labels.astype(bool)
        report[stage] = {
            **metrics.summary(data.labels, scores),
            **_group_spread(data, scores),
            "new_user_at_95": {
                "accepted_kept": float(shown[labels].mean()),
                "rejected_hidden": float((~shown[~labels]).mean()),
                "hidden": float((~shown).mean()),
            },
        }
    report["thresholds"] = {
        stage: metrics.threshold_for_keep(data.labels, scores, KEEP)
        for stage, scores in out_of_fold.items()
    }
    return report


def time_split(data: Data, held_out: float = 0.25) -> tuple[np.ndarray, np.ndarray]:
    """Masks for the older rows (training) and the most recent ones (validation)."""
    order = np.argsort(data.times, kind="mergesort")
    cut = len(order) - max(1, round(len(order) * held_out))
    train = np.zeros(len(data), dtype=bool)
    train[order[:cut]] = True
    return train, ~train


def fit_all(data: Data) -> dict[str, lgb.Booster]:
    return {stage: fit(data.stage(stage), data.labels, names) for stage, names in STAGES.items()}


def meta(report: dict, thresholds: dict[str, float], **provenance) -> dict:
    """gate.json's content: what `model.load` needs, and where the model came from."""
    return {
        "feature_version": FEATURE_VERSION,
        "thresholds": {stage: round(float(value), 6) for stage, value in thresholds.items()},
        "keep": KEEP,
        "params": {**PARAMS, "rounds": ROUNDS},
        "validation": report,
        **provenance,
    }
