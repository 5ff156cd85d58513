"""Multilabel metrics as the paper's tables compute them (scikit-learn underneath).

Per label: ``auc`` (ROC AUC of the score), ``auprc`` (average precision), ``f1`` (binary macro F1 at
the decision, the paper's convention — PAPER-FACTS), ``f1_pos`` (positive-class F1), ``hamming``
(share of wrong cells). ``__global__`` is the plain mean over labels (NaN labels left out), and the
global Hamming loss is over all (sample, label) cells.
"""

from __future__ import annotations

import warnings
from typing import Sequence

import numpy as np
from sklearn.metrics import average_precision_score, f1_score, hamming_loss, roc_auc_score

from mlbench.results.leaderboard import GLOBAL_LABEL
from mlbench.foundations.missing import finite_mean

PER_LABEL_METRICS = ("auc", "auprc", "f1", "f1_pos", "hamming")


class MetricWarning(UserWarning):
    """A metric is undefined for a label (e.g. the label is absent from the split): it is NaN."""


def label_metrics(y: np.ndarray, score: np.ndarray, decision: np.ndarray, label: str = "") -> dict[str, float]:
    """All per-label metrics for one label's column."""
    y = np.asarray(y).astype(int)
    decision = np.asarray(decision).astype(int)
    out = {
        "f1": f1_score(y, decision, average="macro", labels=[0, 1], zero_division=0.0),
        "f1_pos": f1_score(y, decision, pos_label=1, average="binary", zero_division=0.0),
        "hamming": float(np.mean(y != decision)),
    }
    if 0 < y.sum() < len(y):
        out["auc"] = roc_auc_score(y, score)
        out["auprc"] = average_precision_score(y, score)
    else:
        what = "no positive" if y.sum() == 0 else "no negative"
        warnings.warn(f"label '{label}': {what} sample in this split; AUC and AUPRC are NaN", MetricWarning,
                      stacklevel=2)
        out["auc"] = out["auprc"] = float("nan")
    return {k: float(out[k]) for k in PER_LABEL_METRICS}


def evaluate(y_true: np.ndarray, scores: np.ndarray, decisions: np.ndarray,
             labels: Sequence[str]) -> list[dict[str, object]]:
    """Rows ``{label, metric, value, n_positive}`` per label, then the ``__global__`` rows."""
    y_true, scores, decisions = (np.asarray(a) for a in (y_true, scores, decisions))
    if not (y_true.shape == scores.shape == decisions.shape) or y_true.shape[1] != len(labels):
        raise ValueError(f"evaluate: shapes differ: y {y_true.shape}, scores {scores.shape}, "
                         f"decisions {decisions.shape}, {len(labels)} labels")
    rows: list[dict[str, object]] = []
    per_metric: dict[str, list[float]] = {m: [] for m in PER_LABEL_METRICS}
    for j, label in enumerate(labels):
        values = label_metrics(y_true[:, j], scores[:, j], decisions[:, j], label)
        n_pos = int(y_true[:, j].sum())
        for metric, value in values.items():
            rows.append({"label": label, "metric": metric, "value": value, "n_positive": n_pos})
            per_metric[metric].append(value)
    for metric, values in per_metric.items():
        if metric == "hamming":
            value = float(hamming_loss(y_true, decisions))
        else:
            value = finite_mean(values)
        rows.append({"label": GLOBAL_LABEL, "metric": metric, "value": value, "n_positive": int(y_true.sum())})
    return rows
