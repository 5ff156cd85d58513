"""The merged padchest-nih benchmark on both real label files (shipped in the torchxrayvision 1.5.7 wheel).

Run with ``pytest -m realcsv``. The label files are read from the installed package, never copied into the
repository; a sources file in a temporary folder names them. The sources are reached as the merged family
reaches them, through the registry; the figures asserted are measured on these files, and the label counts
are checked against each source's own benchmark as well.
"""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import mlbench
from mlbench.data import DataSource
from mlbench.data.labels import label_matrices
from mlbench.data.splits import SPLITS, assert_patient_disjoint

pytestmark = pytest.mark.realcsv

FILES = {"padchest": "PADCHEST_chest_x_ray_images_labels_160K_01.02.19.csv.gz", "nih": "Data_Entry_2017_v2020.csv.gz"}
SOURCES = {"padchest": ("padchest", "padchest-general"), "nih": ("nih-cxr14", "nih-cxr14")}
# Measured on these files at split seed 0: each source's images per split, and its patients.
SIZES = {"nih": {"train": 75_862, "val": 10_662, "test": 25_596},
         "padchest": {"train": 64_002, "val": 9_235, "test": 18_426}}
PATIENTS = {"nih": {"train": 24_507, "val": 3_501, "test": 2_797},
            "padchest": {"train": 43_482, "val": 6_212, "test": 12_423}}
SPLIT_HASH = "1b3eca24fcb1ae0fd7cf129e89e48e72493894d6009fac25b2e8475e4ec68e7e"
LABEL_COUNTS = {"Atelectasis": 15_540, "Cardiomegaly": 11_196, "Effusion": 16_657, "Infiltration": 27_679,
                "Mass": 6_588, "Nodule": 8_668, "Pneumonia": 4_834, "Pneumothorax": 5_525, "Emphysema": 3_377,
                "Fibrosis": 2_583, "Pleural_Thickening": 6_581, "Hernia": 1_708}


def data_folder() -> Path:
    # find_spec locates the installed package without importing it (its import loads torch models).
    spec = importlib.util.find_spec("torchxrayvision")
    if spec is None or not spec.submodule_search_locations:
        pytest.fail("the real-CSV tests need the label files shipped in torchxrayvision==1.5.7: "
                    "install the test extra (pip install -e '.[test]') or deselect them with -m 'not realcsv'")
    folder = Path(next(iter(spec.submodule_search_locations))) / "data"
    for name in FILES.values():
        if not (folder / name).is_file():
            pytest.fail(f"{folder / name} is missing: install torchxrayvision==1.5.7 (the test extra)")
    return folder


@pytest.fixture(scope="module")
def real(tmp_path_factory):
    folder, work = data_folder(), tmp_path_factory.mktemp("merged-real")
    lines = []
    for name, file in FILES.items():  # no images there: the labels-only reading, as the sources' own tests
        lines += [f"[{name}]", f"csv = {json.dumps(str(folder / file))}", f"images = {json.dumps(str(folder))}"]
    sources = work / "sources.toml"
    sources.write_text("\n".join(lines) + "\n")
    summary = mlbench.split_dataset("padchest-nih", sources, work / "split", images=folder)
    frame = pd.read_parquet(work / "split" / "split.parquet")
    frame["source"] = frame["image_id"].str.split(":", n=1).str[0]
    registry = mlbench.get_registry()
    own = {}
    for name, (dataset, benchmark) in SOURCES.items():
        bench = registry.create("benchmark", benchmark)
        records = registry.create("dataset", dataset).read(DataSource(folder / FILES[name], folder))
        own[name] = (bench, records)
    return summary, frame, own


def test_split_sizes_per_source(real):
    summary, frame, _ = real
    per = summary["per_source"]
    assert {n: p["sizes"] for n, p in per.items()} == SIZES
    assert {n: p["patients"] for n, p in per.items()} == PATIENTS
    for name, sizes in SIZES.items():
        assert frame.loc[frame.source == name, "split"].value_counts().to_dict() == sizes
    assert summary["sizes"] == {s: sum(SIZES[n][s] for n in SIZES) for s in SPLITS}
    assert summary["split_hash"] == SPLIT_HASH
    # PadChest is split 70/10/20, NIH's non-test patients 7:1, each within half a point
    pad = np.array([SIZES["padchest"][s] for s in SPLITS]) / sum(SIZES["padchest"].values())
    assert np.allclose(pad, (0.7, 0.1, 0.2), atol=0.005)
    assert abs(SIZES["nih"]["train"] / (SIZES["nih"]["train"] + SIZES["nih"]["val"]) - 0.875) < 0.005


def test_no_patient_in_two_splits_and_ids_never_collide(real):
    _, frame, own = real
    assert frame["image_id"].is_unique
    assert_patient_disjoint(frame["patient_id"].tolist(), frame["split"].to_numpy())
    assert (frame["patient_id"].str.split(":", n=1).str[0] == frame["source"]).all()
    for name, (_, records) in own.items():  # every image of each source's own reading is there, once
        assert set(frame.loc[frame.source == name, "image_id"]) == {f"{name}:{i}" for i in records.frame["image_id"]}


def test_every_nih_official_test_image_is_in_test_and_only_they_are(real):
    _, frame, own = real
    bench, records = own["nih"]
    official = records.frame.loc[bench.fixed_test(records.frame), "image_id"]
    official = {f"nih:{i}" for i in official}
    nih = frame[frame.source == "nih"]
    assert len(official) == 25_596
    assert set(nih.loc[nih.split == "test", "image_id"]) == official
    assert not official & set(frame.loc[frame.split != "test", "image_id"])


def test_label_counts_are_each_sources_own_positives_and_narrower_negatives_are_unknown(real):
    _, frame, own = real
    merged = mlbench.get_registry().create("benchmark", "padchest-nih")
    assert tuple(c for c in frame.columns if c not in ("image_id", "patient_id", "split", "source")) == merged.labels
    expected = dict.fromkeys(merged.labels, 0)
    for name, (bench, records) in own.items():
        matrix = label_matrices(records, bench)
        for label, finding in bench.findings.labels.items():
            if finding.term in expected:  # a positive of any label mapped to the term is the term's
                expected[finding.term] += int(matrix.Y[:, bench.labels.index(label)].sum())
    # hiatal hernia is padchest-general's only label on Hernia, so no PadChest image is counted twice
    assert expected == LABEL_COUNTS
    assert {label: int(frame[label].fillna(0).sum()) for label in merged.labels} == LABEL_COUNTS
    unknown = frame[list(merged.labels)].isna()
    assert unknown.drop(columns="Hernia").sum().sum() == 0  # every other finding is labelled exactly by both
    pad = frame.source == "padchest"
    assert (unknown["Hernia"] == (pad & (frame["Hernia"] != 1))).all()  # PadChest negatives: unknown
    assert int(frame.loc[pad, "Hernia"].sum()) == 1_481 and int(frame.loc[~pad, "Hernia"].sum()) == 227
