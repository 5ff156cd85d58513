"""Patient-level bootstrap intervals: exact agreement with scikit-learn and evaluate, and real patient resampling."""

import warnings

import numpy as np
import pytest
from sklearn.metrics import average_precision_score, f1_score, roc_auc_score

from mlbench.results.leaderboard import GLOBAL_LABEL
from mlbench.results.metrics import MetricWarning, evaluate, label_metrics
from mlbench.results.stats import (GROUP_LABELS, PatientBootstrap, decision_metrics, group_label, label_groups,
                           metric_intervals, patient_bootstrap, ranking_metrics, weighted_auc,
                           weighted_average_precision)


@pytest.fixture(autouse=True)
def _quiet():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", MetricWarning)
        yield


def _tied_scores(rng, n):
    """Scores on a coarse grid (many ties), and sometimes binary as the PTC ensembles give."""
    if rng.random() < 0.2:
        return rng.integers(0, 2, n).astype(float)
    return np.round(rng.random(n), int(rng.integers(1, 3)))


def test_weighted_auc_and_ap_equal_scikit_learn_with_ties():
    rng = np.random.default_rng(7)
    compared = 0
    for trial in range(200):
        n = int(rng.integers(4, 150))
        y = rng.random(n) < rng.uniform(0.05, 0.7)
        score = _tied_scores(rng, n)
        weights = rng.integers(0, 4, n) if trial % 2 else rng.random(n) * 3
        if not (weights[y].sum() > 0 and weights[~y].sum() > 0):
            continue
        assert weighted_auc(y, score, weights) == pytest.approx(roc_auc_score(y, score, sample_weight=weights),
                                                                abs=1e-12)
        assert weighted_average_precision(y, score, weights) == pytest.approx(
            average_precision_score(y, score, sample_weight=weights), abs=1e-12)
        compared += 1
    assert compared > 150


def test_many_weight_rows_at_once_equal_one_at_a_time():
    rng = np.random.default_rng(3)
    y = rng.random(60) < 0.3
    score = _tied_scores(rng, 60)
    weights = rng.integers(0, 3, (25, 60))
    rows = weighted_auc(y, score, weights)
    for b in range(25):
        w = weights[b]
        if w[y].sum() and w[~y].sum():
            assert rows[b] == pytest.approx(roc_auc_score(y, score, sample_weight=w), abs=1e-12)
        else:
            assert np.isnan(rows[b])  # a replicate that drew no positive (or no negative) has no AUC


def test_decision_metrics_equal_scikit_learn_with_weights():
    rng = np.random.default_rng(5)
    n, n_labels, n_patients = 80, 4, 30
    codes = rng.integers(0, n_patients, n)
    y = (rng.random((n, n_labels)) < 0.3).astype(int)
    d = (rng.random((n, n_labels)) < 0.4).astype(int)
    counts = rng.integers(0, 3, (6, n_patients)).astype(np.int32)
    got = decision_metrics(y, d, PatientBootstrap(codes, counts))
    for b in range(6):
        w = counts[b][codes]
        for j in range(n_labels):
            assert got["f1"][b, j] == pytest.approx(
                f1_score(y[:, j], d[:, j], average="macro", labels=[0, 1], sample_weight=w, zero_division=0.0),
                abs=1e-12)
            assert got["f1_pos"][b, j] == pytest.approx(
                f1_score(y[:, j], d[:, j], sample_weight=w, zero_division=0.0), abs=1e-12)
            assert got["hamming"][b, j] == pytest.approx(np.average(y[:, j] != d[:, j], weights=w), abs=1e-12)


def test_a_replicate_of_ones_reproduces_the_point_metrics():
    rng = np.random.default_rng(11)
    n, n_labels = 120, 5
    y = (rng.random((n, n_labels)) < 0.25).astype(int)
    scores = _tied_scores(rng, n * n_labels).reshape(n, n_labels)
    d = (scores >= 0.5).astype(int)
    ones = PatientBootstrap(np.arange(n), np.ones((1, n), dtype=np.int32))
    reps = {**ranking_metrics(y, scores, ones), **decision_metrics(y, d, ones)}
    for j in range(n_labels):
        point = label_metrics(y[:, j], scores[:, j], d[:, j])
        for metric in ("auc", "auprc", "f1", "f1_pos", "hamming"):
            assert reps[metric][0, j] == pytest.approx(point[metric], abs=1e-12), metric


def _example(rng, n=200, n_labels=6, n_patients=90):
    y = (rng.random((n, n_labels)) < np.linspace(0.4, 0.03, n_labels)).astype(int)
    y[:, -1] = 0  # a label absent from the test split: NaN AUC, as evaluate gives
    scores = np.clip(0.35 * y + rng.normal(0.3, 0.2, y.shape), 0, 1)
    d = (scores >= 0.5).astype(int)
    patients = np.char.add("p", rng.integers(0, n_patients, n).astype(str))
    return y, scores, d, patients


LABELS = ["a", "b", "c", "d", "e", "absent"]
TRAIN = [500, 300, 200, 90, 40, 10]


def test_values_are_exactly_evaluates_and_groups_follow():
    y, scores, d, patients = _example(np.random.default_rng(0))
    rows = metric_intervals(y, scores, d, patients, LABELS, train_counts=TRAIN, n_boot=100, seed=0)
    plain = evaluate(y, scores, d, LABELS)
    assert [(r["label"], r["metric"]) for r in rows[:len(plain)]] == [(r["label"], r["metric"]) for r in plain]
    for got, want in zip(rows, plain):
        assert got["n_positive"] == want["n_positive"]
        if np.isnan(want["value"]):
            assert np.isnan(got["value"]) and got["ci_low"] is None and got["ci_high"] is None
        else:
            assert got["value"] == want["value"]  # identical, not approximately: the runner swaps one for the other
            assert got["ci_low"] <= got["ci_high"]
    group_rows = rows[len(plain):]
    assert {r["label"] for r in group_rows} == set(GROUP_LABELS)
    value = {(r["label"], r["metric"]): r["value"] for r in rows}
    # frequent = a, b; medium = c, d; rare = e, absent (absent has no AUC: left out of the mean)
    assert value[(group_label("frequent"), "auc")] == pytest.approx(np.mean([value[("a", "auc")], value[("b", "auc")]]))
    assert value[(group_label("rare"), "auc")] == pytest.approx(value[("e", "auc")])
    assert value[(group_label("rare"), "hamming")] == pytest.approx(
        np.mean([value[("e", "hamming")], value[("absent", "hamming")]]))
    rare = next(r for r in group_rows if r["label"] == group_label("rare") and r["metric"] == "auc")
    assert rare["n_positive"] == int(y[:, 4].sum() + y[:, 5].sum())


def test_intervals_are_deterministic_and_seeded():
    y, scores, d, patients = _example(np.random.default_rng(1))
    one = metric_intervals(y, scores, d, patients, LABELS, train_counts=TRAIN, n_boot=60, seed=4)
    two = metric_intervals(y, scores, d, patients, LABELS, train_counts=TRAIN, n_boot=60, seed=4)
    other = metric_intervals(y, scores, d, patients, LABELS, train_counts=TRAIN, n_boot=60, seed=5)
    plain = lambda rows: [{k: (None if isinstance(v, float) and np.isnan(v) else v) for k, v in r.items()}  # noqa: E731
                          for r in rows]
    assert plain(one) == plain(two)
    assert [r["ci_low"] for r in one] != [r["ci_low"] for r in other]


def test_image_order_does_not_change_the_intervals():
    y, scores, d, patients = _example(np.random.default_rng(2))
    order = np.random.default_rng(9).permutation(len(y))
    a = metric_intervals(y, scores, d, patients, LABELS, train_counts=TRAIN, n_boot=80, seed=0)
    b = metric_intervals(y[order], scores[order], d[order], patients[order], LABELS, train_counts=TRAIN,
                         n_boot=80, seed=0)
    for ra, rb in zip(a, b):
        for key in ("value", "ci_low", "ci_high"):
            if ra[key] is None or np.isnan(ra[key]):
                assert rb[key] is None or np.isnan(rb[key])
            else:
                assert rb[key] == pytest.approx(ra[key], abs=1e-12)


def test_patients_are_resampled_not_images():
    """Doubling every patient's image leaves patient-level intervals unchanged; image-level ones shrink."""
    rng = np.random.default_rng(4)
    n = 120
    y = (rng.random((n, 2)) < 0.3).astype(int)
    scores = np.clip(0.3 * y + rng.normal(0.35, 0.25, y.shape), 0, 1)
    d = (scores >= 0.5).astype(int)
    patients = np.array([f"p{i:03d}" for i in range(n)])
    twice = lambda a: np.concatenate([a, a])  # noqa: E731 - each patient now has two identical images
    single = metric_intervals(y, scores, d, patients, ["x", "z"], train_counts=[2, 1], n_boot=200, seed=0)
    doubled = metric_intervals(twice(y), twice(scores), twice(d), twice(patients), ["x", "z"], train_counts=[2, 1],
                               n_boot=200, seed=0)
    as_images = metric_intervals(twice(y), twice(scores), twice(d), np.arange(2 * n).astype(str), ["x", "z"],
                                 train_counts=[2, 1], n_boot=200, seed=0)
    for s, p, i in zip(single, doubled, as_images):
        if s["metric"] == "auc" and s["label"] == "x":
            assert p["ci_low"] == pytest.approx(s["ci_low"], abs=1e-12)
            assert p["ci_high"] == pytest.approx(s["ci_high"], abs=1e-12)
            assert i["ci_high"] - i["ci_low"] < 0.85 * (s["ci_high"] - s["ci_low"])


def test_the_interval_covers_the_estimate_and_narrows_with_more_patients():
    rng = np.random.default_rng(8)
    widths = []
    for n in (100, 1600):
        y = (rng.random((n, 1)) < 0.3).astype(int)
        scores = np.clip(0.3 * y + rng.normal(0.35, 0.2, y.shape), 0, 1)
        rows = metric_intervals(y, scores, (scores > 0.5).astype(int), np.arange(n).astype(str), ["x"],
                                train_counts=[5], n_boot=300, seed=0)
        auc = next(r for r in rows if r["label"] == "x" and r["metric"] == "auc")
        assert auc["ci_low"] < auc["value"] < auc["ci_high"]
        widths.append(auc["ci_high"] - auc["ci_low"])
    assert widths[1] < widths[0] / 2.5  # ~1/sqrt(16) in theory


def test_global_hamming_interval_is_over_cells_and_rare_labels_keep_a_macro_interval():
    rng = np.random.default_rng(6)
    y, scores, d, patients = _example(rng)
    y[:, 4] = 0
    y[0, 4] = 1  # one positive image: most replicates lack it, the macro AUC must stay defined
    rows = metric_intervals(y, scores, d, patients, LABELS, train_counts=TRAIN, n_boot=150, seed=0)
    glob = {r["metric"]: r for r in rows if r["label"] == GLOBAL_LABEL}
    assert glob["auc"]["ci_low"] is not None and glob["auc"]["ci_low"] <= glob["auc"]["ci_high"]
    assert glob["hamming"]["value"] == pytest.approx(np.mean(y != d))
    assert glob["hamming"]["ci_low"] <= glob["hamming"]["value"] <= glob["hamming"]["ci_high"]


def test_no_replicates_means_no_intervals():
    y, scores, d, patients = _example(np.random.default_rng(3))
    rows = metric_intervals(y, scores, d, patients, LABELS, train_counts=TRAIN, n_boot=0)
    assert all(r["ci_low"] is None and r["ci_high"] is None for r in rows)


def test_label_groups_are_thirds_by_training_count():
    groups = label_groups([5, 50, 20, 20, 1, 7, 100], list("abcdefg"))
    assert groups == {"frequent": ["g", "b", "c"], "medium": ["d", "f"], "rare": ["a", "e"]}
    assert label_groups([3, 9], ["x", "y"]) == {"frequent": ["y"], "medium": ["x"]}  # no empty group
    with pytest.raises(ValueError, match="one count per label"):
        label_groups([1, 2], ["x", "y", "z"])


def test_bad_input_is_named():
    y, scores, d, patients = _example(np.random.default_rng(3))
    with pytest.raises(ValueError, match="patient ids"):
        metric_intervals(y, scores, d, patients[:-1], LABELS, train_counts=TRAIN)
    bad = scores.copy()
    bad[3, 2] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        metric_intervals(y, bad, d, patients, LABELS, train_counts=TRAIN)
    with pytest.raises(ValueError, match="n_boot"):
        patient_bootstrap(["a"], n_boot=-1)


def test_bootstrap_draws_whole_patients():
    boot = patient_bootstrap(["b", "a", "b", "c", "a"], n_boot=50, seed=1)
    assert boot.counts.shape == (50, 3) and (boot.counts.sum(axis=1) == 3).all()
    weights = boot.image_weights(0, 50)
    # images of one patient always carry the same multiplicity
    assert (weights[:, 0] == weights[:, 2]).all() and (weights[:, 1] == weights[:, 4]).all()
