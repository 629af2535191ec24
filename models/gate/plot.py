"""One PNG for `hintwise gate eval`: ROC, calibration, and hidden-vs-kept for both stages."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from hintwise.models.gate import metrics


def evaluation_chart(
    labels: np.ndarray, scores: dict[str, np.ndarray], path: Path, title: str
) -> Path:
    """Draw the three panels for each stage's scores ({"pre": ..., "post": ...}) into `path`."""
    labels = np.asarray(labels, dtype=bool)
    # matplotlib's object API on the Agg canvas: no display, no global pyplot state.
    figure = Figure(figsize=(15, 4.6))
    FigureCanvasAgg(figure)
    roc, calibration, tradeoff = figure.subplots(1, 3)
    for stage, values in scores.items():
        fpr, tpr = metrics.roc_curve(labels, values)
        roc.plot(fpr, tpr, label=f"{stage} (AUC {metrics.auc(labels, values):.3f})")
        bins = metrics.calibration(labels, values)["bins"]
        calibration.plot(
            [b["predicted"] for b in bins], [b["observed"] for b in bins], "o-", label=stage
        )
        keeps = np.linspace(0.5, 1.0, 51)
        hidden = [
            metrics.at_threshold(labels, values, metrics.threshold_for_keep(labels, values, k))
            for k in keeps
        ]
        tradeoff.plot(keeps * 100, [h["rejected_hidden"] * 100 for h in hidden], label=stage)
    roc.plot([0, 1], [0, 1], ":", color="grey")
    roc.set(xlabel="false positive rate", ylabel="true positive rate", title="ROC")
    calibration.plot([0, 1], [0, 1], ":", color="grey")
    calibration.set(xlabel="predicted acceptance", ylabel="observed", title="Calibration")
    tradeoff.axvline(95, ls=":", color="grey")
    tradeoff.set(
        xlabel="accepted suggestions kept (%)",
        ylabel="rejected suggestions hidden (%)",
        title="Hidden vs kept",
    )
    for axis in (roc, calibration, tradeoff):
        axis.legend(loc="best")
        axis.grid(alpha=0.3)
    figure.suptitle(title)
    figure.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=80)
    return path
