"""Built-in ensembles of Liz et al. 2023, Section 3.4.

An ensemble plugin registers ``factory(**options)`` returning an object with
``combine(probs) -> (scores, predictions)``: ``probs`` is (models, samples, labels) in [0, 1];
``scores`` (samples, labels) ranks samples for AUC; ``predictions`` is the 0/1 decision.
The PTC ensembles decide before combining, so their score is the binary decision itself (the
paper's PTC AUCs are AUCs of that binary score).
"""

from __future__ import annotations

import numpy as np


def _check(probs: np.ndarray, name: str) -> np.ndarray:
    probs = np.asarray(probs, dtype=np.float64)
    if probs.ndim != 3 or probs.shape[0] < 1:
        raise ValueError(f"{name}: probs must be (models, samples, labels), got shape {probs.shape}")
    if not np.isfinite(probs).all() or probs.min() < 0 or probs.max() > 1:
        raise ValueError(f"{name}: probs must be finite probabilities in [0, 1]")
    return probs


class CombineThenPredict:
    """CTP: average the models' probabilities, then threshold."""

    def __init__(self, threshold: float = 0.5) -> None:
        self.threshold = float(threshold)

    def combine(self, probs: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        scores = _check(probs, "ctp").mean(axis=0)
        return scores, (scores >= self.threshold).astype(np.uint8)


class LabelwiseVote:
    """PTC-lw: each label by strict majority of the models' 0/1 decisions (a tie is negative)."""

    def __init__(self, threshold: float = 0.5) -> None:
        self.threshold = float(threshold)

    def combine(self, probs: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        probs = _check(probs, "ptc-lw")
        votes = (probs >= self.threshold).sum(axis=0)
        predictions = (2 * votes > probs.shape[0]).astype(np.uint8)
        return predictions.astype(np.float64), predictions


class ModeOfLabelSets:
    """PTC-mode: per sample, the label set predicted by the most models.

    Ties go to the set of the earliest model (in the order the models are given) among the
    tied sets, so the result is deterministic.
    """

    def __init__(self, threshold: float = 0.5) -> None:
        self.threshold = float(threshold)

    def combine(self, probs: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        decisions = _check(probs, "ptc-mode") >= self.threshold  # (M, N, L)
        same_set = (decisions[:, None] == decisions[None, :]).all(axis=-1)  # (M, M, N)
        support = same_set.sum(axis=1)  # (M, N): how many models predict model m's set
        winner = support.argmax(axis=0)  # argmax takes the first (earliest) model on ties
        predictions = decisions[winner, np.arange(decisions.shape[1])].astype(np.uint8)
        return predictions.astype(np.float64), predictions
