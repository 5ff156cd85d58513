"""Calibration metrics (``ece_15``, ``brier``): their definitions, their bootstrap, their direction in paired
comparisons, and the report's reliability diagrams."""

from __future__ import annotations

import re
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import brier_score_loss

from mlbench.data.splits import split_table
from mlbench.foundations.io import write_json, write_parquet
from mlbench.report import build, write_report
from mlbench.results import leaderboard, predictions
from mlbench.results.leaderboard import COLUMNS, GLOBAL_LABEL
from mlbench.results.metrics import (BRIER, ECE, ECE_BINS, MetricWarning, brier_score, equal_mass_bins, evaluate,
                                     expected_calibration_error, lower_is_better)
from mlbench.results.paired import DEFAULT_METRICS, HELPS, HURTS, paired_differences, verdict
from mlbench.results.rescoring import score_entries
from mlbench.results.stats import (GROUP_LABELS, PatientBootstrap, calibration_metrics, group_label, label_groups,
                                   metric_intervals)


@pytest.fixture(autouse=True)
def _quiet():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", MetricWarning)
        yield


def test_names_carry_the_bin_count_and_match_the_schema():
    assert ECE_BINS == 15 and ECE == "ece_15" and BRIER == "brier"
    assert (ECE, BRIER) == leaderboard.CALIBRATION_METRICS and set(leaderboard.CALIBRATION_METRICS) <= set(
        leaderboard.METRICS)
    assert lower_is_better(ECE) and lower_is_better(BRIER) and lower_is_better("hamming")
    assert not lower_is_better("auc") and not lower_is_better("f1")


# -- the definitions -------------------------------------------------------------------------------------------
def test_a_calibrated_predictor_has_ece_near_zero_and_p_squared_has_one_sixth():
    rng = np.random.default_rng(0)
    p = rng.random(200_000)
    assert expected_calibration_error(rng.random(p.size) < p, p) < 0.01
    # y ~ Bernoulli(p^2): every bin overestimates, so ECE = E[p - p^2] = 1/2 - 1/3 whatever the bins
    assert expected_calibration_error(rng.random(p.size) < p**2, p) == pytest.approx(1 / 6, abs=0.005)


def test_a_constant_score_is_one_bin_and_its_ece_is_the_gap_to_the_rate():
    y = np.r_[np.ones(30), np.zeros(70)]
    p = np.full(100, 0.8)
    assert set(equal_mass_bins(p)) == {0}  # a tie is never split across bins
    assert expected_calibration_error(y, p) == pytest.approx(0.5, abs=1e-12)


def test_equal_mass_bins_hold_equal_counts_and_keep_ties_together():
    rng = np.random.default_rng(1)
    bins = equal_mass_bins(rng.random(15 * 40))
    assert np.bincount(bins, minlength=ECE_BINS).tolist() == [40] * ECE_BINS
    assert set(np.bincount(equal_mass_bins(rng.random(1000)))) <= {66, 67}
    score = np.round(rng.random(600), 1)  # 11 distinct values: ties straddle the ideal edges
    bins = equal_mass_bins(score)
    for value in np.unique(score):
        assert len(set(bins[score == value])) == 1
    order = np.argsort(score)
    assert (np.diff(bins[order]) >= 0).all()  # higher scores never in a lower bin
    # each tie lies where its lowest rank falls: floor(15 * (scores strictly below) / n)
    below = np.array([(score < s).sum() for s in score])
    assert (bins == (ECE_BINS * below) // len(score)).all()


def test_ece_is_the_weighted_mean_gap_per_bin():
    rng = np.random.default_rng(2)
    p = rng.random(450)
    y = rng.random(450) < 0.3
    bins = equal_mass_bins(p)
    gaps = [np.mean(bins == b) * abs(y[bins == b].mean() - p[bins == b].mean()) for b in range(ECE_BINS)]
    assert expected_calibration_error(y, p) == pytest.approx(sum(gaps), abs=1e-12)


def test_brier_equals_scikit_learn_per_label_with_and_without_weights():
    rng = np.random.default_rng(3)
    y = (rng.random((300, 4)) < [0.5, 0.2, 0.05, 0.0]).astype(int)  # the last label has no positive
    p = np.clip(0.3 * y + 0.7 * rng.random(y.shape), 0, 1)
    rows = {(r["label"], r["metric"]): r["value"] for r in evaluate(y, p, (p >= 0.5).astype(int), list("abcd"))}
    w = rng.integers(0, 4, 300)
    for j, label in enumerate("abcd"):
        assert rows[(label, BRIER)] == pytest.approx(brier_score_loss(y[:, j], p[:, j], pos_label=1), abs=1e-12)
        assert brier_score(y[:, j], p[:, j], w) == pytest.approx(
            brier_score_loss(y[:, j], p[:, j], sample_weight=w, pos_label=1), abs=1e-12)
        assert rows[(label, ECE)] == pytest.approx(expected_calibration_error(y[:, j], p[:, j]), abs=0)
    # defined without a positive: the scores' own mean and mean square are the ECE and Brier
    assert rows[("d", ECE)] == pytest.approx(p[:, 3].mean()) and rows[("d", BRIER)] == pytest.approx((p[:, 3] ** 2).mean())
    assert rows[(GLOBAL_LABEL, ECE)] == pytest.approx(np.mean([rows[(lab, ECE)] for lab in "abcd"]))


def test_integer_weights_equal_the_data_repeated_that_many_times():
    rng = np.random.default_rng(4)
    for _ in range(30):
        n = int(rng.integers(20, 200))
        p = np.round(rng.random(n), int(rng.integers(1, 3)))  # ties
        y = rng.random(n) < p
        w = rng.integers(0, 4, n)
        y_rep, p_rep = np.repeat(y, w), np.repeat(p, w)
        assert brier_score(y, p, w) == pytest.approx(brier_score(y_rep, p_rep), abs=1e-12)
        # bins cut by weighted mass are the bins of the repeated data
        assert (np.repeat(equal_mass_bins(p, sample_weight=w), w) == equal_mass_bins(p_rep)).all()
        assert expected_calibration_error(y, p, w) == pytest.approx(expected_calibration_error(y_rep, p_rep), abs=1e-12)
        # the bootstrap's way: the whole split's bins carried along with each repeated image
        fixed = equal_mass_bins(p)
        assert expected_calibration_error(y, p, w, bins=fixed) == pytest.approx(
            expected_calibration_error(y_rep, p_rep, bins=np.repeat(fixed, w)), abs=1e-12)


# -- the bootstrap ---------------------------------------------------------------------------------------------
def test_replicates_reweight_the_images_with_the_whole_splits_bins():
    rng = np.random.default_rng(5)
    n, n_labels, n_patients = 240, 3, 90
    codes = rng.integers(0, n_patients, n)
    y = (rng.random((n, n_labels)) < [0.4, 0.1, 0.0]).astype(int)
    p = np.round(rng.random((n, n_labels)), 1)
    counts = rng.integers(0, 3, (8, n_patients)).astype(np.int32)
    got = calibration_metrics(y, p, PatientBootstrap(codes, counts))
    for b in range(8):
        w = counts[b][codes]
        for j in range(n_labels):
            fixed = equal_mass_bins(p[:, j])
            assert got[ECE][b, j] == pytest.approx(expected_calibration_error(y[:, j], p[:, j], w, bins=fixed), abs=1e-12)
            assert got[BRIER][b, j] == pytest.approx(brier_score(y[:, j], p[:, j], w), abs=1e-12)
    ones = calibration_metrics(y, p, PatientBootstrap(np.arange(n), np.ones((1, n), dtype=np.int32)))
    for j in range(n_labels):
        assert ones[ECE][0, j] == pytest.approx(expected_calibration_error(y[:, j], p[:, j]), abs=1e-12)
        assert ones[BRIER][0, j] == pytest.approx(brier_score(y[:, j], p[:, j]), abs=1e-12)


LABELS = ["a", "b", "c", "d", "e", "absent"]
TRAIN = [500, 300, 200, 90, 40, 10]


def _overconfident(rng, n=600, n_patients=300):
    """Scores sqrt(q) for a true rate q: every label clearly overestimated (ECE well above its noise)."""
    q = rng.random((n, len(LABELS))) * np.linspace(0.8, 0.1, len(LABELS))
    y = (rng.random(q.shape) < q).astype(int)
    y[:, -1] = 0
    patients = np.char.add("p", rng.integers(0, n_patients, n).astype(str))
    return y, np.sqrt(q), patients


def test_metric_intervals_give_calibration_rows_per_label_group_and_macro():
    y, p, patients = _overconfident(np.random.default_rng(6))
    rows = metric_intervals(y, p, (p >= 0.5).astype(int), patients, LABELS, train_counts=TRAIN, n_boot=200, seed=0)
    got = {(r["label"], r["metric"]): r for r in rows}
    groups = label_groups(TRAIN, LABELS)
    for metric, f in ((ECE, expected_calibration_error), (BRIER, brier_score)):
        for j, label in enumerate(LABELS):
            assert got[(label, metric)]["value"] == f(y[:, j], p[:, j])
        assert got[(GLOBAL_LABEL, metric)]["value"] == pytest.approx(np.mean([got[(lab, metric)]["value"]
                                                                               for lab in LABELS]))
        for name, members in groups.items():
            assert got[(group_label(name), metric)]["value"] == pytest.approx(
                np.mean([got[(lab, metric)]["value"] for lab in members]))
        for label in LABELS + [GLOBAL_LABEL, *GROUP_LABELS]:
            row = got[(label, metric)]
            assert row["ci_low"] is not None, (label, metric)  # defined without a positive too ("absent")
            assert row["ci_low"] <= row["value"] <= row["ci_high"], (label, metric)
            assert row["ci_low"] < row["ci_high"]


# -- paired comparisons: lower is better -----------------------------------------------------------------------
def test_better_calibration_helps_when_the_difference_is_below_zero():
    assert verdict(ECE, -0.02, -0.01, 0.01) == HELPS and verdict(ECE, 0.01, 0.02, 0.01) == HURTS
    assert verdict(BRIER, -0.02, -0.01, 0.01) == HELPS and verdict("auc", -0.02, -0.01, 0.01) == HURTS
    assert ECE in DEFAULT_METRICS and BRIER in DEFAULT_METRICS
    rng = np.random.default_rng(7)
    n, labels = 1200, ["x", "y", "z"]
    logit = rng.normal(-1.0, 1.5, (n, 3))
    y = (rng.random(logit.shape) < 1 / (1 + np.exp(-logit))).astype(int)
    calibrated = 1 / (1 + np.exp(-logit))  # the true probabilities: calibrated, and the best ranking
    noisy = 1 / (1 + np.exp(-(0.3 * logit + 1.0 + rng.normal(0, 1.0, logit.shape))))  # worse on both counts
    patients = np.char.add("p", np.arange(n).astype(str))

    def macro(a, b):
        table = paired_differences(y, a, b, (a >= 0.5).astype(int), (b >= 0.5).astype(int), patients, labels,
                                   [300, 200, 100], n_boot=300).table
        return table[table["scope"] == "macro"].set_index("metric")

    better = macro(noisy, calibrated)  # B - A with B the calibrated run
    assert better.loc[ECE, "difference"] < 0 and better.loc[ECE, "ci_high"] < 0
    assert better.loc[ECE, "verdict"] == HELPS and better.loc[BRIER, "verdict"] == HELPS
    assert better.loc["auc", "difference"] > 0 and better.loc["auc", "verdict"] == HELPS
    worse = macro(calibrated, noisy)
    assert worse.loc[ECE, "difference"] > 0 and worse.loc[ECE, "verdict"] == HURTS
    assert worse.loc["auc", "verdict"] == HURTS


# -- the report ------------------------------------------------------------------------------------------------
REPORT_LABELS = ["cardiomegaly", "normal", "nodule", "effusion", "mass", "hernia"]


def _row(**values):
    base = {c: None for c in COLUMNS}
    base.update(benchmark="padchest-specific", benchmark_version="1.0", variant="crop+aug", dataset_kind="synthetic",
                split_hash="abc", source="run", run_id="r1", schema_version=1)
    base.update(values)
    return base


@pytest.fixture(scope="module")
def stored_run(tmp_path_factory) -> Path:
    """A run directory in the runner's file formats without training: a calibrated and an overconfident entry."""
    rng = np.random.default_rng(8)
    n, n_train = 900, 300
    frame = pd.DataFrame({"image_id": [f"img{i:04d}.png" for i in range(n)],
                          "patient_id": [f"p{i // 2:04d}" for i in range(n)]})
    q = rng.random((n, len(REPORT_LABELS))) * np.linspace(0.9, 0.2, len(REPORT_LABELS))
    Y = (rng.random(q.shape) < q).astype(np.uint8)
    splits = np.where(np.arange(n) < n_train, "train", "test")
    run = tmp_path_factory.mktemp("calibration") / "run"
    write_parquet(run / "split.parquet", split_table(frame, Y, splits, REPORT_LABELS))
    test = np.flatnonzero(splits == "test")
    ids = frame["image_id"].iloc[test].tolist()
    scores = {"calibrated": q[test], "overconfident": np.sqrt(q[test])}
    predictions.write(run / "predictions.parquet", [predictions.to_table(ids, ["test"] * len(ids), e, REPORT_LABELS, s)
                                                    for e, s in scores.items()])
    write_json(run / "manifest.json", {"run_id": "r1", "dataset_kind": "synthetic", "benchmark": "padchest-specific",
                                       "variant": "crop+aug", "backbones": list(scores), "ensembles": [],
                                       "recipe": {"threshold": 0.5}})
    entries = [(e, "backbone", s, (s >= 0.5).astype(np.uint8), None) for e, s in scores.items()]
    rows, _ = score_entries(entries, Y[test], frame["patient_id"].iloc[test].tolist(), REPORT_LABELS,
                            train_counts=Y[:n_train].sum(axis=0), n_boot=50, seed=0)
    leaderboard.write(run / "leaderboard.parquet", leaderboard.to_table([_row(**r) for r in rows]))
    return run


def test_the_report_draws_one_reliability_diagram_per_entry_and_group(stored_run, tmp_path):
    from test_report import parse

    report = build.build_run(stored_run)
    board = leaderboard.read(stored_run / "leaderboard.parquet").to_pandas()
    split = pd.read_parquet(stored_run / "split.parquet")
    test = split[split["split"] == "test"]
    groups = label_groups(split[split["split"] == "train"][REPORT_LABELS].sum().tolist(), REPORT_LABELS)
    stored = predictions.read(stored_run / "predictions.parquet")
    for entry in ("calibrated", "overconfident"):
        assert [d.group for d in report.reliability[entry]] == list(groups)
        p = predictions.wide(stored, entry, test["image_id"].tolist(), REPORT_LABELS)
        for d in report.reliability[entry]:
            columns = [REPORT_LABELS.index(lab) for lab in groups[d.group]]
            pooled_p, pooled_y = p[:, columns].ravel(), test[groups[d.group]].to_numpy().ravel()
            bins = equal_mass_bins(pooled_p)
            want = [(pooled_p[bins == b].mean(), pooled_y[bins == b].mean(), int((bins == b).sum()))
                    for b in range(ECE_BINS) if (bins == b).any()]
            assert np.allclose([pt[:2] for pt in d.bins], [w[:2] for w in want], atol=1e-12)
            assert [pt[2] for pt in d.bins] == [w[2] for w in want] and d.cells == pooled_p.size
            assert d.pooled_ece == pytest.approx(expected_calibration_error(pooled_y, pooled_p), abs=1e-12)
            row = board[(board.entry == entry) & (board.label == group_label(d.group)) & (board.metric == ECE)]
            assert d.ece.value == float(row["value"].iloc[0])
    worst = {e: max(d.pooled_ece for d in report.reliability[e]) for e in report.reliability}
    assert worst["calibrated"] < 0.1 < min(d.pooled_ece for d in report.reliability["overconfident"])
    # every bin of the overconfident entry lies below the diagonal: it overestimates
    assert all(rate < score for d in report.reliability["overconfident"] for score, rate, _ in d.bins)

    notes: list[str] = []
    out = write_report(stored_run, tmp_path / "report.html", on_note=notes.append)
    assert not [n for n in notes if "predictions" in n or "reliability" in n]
    text = out.read_text()
    figures = re.findall(r'<figure class="reliability" id="reliability-([^"]+)-(frequent|medium|rare)">(.*?)</figure>',
                         text, re.S)
    assert sorted((e, g) for e, g, _ in figures) == sorted((e, g) for e in ("calibrated", "overconfident")
                                                           for g in groups)
    for entry, group, body in figures:
        assert 'class="diagonal"' in body and body.count("<circle") >= 2
        ece = board[(board.entry == entry) & (board.label == group_label(group)) & (board.metric == ECE)]
        low, high = float(ece["ci_low"].iloc[0]), float(ece["ci_high"].iloc[0])
        assert f"ECE (15 bins) {float(ece['value'].iloc[0]):.4f} (95% CI {low:.4f} – {high:.4f})" in body
    tables = parse(text).tables
    header = re.search(r'<table id="global-table".*?</thead>', text, re.S).group(0)
    assert "ECE (15 bins) ↓" in header and "Brier ↓" in header
    glob = board[board.label == GLOBAL_LABEL].set_index(["entry", "metric"])["value"]
    ece_column = 2 + 2 * leaderboard.METRICS.index(ECE)
    for row in tables["global-table"]:
        assert row[ece_column][0] == f"{glob[(row[0][0], ECE)]:.4f}"
        assert row[ece_column + 2][0] == f"{glob[(row[0][0], BRIER)]:.4f}"
    group_rows = {r[0][0]: r for r in tables["group-calibration-table"]}
    rare = board[(board.entry == "overconfident") & (board.label == group_label("rare"))].set_index("metric")
    assert group_rows["overconfident"][1 + 4 * 2][0] == f"{rare.loc[ECE, 'value']:.4f}"
    assert group_rows["overconfident"][1 + 4 * 2 + 2][0] == f"{rare.loc[BRIER, 'value']:.4f}"


SECRET = "SECRET-CONTENT-5150"  # planted in a hostile predictions file: never shown


@pytest.mark.parametrize("case", ["missing", "not parquet", "an entry short"])
def test_unusable_predictions_are_a_note_and_the_calibration_rows_stay(stored_run, tmp_path, case):
    import shutil

    copy = tmp_path / "copy"
    shutil.copytree(stored_run, copy)
    path = copy / "predictions.parquet"
    if case == "missing":
        path.unlink()
    elif case == "not parquet":
        path.write_bytes(SECRET.encode() * 20)
    else:
        frame = predictions.read(path)
        short = frame[~((frame["entry"] == "overconfident") & (frame["image_id"] == frame["image_id"].iloc[0]))]
        predictions.write(path, [predictions.from_frame(short)])
    notes: list[str] = []
    text = write_report(copy, tmp_path / "r.html", on_note=notes.append).read_text()
    (note,) = [n for n in notes if "predictions.parquet" in n]  # the stored run has no skip list nor histories
    assert str(path) in note and "reliability diagrams" in note and SECRET not in note + text
    assert '<figure class="reliability"' not in text and "No reliability diagrams" in text
    assert 'id="group-calibration-table"' in text and "ECE (15 bins) ↓" in text


def test_the_grid_report_reads_calibration_differences_below_zero_as_better(tmp_path):
    from test_report import _grid, _row, parse

    rows = [_row("macro", "__global__", -0.031, -0.05, -0.012, "helps", metric=ECE),
            _row("group", "rare", 0.02, 0.004, 0.036, "hurts", metric=BRIER),
            _row("macro", "__global__", 0.01, -0.02, 0.03, "no evidence")]
    out = tmp_path / "grid.html"
    write_report(_grid(tmp_path, rows), out)
    text = out.read_text()
    assert "focal: ECE (15 bins) ↓ difference by frequency group" in text and "focal: Brier ↓ difference" in text
    assert "ece_15 (remedy − baseline; below 0 is better)" in text
    assert "auc (remedy − baseline; above 0 is better)" in text
    shown = {(r[4][0], r[5][0]): r[10][0] for r in parse(text).tables["grid-table"]}
    assert shown[("__global__", ECE)] == "helps" and shown[("rare", BRIER)] == "hurts"
