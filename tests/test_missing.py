"""The one missing-value test and the one mean over defined values (mlbench/foundations/missing.py)."""

from __future__ import annotations

import math

import numpy as np

from mlbench.foundations.missing import finite_mean, is_unknown


def test_is_unknown_is_none_or_nan_only():
    assert is_unknown(None) and is_unknown(float("nan")) and is_unknown(np.float64("nan"))
    assert not any(is_unknown(x) for x in (0, 0.0, "", "nan", np.inf, False))


def test_finite_mean_of_a_sequence_skips_nan_and_is_nan_when_nothing_is_defined():
    assert finite_mean([0.5, float("nan"), 1.0]) == 0.75
    assert isinstance(finite_mean([1, 2]), float)
    assert math.isnan(finite_mean([float("nan")])) and math.isnan(finite_mean([]))


def test_finite_mean_of_an_array_is_per_row_or_along_the_axis():
    a = np.array([[1.0, np.nan, 3.0], [np.nan, np.nan, np.nan], [2.0, 4.0, np.inf]])
    rows = finite_mean(a)
    assert rows[0] == 2.0 and math.isnan(rows[1]) and rows[2] == 3.0
    np.testing.assert_array_equal(finite_mean(a, axis=0), [1.5, 4.0, 3.0])
    cube = np.stack([a, a + 1.0])
    np.testing.assert_array_equal(finite_mean(cube, axis=0), np.where(np.isfinite(a), a + 0.5, np.nan))
