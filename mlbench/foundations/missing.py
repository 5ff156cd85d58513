"""Missing values: the one test for "unknown" and the one mean over what is defined.

A leaderboard cell, a metric or a bootstrap replicate is unknown when it is None (an empty parquet
cell) or NaN (a metric undefined on the data, e.g. an AUC with no positive). Every module asks
here rather than spelling the test again.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np


def is_unknown(x: Any) -> bool:
    """True for None and for a float NaN (numpy floats included); anything else is a value."""
    return x is None or (isinstance(x, float) and math.isnan(x))


def finite_mean(values: Any, axis: int = -1) -> Any:
    """Mean of the finite values, NaN where there are none.

    A 1-D sequence gives a float; an array gives the means along ``axis`` (each row's by default).
    """
    a = np.asarray(values, dtype=np.float64)
    if a.ndim == 1:  # the same summation as numpy's mean over the defined values
        defined = a[np.isfinite(a)]
        return float(defined.mean()) if defined.size else float("nan")
    finite = np.isfinite(a)
    n = finite.sum(axis=axis)
    total = np.where(finite, a, 0.0).sum(axis=axis)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(n > 0, total / np.maximum(n, 1), np.nan)
