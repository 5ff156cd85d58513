"""The core's pinned-test-set rule (Benchmark.fixed_test), on a small generic benchmark."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from mlbench.contracts.benchmark import Benchmark, Recipe
from mlbench.data.splits import SplitError, patient_split, split_images

LABELS = ("a", "b", "c")


def _frame(n_patients: int = 120, seed: int = 0) -> tuple[pd.DataFrame, np.ndarray]:
    rng = np.random.default_rng(seed)
    patients = np.repeat([str(p) for p in range(n_patients)], rng.integers(1, 4, size=n_patients))
    Y = (rng.random((len(patients), len(LABELS))) < [0.4, 0.2, 0.08]).astype(np.uint8)
    frame = pd.DataFrame({"image_id": [f"img{i}" for i in range(len(patients))], "patient_id": patients})
    return frame, Y


def _bench(fixed_test=None, fractions=(0.7, 0.1, 0.2)) -> Benchmark:
    recipe = Recipe(backbones=("resnet10t",))
    return Benchmark(name="toy", version="1", dataset="toy", labels=LABELS, targets=lambda f: set(f),
                     recipe=recipe, demo_recipe=recipe, split_fractions=fractions, fixed_test=fixed_test)


def _pin_patients(pinned: set[str]):
    return lambda frame: frame["patient_id"].isin(pinned).to_numpy()


def test_pinned_patients_are_exactly_the_test_split():
    frame, Y = _frame()
    pinned = {str(p) for p in range(0, 120, 5)}
    splits = split_images(frame, Y, _bench(_pin_patients(pinned)))
    test_patients = set(frame.loc[splits == "test", "patient_id"])
    assert test_patients == pinned
    rest = splits[~frame["patient_id"].isin(pinned).to_numpy()]
    assert set(rest) == {"train", "val"}
    # train:val follows the first two fractions (7:1) over the remaining images
    assert (rest == "val").mean() == pytest.approx(1 / 8, abs=0.05)
    per_patient = pd.Series(splits).groupby(frame["patient_id"].to_numpy()).nunique()
    assert (per_patient == 1).all()


def test_pinned_split_is_deterministic_and_seeded():
    frame, Y = _frame()
    bench = _bench(_pin_patients({"1", "2", "3", "50"}))
    a, b = split_images(frame, Y, bench), split_images(frame, Y, bench)
    assert (a == b).all()
    c = split_images(frame, Y, bench, seed=1)
    assert (c[a == "test"] == "test").all() and (a != c).any()


def test_without_a_pinned_set_the_rule_is_unchanged():
    frame, Y = _frame()
    plain = patient_split(frame["patient_id"].tolist(), Y, (0.7, 0.1, 0.2), 0)
    assert (split_images(frame, Y, _bench()) == plain).all()


def test_a_pinned_set_must_take_whole_patients_and_be_one_bool_per_image():
    frame, Y = _frame()
    first_image_only = lambda f: (f.index == 0) | (f.index == 1)  # noqa: E731
    torn = frame.copy()
    torn.loc[1, "patient_id"] = torn.loc[0, "patient_id"]
    torn.loc[2, "patient_id"] = torn.loc[0, "patient_id"]
    with pytest.raises(SplitError, match="whole patients"):
        split_images(torn, Y, _bench(first_image_only))
    with pytest.raises(SplitError, match="one bool per image"):
        split_images(frame, Y, _bench(lambda f: np.zeros(3, dtype=bool)))
    with pytest.raises(ValueError, match="positive train/val"):
        _bench(_pin_patients(set()), fractions=(0.0, 0.0, 1.0))
