"""Multilabel metrics as the paper's tables compute them (scikit-learn underneath), and calibration.

Per label: ``auc`` (ROC AUC of the score), ``auprc`` (average precision), ``f1`` (binary macro F1 at
the decision, the paper's convention — PAPER-FACTS), ``f1_pos`` (positive-class F1), ``hamming``
(share of wrong cells), and two calibration metrics of the score read as a probability:

- ``ece_15``: expected calibration error over ``ECE_BINS`` = 15 equal-mass bins,
  ECE = sum_b (n_b / n) |mean(y in b) - mean(p in b)| (:func:`expected_calibration_error`);
- ``brier``: mean (p - y)^2, scikit-learn's ``brier_score_loss``.

Both are defined for a label with no positive (or no negative) in the split: predicting small
probabilities for a label that never occurs is good calibration, and the metrics say how good.
They are lower-is-better, like ``hamming`` (:func:`lower_is_better`). The PTC ensembles' "scores"
are 0/1 decisions: their Brier score is their Hamming loss, and so is their ECE unless one of the
two values holds under 1/15 of the images (both then share a bin).

``__global__`` is the plain mean over labels (NaN labels left out), and the global Hamming loss is
over all (sample, label) cells.

Unknown cells (``known``, a bool mask like ``y``, False where a label is unknown): each label is
scored on its known cells only (its AUC, AP, F1, calibration are those of that subset, as
scikit-learn computes them on it), and the global Hamming loss is over the known cells. Without a
mask (or with every cell known) nothing changes.
"""

from __future__ import annotations

import warnings
from typing import Sequence

import numpy as np
from sklearn.metrics import average_precision_score, f1_score, hamming_loss, roc_auc_score

from mlbench.data.labels import check_known
from mlbench.results.leaderboard import GLOBAL_LABEL, LOWER_IS_BETTER
from mlbench.foundations.missing import finite_mean

ECE_BINS = 15
# The leaderboard schema spells the same names (leaderboard.CALIBRATION_METRICS; a test holds them equal).
ECE = f"ece_{ECE_BINS}"
BRIER = "brier"
PER_LABEL_METRICS = ("auc", "auprc", "f1", "f1_pos", "hamming", ECE, BRIER)


def lower_is_better(metric: str) -> bool:
    """Whether a smaller value of ``metric`` is the better one (``hamming``, ``ece_15``, ``brier``, ...)."""
    return metric in LOWER_IS_BETTER


class MetricWarning(UserWarning):
    """A metric is undefined for a label (e.g. the label is absent from the split): it is NaN."""


def label_metrics(y: np.ndarray, score: np.ndarray, decision: np.ndarray, label: str = "") -> dict[str, float]:
    """All per-label metrics for one label's column (its known cells, when some are unknown)."""
    y = np.asarray(y).astype(int)
    decision = np.asarray(decision).astype(int)
    if len(y) == 0:  # every cell of the label unknown in this split
        warnings.warn(f"label '{label}': no known cell in this split; its metrics are NaN", MetricWarning,
                      stacklevel=2)
        return {k: float("nan") for k in PER_LABEL_METRICS}
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
    out[ECE] = expected_calibration_error(y, score)
    out[BRIER] = brier_score(y, score)
    return {k: float(out[k]) for k in PER_LABEL_METRICS}


# -- calibration ---------------------------------------------------------------------------------
def _weights(n: int, sample_weight: np.ndarray | None) -> np.ndarray:
    if sample_weight is None:
        return np.ones(n, dtype=np.int64)
    w = np.asarray(sample_weight)
    if w.shape != (n,):
        raise ValueError(f"sample_weight has shape {w.shape}; expected ({n},), one weight per score")
    if (w < 0).any():
        raise ValueError("sample_weight must not be negative")
    return w


def equal_mass_bins(score: np.ndarray, n_bins: int = ECE_BINS, sample_weight: np.ndarray | None = None) -> np.ndarray:
    """Each score's bin 0..n_bins-1: n_bins bins holding equal shares of the images (or of the weight).

    An image's bin is floor(n_bins * W_below / W), W_below the weight of the images scored strictly
    lower and W the total: the quantile bins of the scores' empirical distribution. Tied scores have
    one W_below, so a tie stays in one bin — the bin where its lowest rank falls — and the bins it
    would have spilled into hold less or nothing (an empty bin adds nothing to the ECE). Without
    ties the counts differ by at most one (exactly n / n_bins each when n_bins divides n). Integer
    weights (bootstrap multiplicities) use exact integer arithmetic: weights w give the bins of the
    data with each image repeated w times.
    """
    score = np.asarray(score, dtype=np.float64)
    if score.ndim != 1:
        raise ValueError(f"equal_mass_bins: scores have shape {score.shape}; expected one column")
    if n_bins < 1:
        raise ValueError(f"equal_mass_bins: n_bins must be at least 1, got {n_bins}")
    w = _weights(len(score), sample_weight)
    if len(score) == 0:
        return np.zeros(0, dtype=np.int64)
    order = np.argsort(score, kind="stable")
    sorted_scores = score[order]
    integer = np.issubdtype(w.dtype, np.integer) or bool(np.all(w == np.round(w)))
    w_sorted = w[order].astype(np.int64 if integer else np.float64)
    cum = np.concatenate([np.zeros(1, dtype=w_sorted.dtype), np.cumsum(w_sorted)])
    total = cum[-1]
    if total <= 0:
        return np.zeros(len(score), dtype=np.int64)
    below = cum[np.searchsorted(sorted_scores, sorted_scores, side="left")]  # weight scored strictly lower
    if integer:
        sorted_bins = (n_bins * below) // total
    else:
        sorted_bins = np.floor(n_bins * below / total).astype(np.int64)
    bins = np.empty(len(score), dtype=np.int64)
    bins[order] = np.minimum(sorted_bins, n_bins - 1)  # zero-weight images above all the weight
    return bins


def expected_calibration_error(y: np.ndarray, score: np.ndarray, sample_weight: np.ndarray | None = None, *,
                               bins: np.ndarray | None = None, n_bins: int = ECE_BINS) -> float:
    """ECE = sum_b (W_b / W) |mean(y in b) - mean(p in b)| = sum_b |sum_{i in b} w_i (y_i - p_i)| / W.

    ``bins`` (each image's bin) defaults to :func:`equal_mass_bins` of the scores with the same
    weights; the bootstrap passes the whole split's bins instead, so that a replicate only reweights
    the images. NaN when the weights sum to 0.
    """
    y = np.asarray(y, dtype=np.float64)
    score = np.asarray(score, dtype=np.float64)
    w = _weights(len(score), sample_weight)
    if y.shape != score.shape:
        raise ValueError(f"expected_calibration_error: labels {y.shape} and scores {score.shape} differ")
    if bins is None:
        bins = equal_mass_bins(score, n_bins, w)
    total = float(w.sum())
    if total <= 0:
        return float("nan")
    residual = np.bincount(np.asarray(bins), weights=w * (y - score), minlength=n_bins)
    return float(np.abs(residual).sum() / total)


def brier_score(y: np.ndarray, score: np.ndarray, sample_weight: np.ndarray | None = None) -> float:
    """Mean (p - y)^2, weighted by ``sample_weight``; NaN when the weights sum to 0."""
    y = np.asarray(y, dtype=np.float64)
    score = np.asarray(score, dtype=np.float64)
    w = _weights(len(score), sample_weight)
    total = float(w.sum())
    return float(np.sum(w * (score - y) ** 2) / total) if total > 0 else float("nan")


def evaluate(y_true: np.ndarray, scores: np.ndarray, decisions: np.ndarray,
             labels: Sequence[str], known: np.ndarray | None = None) -> list[dict[str, object]]:
    """Rows ``{label, metric, value, n_positive}`` per label, then the ``__global__`` rows; ``known``: False
    at unknown cells, which no metric counts (``n_positive`` counts known positives)."""
    y_true, scores, decisions = (np.asarray(a) for a in (y_true, scores, decisions))
    if not (y_true.shape == scores.shape == decisions.shape) or y_true.shape[1] != len(labels):
        raise ValueError(f"evaluate: shapes differ: y {y_true.shape}, scores {scores.shape}, "
                         f"decisions {decisions.shape}, {len(labels)} labels")
    known = check_known(known, y_true.shape, "evaluate")
    if known is not None:
        y_true = np.where(known, y_true, 0)  # an unknown cell is never a positive
    rows: list[dict[str, object]] = []
    per_metric: dict[str, list[float]] = {m: [] for m in PER_LABEL_METRICS}
    for j, label in enumerate(labels):
        if known is None:
            values = label_metrics(y_true[:, j], scores[:, j], decisions[:, j], label)
        else:
            cells = known[:, j]
            values = label_metrics(y_true[cells, j], scores[cells, j], decisions[cells, j], label)
        n_pos = int(y_true[:, j].sum())
        for metric, value in values.items():
            rows.append({"label": label, "metric": metric, "value": value, "n_positive": n_pos})
            per_metric[metric].append(value)
    for metric, values in per_metric.items():
        if metric == "hamming" and known is None:
            value = float(hamming_loss(y_true, decisions))
        elif metric == "hamming":  # over the known cells
            value = float(((y_true != decisions) & known).sum() / known.sum()) if known.any() else float("nan")
        else:
            value = finite_mean(values)
        rows.append({"label": GLOBAL_LABEL, "metric": metric, "value": value, "n_positive": int(y_true.sum())})
    return rows
