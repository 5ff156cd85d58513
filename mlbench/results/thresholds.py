"""Threshold moving: per-label decision thresholds chosen on the validation split.

:func:`fit_thresholds` takes only validation labels and scores (test labels never choose
anything) and returns, per label, the threshold t for which the decisions ``score >= t`` (the
rule mlbench uses everywhere) maximise that label's F1 on the validation split:

- ``objective="f1_pos"`` (default): the binary F1 of the positive class;
- ``objective="f1"``: the mean of both classes' F1 (the paper's per-label F1, mlbench.results.metrics).

Every threshold inside one gap between consecutive distinct scores gives the same decisions, so
the search runs over those gaps; among the gaps with the best F1 (equal up to rounding) the
threshold closest to 0.5 wins, and within a gap the point closest to 0.5 is taken (0.5 itself
when the gap contains it). A label with no positive validation image keeps 0.5. With unknown
cells (``known``, False where a label is unknown) each label is fitted on its known cells.
"""

from __future__ import annotations

import numpy as np

from mlbench.data.labels import check_known
from mlbench.results.leaderboard import DECISION_METRICS, TUNED_SUFFIX
from mlbench.results.stats import metric_intervals

DEFAULT_THRESHOLD = 0.5
OBJECTIVES = ("f1_pos", "f1")


def _matrices(y: np.ndarray, p: np.ndarray, who: str) -> tuple[np.ndarray, np.ndarray]:
    y, p = np.asarray(y), np.asarray(p, dtype=np.float64)
    if y.ndim != 2 or y.shape != p.shape:
        raise ValueError(f"{who}: labels {y.shape} and scores {p.shape} must both be (images, labels)")
    if y.size and not np.isin(y, (0, 1)).all():
        raise ValueError(f"{who}: labels must hold only 0 and 1")
    if not np.isfinite(p).all():
        raise ValueError(f"{who}: scores contain NaN or infinity")
    return y.astype(bool), p


def _closest_in_gap(low: np.ndarray, high: np.ndarray) -> np.ndarray:
    """The point of each gap (low, high] closest to 0.5; low may be -inf, high +inf."""
    inside = np.clip(DEFAULT_THRESHOLD, low, high)
    # the gap is open at low: step just above it
    return np.where(inside <= low, np.nextafter(low, np.inf), inside)


def fit_label(y: np.ndarray, score: np.ndarray, objective: str = "f1_pos") -> float:
    """The threshold of the module docstring for one label's validation column."""
    y = np.asarray(y).astype(bool)
    score = np.asarray(score, dtype=np.float64)
    n_pos = int(y.sum())
    if n_pos == 0:
        return DEFAULT_THRESHOLD
    values, first = np.unique(score, return_inverse=True)
    # positives / negatives scored at each distinct value; predicted positive at the k-th gap's
    # threshold (values[k-1], values[k]] are the images scored >= values[k]
    pos_at = np.bincount(first, weights=y, minlength=len(values))
    all_at = np.bincount(first, minlength=len(values)).astype(np.float64)
    tp = np.concatenate([np.cumsum(pos_at[::-1])[::-1], [0.0]])
    flagged = np.concatenate([np.cumsum(all_at[::-1])[::-1], [0.0]])
    fp = flagged - tp
    fn = n_pos - tp
    f1 = 2 * tp / (2 * tp + fp + fn)
    if objective == "f1":
        tn = len(y) - n_pos - fp
        with np.errstate(invalid="ignore", divide="ignore"):
            f1_neg = np.where(2 * tn + fp + fn > 0, 2 * tn / (2 * tn + fp + fn), 0.0)
        f1 = (f1 + f1_neg) / 2
    low = np.concatenate([[-np.inf], values])
    high = np.concatenate([values, [np.inf]])
    candidates = _closest_in_gap(low, high)
    best = np.isclose(f1, f1.max(), rtol=1e-12, atol=0.0)
    chosen = candidates[best]
    return float(chosen[np.argmin(np.abs(chosen - DEFAULT_THRESHOLD))])


def fit_thresholds(y_val: np.ndarray, p_val: np.ndarray, *, objective: str = "f1_pos",
                   known_val: np.ndarray | None = None) -> np.ndarray:
    """Per-label thresholds (labels,) maximising validation F1 (module docstring)."""
    if objective not in OBJECTIVES:
        raise ValueError(f"fit_thresholds: objective must be one of {', '.join(OBJECTIVES)}, got {objective!r}")
    y, p = _matrices(y_val, p_val, "fit_thresholds")
    if y.shape[0] == 0:
        raise ValueError("fit_thresholds: the validation split has no image")
    known = check_known(known_val, y.shape, "fit_thresholds")
    if known is None:
        return np.asarray([fit_label(y[:, j], p[:, j], objective) for j in range(y.shape[1])], dtype=np.float64)
    return np.asarray([fit_label(y[known[:, j], j], p[known[:, j], j], objective) for j in range(y.shape[1])],
                      dtype=np.float64)


def apply(p: np.ndarray, thresholds: np.ndarray) -> np.ndarray:
    """0/1 decisions (uint8) ``p >= thresholds`` per label, for scores (images, labels)."""
    p = np.asarray(p, dtype=np.float64)
    thresholds = np.asarray(thresholds, dtype=np.float64)
    if p.ndim != 2 or thresholds.shape != (p.shape[1],):
        raise ValueError(f"apply: scores {p.shape} need one threshold per label, got thresholds {thresholds.shape}")
    if not np.isfinite(thresholds).all():
        raise ValueError("apply: thresholds contain NaN or infinity")
    return (p >= thresholds[None, :]).astype(np.uint8)


# -- the rules a run can name -----------------------------------------------------------------------
RULES = ("fixed", "val-f1")  # fixed: the recipe's threshold (the paper's 0.5); val-f1: fit_thresholds


def tuned_rows(y_val: np.ndarray, scores_val: np.ndarray, y_test: np.ndarray, scores_test: np.ndarray,
               patient_ids, labels, *, train_counts, n_boot: int, seed: int, known_val: np.ndarray | None = None,
               known_test: np.ndarray | None = None) -> tuple[np.ndarray, list[dict]]:
    """Thresholds fitted on validation, then the test decision metrics at them, as ``*_tuned`` rows.

    Returns (thresholds, rows); rows are :func:`mlbench.results.stats.metric_intervals` rows of the
    decision metrics only, renamed ``f1_tuned``, ``f1_pos_tuned``, ``hamming_tuned``.
    """
    thresholds = fit_thresholds(y_val, scores_val, known_val=known_val)
    decided = apply(scores_test, thresholds)
    rows = [{**row, "metric": row["metric"] + TUNED_SUFFIX}
            for row in metric_intervals(y_test, scores_test, decided, patient_ids, labels, train_counts=train_counts,
                                        n_boot=n_boot, seed=seed, known=known_test)
            if row["metric"] in DECISION_METRICS]
    return thresholds, rows
