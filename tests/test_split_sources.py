"""A dataset made of several sources (Records.frame's SOURCE_COLUMN): each source is split on its own.

A source with images pinned by ``fixed_test`` keeps exactly those as its test set; a source with none
pinned is split by the fractions; without the column a pinned list pins the whole test set, as before.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from mlbench import DEMO_RECIPE, Benchmark
from mlbench.data import SOURCE_COLUMN, Records
from mlbench.data.splits import assert_patient_disjoint, split_benchmark

LABELS = ("x", "y")


def records(with_source: bool = True) -> Records:
    rng = np.random.default_rng(0)
    rows = []
    for source, n_patients in (("a", 60), ("b", 100)):
        for p in range(n_patients):
            for k in range(1 + p % 3):
                findings = tuple(label for label in LABELS if rng.random() < 0.3)
                rows.append({"image_id": f"{source}:{p}-{k}", "patient_id": f"{source}:{p}",
                             "image_path": f"/nowhere/{source}/{p}-{k}.png", "findings": findings,
                             SOURCE_COLUMN: source, "official": source == "a" and p < 15})
    frame = pd.DataFrame(rows)
    if not with_source:
        frame = frame.drop(columns=SOURCE_COLUMN)
    return Records(frame=frame, kind="toy", source_sha256="0" * 64)


def benchmark() -> Benchmark:
    return Benchmark(name="toy-merged", version="1", dataset="toy", labels=LABELS,
                     targets=lambda f: frozenset(LABELS).intersection(f), recipe=DEMO_RECIPE, demo_recipe=DEMO_RECIPE,
                     fixed_test=lambda frame: frame["official"].to_numpy(dtype=bool), keep_unlabelled=True)


def test_each_source_is_split_by_its_own_rule():
    split = split_benchmark(records(), benchmark())
    frame, splits = split.frame, split.splits
    assert_patient_disjoint(frame["patient_id"].tolist(), splits)
    a, b = (frame[SOURCE_COLUMN] == "a").to_numpy(), (frame[SOURCE_COLUMN] == "b").to_numpy()
    official = frame["official"].to_numpy()
    assert (splits[official] == "test").all() and not (splits[a & ~official] == "test").any()
    shares = pd.Series(splits[b]).value_counts(normalize=True)
    assert abs(shares["test"] - 0.2) < 0.05 and abs(shares["val"] - 0.1) < 0.05  # b: 70/10/20, nothing pinned
    per = split.summary["per_source"]
    assert per["a"]["sizes"]["test"] == int(official.sum()) and per["a"]["patients"]["test"] == 15
    assert per["b"]["sizes"] == {s: int((splits[b] == s).sum()) for s in ("train", "val", "test")}
    assert sum(p["n_images"] for p in per.values()) == len(frame)


def test_without_the_source_column_a_pinned_list_pins_the_whole_test_set():
    split = split_benchmark(records(with_source=False), benchmark())
    assert (split.splits == "test").sum() == int(split.frame["official"].sum())
    assert "per_source" not in split.summary
