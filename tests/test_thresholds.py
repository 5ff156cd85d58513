"""Threshold moving: per-label thresholds from the validation split only."""

import inspect

import numpy as np
import pytest
from sklearn.metrics import f1_score

from mlbench.results.thresholds import apply, fit_label, fit_thresholds


def test_only_validation_data_is_an_input():
    # known_val: the validation split's mask of unknown cells, validation data too
    assert list(inspect.signature(fit_thresholds).parameters) == ["y_val", "p_val", "objective", "known_val"]


def test_a_hand_made_label():
    y = np.array([0, 0, 1, 0, 1, 1])
    p = np.array([0.1, 0.2, 0.3, 0.35, 0.6, 0.9])
    # thresholds in (0.2, 0.3] flag 0.3, 0.35, 0.6, 0.9: tp 3, fp 1 -> F1 6/7, the best; the gap's
    # point closest to 0.5 is its upper end 0.3
    assert fit_label(y, p) == pytest.approx(0.3)
    decisions = apply(p[:, None], np.array([fit_label(y, p)]))[:, 0]
    assert f1_score(y, decisions) == pytest.approx(6 / 7)


def test_ties_go_to_the_threshold_closest_to_half():
    # every threshold in (0.2, 0.8] separates the classes perfectly: 0.5 itself is chosen
    y = np.array([0, 0, 1, 1])
    p = np.array([0.1, 0.2, 0.8, 0.9])
    assert fit_label(y, p) == 0.5
    # perfect separation only in (0.6, 0.7]: the point closest to 0.5 is just above 0.6
    p = np.array([0.55, 0.6, 0.7, 0.9])
    t = fit_label(y, p)
    assert 0.6 < t <= 0.6 + 1e-12 and apply(p[:, None], np.array([t]))[:, 0].tolist() == [0, 0, 1, 1]


def test_a_label_without_positives_keeps_half():
    y = np.array([[0, 1], [0, 0], [0, 1]])
    p = np.array([[0.9, 0.2], [0.1, 0.1], [0.7, 0.3]])
    t = fit_thresholds(y, p)
    assert t[0] == 0.5
    assert 0.1 < t[1] <= 0.2


def test_fitted_thresholds_reach_the_best_f1_of_any_threshold():
    rng = np.random.default_rng(0)
    y = (rng.random((300, 4)) < [0.5, 0.2, 0.05, 0.01]).astype(int)
    p = np.clip(0.3 * y + rng.random((300, 4)) * 0.8, 0, 1).round(2)  # ties included
    for objective, average in (("f1_pos", "binary"), ("f1", "macro")):
        t = fit_thresholds(y, p, objective=objective)
        decisions = apply(p, t)
        for j in range(4):
            best = max(f1_score(y[:, j], (p[:, j] >= c).astype(int), average=average, zero_division=0.0)
                       for c in np.concatenate([np.unique(p[:, j]), [1.1]]))
            got = f1_score(y[:, j], decisions[:, j], average=average, zero_division=0.0)
            assert got == pytest.approx(best), (objective, j)


def test_mistakes_are_one_line_errors():
    with pytest.raises(ValueError, match="must both be"):
        fit_thresholds(np.zeros((3, 2)), np.zeros((3, 3)))
    with pytest.raises(ValueError, match="NaN"):
        fit_thresholds(np.zeros((2, 1)), np.array([[np.nan], [0.2]]))
    with pytest.raises(ValueError, match="objective"):
        fit_thresholds(np.zeros((2, 1)), np.zeros((2, 1)), objective="auc")
    with pytest.raises(ValueError, match="one threshold per label"):
        apply(np.zeros((2, 3)), np.array([0.5, 0.5]))
