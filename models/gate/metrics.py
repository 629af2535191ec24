"""How well a gate separates accepted from rejected suggestions (numpy only).

`keep` thresholds are what the gate is for: the highest score below which at most (1 - keep) of
the accepted suggestions fall, and what that threshold hides of the rejected ones (or of all
requests, for the pre-generation stage: model calls avoided).
"""

from __future__ import annotations

import math

import numpy as np


def auc(labels: np.ndarray, scores: np.ndarray) -> float:
    """Area under the ROC curve (Mann–Whitney U with average ranks for ties); NaN if one class."""
    labels = np.asarray(labels, dtype=bool)
    scores = np.asarray(scores, dtype=float)
    positives, negatives = int(labels.sum()), int((~labels).sum())
    if positives == 0 or negatives == 0:
        return math.nan
    order = np.argsort(scores, kind="mergesort")
    ranks = np.empty(len(scores))
    sorted_scores = scores[order]
    # average ranks over runs of equal scores
    starts = np.r_[0, np.flatnonzero(np.diff(sorted_scores)) + 1]
    ends = np.r_[starts[1:], len(scores)]
    for start, end in zip(starts, ends, strict=True):
        ranks[order[start:end]] = (start + end + 1) / 2
    return float((ranks[labels].sum() - positives * (positives + 1) / 2) / (positives * negatives))


def threshold_for_keep(labels: np.ndarray, scores: np.ndarray, keep: float) -> float:
    """The highest threshold that keeps at least `keep` of the accepted (score >= threshold)."""
    accepted = np.sort(np.asarray(scores, dtype=float)[np.asarray(labels, dtype=bool)])
    if len(accepted) == 0:
        return 0.0
    allowed_below = min(len(accepted) - 1, math.floor(len(accepted) * (1 - keep) + 1e-9))
    return float(accepted[allowed_below])


def at_threshold(labels: np.ndarray, scores: np.ndarray, threshold: float) -> dict[str, float]:
    """What a threshold does: accepted kept, rejected hidden, all requests hidden."""
    labels = np.asarray(labels, dtype=bool)
    shown = np.asarray(scores, dtype=float) >= threshold
    return {
        "threshold": round(float(threshold), 6),
        "accepted_kept": float(shown[labels].mean()) if labels.any() else math.nan,
        "rejected_hidden": float((~shown[~labels]).mean()) if (~labels).any() else math.nan,
        "hidden": float((~shown).mean()) if len(shown) else math.nan,
    }


def calibration(labels: np.ndarray, scores: np.ndarray, bins: int = 10) -> dict:
    """Mean predicted vs observed acceptance per score bin, and the expected calibration error."""
    labels = np.asarray(labels, dtype=float)
    scores = np.asarray(scores, dtype=float)
    edges = np.linspace(0, 1, bins + 1)
    index = np.clip(np.digitize(scores, edges[1:-1]), 0, bins - 1)
    rows, error = [], 0.0
    for b in range(bins):
        inside = index == b
        if not inside.any():
            continue
        predicted, observed = float(scores[inside].mean()), float(labels[inside].mean())
        rows.append({"predicted": predicted, "observed": observed, "count": int(inside.sum())})
        error += inside.mean() * abs(predicted - observed)
    return {"bins": rows, "ece": float(error)}


def roc_curve(labels: np.ndarray, scores: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """False and true positive rates at every distinct threshold (for the plot)."""
    labels = np.asarray(labels, dtype=bool)
    order = np.argsort(-np.asarray(scores, dtype=float), kind="mergesort")
    hits = labels[order]
    tpr = np.r_[0, np.cumsum(hits) / max(1, hits.sum())]
    fpr = np.r_[0, np.cumsum(~hits) / max(1, (~hits).sum())]
    return fpr, tpr


def summary(labels: np.ndarray, scores: np.ndarray) -> dict:
    """AUC, the two keep points the README reports, and calibration."""
    return {
        "count": len(labels),
        "accepted": int(np.asarray(labels, dtype=bool).sum()),
        "auc": auc(labels, scores),
        "keep_90": at_threshold(labels, scores, threshold_for_keep(labels, scores, 0.90)),
        "keep_95": at_threshold(labels, scores, threshold_for_keep(labels, scores, 0.95)),
        "calibration": calibration(labels, scores),
    }
