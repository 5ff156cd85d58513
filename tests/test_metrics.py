"""Metrics agree with scikit-learn and reproduce the paper's conventions (PAPER-FACTS)."""

import numpy as np
import pytest
from sklearn.metrics import average_precision_score, f1_score, hamming_loss, roc_auc_score

from mlbench.results.leaderboard import GLOBAL_LABEL
from mlbench.results.metrics import MetricWarning, evaluate
from mlbench_padchest.labels import PA_COUNTS, SPECIFIC_LABELS

# PA images carrying at least one of the 35 specific labels in the public CSV (PAPER-FACTS).
N_SPECIFIC_IMAGES = 85_455


def _by(rows):
    return {(r["label"], r["metric"]): r["value"] for r in rows}


def test_agrees_with_sklearn():
    rng = np.random.default_rng(0)
    y = (rng.random((200, 4)) < [0.5, 0.2, 0.1, 0.05]).astype(int)
    scores = np.clip(y * 0.3 + rng.random((200, 4)) * 0.7, 0, 1)
    decisions = (scores >= 0.5).astype(int)
    got = _by(evaluate(y, scores, decisions, ["a", "b", "c", "d"]))
    for j, label in enumerate("abcd"):
        assert got[(label, "auc")] == pytest.approx(roc_auc_score(y[:, j], scores[:, j]))
        assert got[(label, "auprc")] == pytest.approx(average_precision_score(y[:, j], scores[:, j]))
        assert got[(label, "f1")] == pytest.approx(f1_score(y[:, j], decisions[:, j], average="macro"))
        assert got[(label, "f1_pos")] == pytest.approx(f1_score(y[:, j], decisions[:, j]))
    assert got[(GLOBAL_LABEL, "hamming")] == pytest.approx(hamming_loss(y, decisions))
    assert got[(GLOBAL_LABEL, "auc")] == pytest.approx(np.mean([got[(l, "auc")] for l in "abcd"]))


def _all_negative_at_real_prevalences():
    y = np.zeros((N_SPECIFIC_IMAGES, len(SPECIFIC_LABELS)), dtype=np.uint8)
    for j, label in enumerate(SPECIFIC_LABELS):
        y[: PA_COUNTS[label], j] = 1
    return y


def test_stuck_model_reproduces_table4_f1_and_table5_hamming():
    """An all-negative predictor: Table 4's F1 for the stuck models and Table 5's Hamming 0.046."""
    y = _all_negative_at_real_prevalences()
    zeros = np.zeros_like(y)
    got = _by(evaluate(y, zeros.astype(float), zeros, SPECIFIC_LABELS))
    # Table 4, columns of the models stuck at AUC 0.500
    assert round(got[("normal", "f1")], 3) == 0.374
    assert round(got[("scoliosis", "f1")], 3) == 0.484
    assert round(got[("supra aortic elongation", "f1")], 3) == 0.497
    assert got[("normal", "f1_pos")] == 0.0
    assert round(got[(GLOBAL_LABEL, "hamming")], 3) == 0.046  # Table 5
    assert got[("normal", "auc")] == 0.5  # a constant score


def test_absent_label_warns_by_name_and_is_nan():
    y = np.array([[1, 0], [0, 0], [1, 0]])
    s = np.array([[0.9, 0.1], [0.2, 0.3], [0.8, 0.2]])
    with pytest.warns(MetricWarning, match="label 'rare': no positive"):
        got = _by(evaluate(y, s, (s >= 0.5).astype(int), ["common", "rare"]))
    assert np.isnan(got[("rare", "auc")]) and np.isnan(got[("rare", "auprc")])
    assert got[(GLOBAL_LABEL, "auc")] == got[("common", "auc")] == 1.0  # NaN labels left out of the mean


def test_shape_mismatch_is_an_error():
    with pytest.raises(ValueError, match="shapes differ"):
        evaluate(np.zeros((3, 2)), np.zeros((3, 2)), np.zeros((3, 2)), ["a"])
