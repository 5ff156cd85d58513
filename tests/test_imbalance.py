"""Multilabel imbalance measures against a small example computed by hand."""

import math

import numpy as np
import pytest

from mlbench.data.imbalance import imbalance_by_split, imbalance_report, irlbl, scumble

# Five images, labels A B C (D never occurs): counts A=4, B=2, C=1 -> IRLbl 1, 2, 4.
Y = np.array([
    [1, 1, 0, 0],
    [1, 0, 0, 0],
    [1, 0, 1, 0],
    [1, 1, 0, 0],
    [0, 0, 0, 0],
], dtype=np.uint8)
NAMES = ["A", "B", "C", "D"]


def test_irlbl_per_label_and_absent_label_is_nan():
    ratios = irlbl(Y)
    assert ratios[:3].tolist() == [1.0, 2.0, 4.0]
    assert math.isnan(ratios[3])


def test_report_matches_hand_computation():
    report = imbalance_report(Y, NAMES)
    assert report.irlbl == {"A": 1.0, "B": 2.0, "C": 4.0}
    assert report.absent_labels == ("D",)
    assert report.max_ir == 4.0
    assert report.mean_ir == pytest.approx(7 / 3)
    # sample sd of (1, 2, 4) is sqrt(7/3); divided by the mean 7/3
    assert report.cvir == pytest.approx(math.sqrt(3 / 7))
    # rows (A,B) twice: 1 - sqrt(2)/1.5; row (A,C): 1 - 2/2.5; single-label and empty rows: 0
    expected = (2 * (1 - math.sqrt(2) / 1.5) + (1 - 2 / 2.5)) / 5
    assert report.scumble == pytest.approx(expected)
    assert scumble(Y) == pytest.approx(expected)
    assert report.cardinality == pytest.approx(7 / 5)
    assert report.density == pytest.approx(7 / 5 / 4)
    assert report.as_dict()["absent_labels"] == ["D"]


def test_balanced_single_label_data_has_no_imbalance():
    report = imbalance_report(np.eye(3, dtype=int), ["x", "y", "z"])
    assert (report.max_ir, report.mean_ir, report.cvir, report.scumble) == (1.0, 1.0, 0.0, 0.0)


def test_by_split_reports_each_split():
    splits = np.array(["train", "train", "test", "test", "val"])
    reports = imbalance_by_split(Y, NAMES, splits)
    assert set(reports) == {"all", "train", "val", "test"}
    assert reports["train"].irlbl == {"A": 1.0, "B": 2.0}
    assert reports["train"].absent_labels == ("C", "D")
    assert reports["val"].n_instances == 1 and math.isnan(reports["val"].max_ir)


def test_rejects_non_binary_and_mismatched_names():
    with pytest.raises(ValueError, match="only 0 and 1"):
        imbalance_report(np.array([[0, 2]]), ["a", "b"])
    with pytest.raises(ValueError, match="2 label names for a matrix with 4 columns"):
        imbalance_report(Y, ["a", "b"])
