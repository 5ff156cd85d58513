"""Patient-grouped stratified splits: determinism, disjointness, hash, files."""

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest

from mlbench.data.splits import (
    SplitError,
    assert_patient_disjoint,
    patient_labels,
    patient_split,
    split_hash,
    split_summary,
    split_table,
    write_split_files,
)
from mlbench.foundations.io import read_json

LABELS = ["common", "frequent", "medium", "rare", "rarer", "rarest"]


def corpus(n_patients: int = 400, seed: int = 1) -> tuple[pd.DataFrame, np.ndarray]:
    """Patients with 1-4 images each and imbalanced, patient-correlated labels."""
    rng = np.random.RandomState(seed)
    prevalence = np.array([0.5, 0.3, 0.15, 0.08, 0.05, 0.03])
    rows, labels = [], []
    for p in range(n_patients):
        base = rng.rand(len(LABELS)) < prevalence
        for k in range(rng.randint(1, 5)):
            y = base | (rng.rand(len(LABELS)) < prevalence / 4)
            if not y.any():
                y[0] = True
            rows.append({"image_id": f"img{p:04d}_{k}.png", "patient_id": f"P{p:04d}"})
            labels.append(y)
    return pd.DataFrame(rows), np.array(labels, dtype=np.uint8)


def test_split_is_deterministic_and_patient_disjoint():
    frame, Y = corpus()
    ids = frame["patient_id"].tolist()
    first = patient_split(ids, Y, seed=0)
    assert (patient_split(ids, Y, seed=0) == first).all()
    assert set(first) == {"train", "val", "test"}
    assert_patient_disjoint(ids, first)
    # every image of a patient follows the patient
    assert frame.assign(split=first).groupby("patient_id")["split"].nunique().max() == 1
    other = patient_split(ids, Y, seed=1)
    assert split_hash(frame["image_id"], other) != split_hash(frame["image_id"], first)


def test_split_and_hash_do_not_depend_on_row_order():
    frame, Y = corpus()
    splits = patient_split(frame["patient_id"].tolist(), Y, seed=3)
    digest = split_hash(frame["image_id"].tolist(), splits)

    order = np.random.RandomState(7).permutation(len(frame))
    shuffled, Y_shuffled = frame.iloc[order].reset_index(drop=True), Y[order]
    splits_shuffled = patient_split(shuffled["patient_id"].tolist(), Y_shuffled, seed=3)
    assert dict(zip(shuffled["image_id"], splits_shuffled)) == dict(zip(frame["image_id"], splits))
    assert split_hash(shuffled["image_id"].tolist(), splits_shuffled) == digest


def test_split_hash_is_sha256_of_sorted_lines():
    import hashlib

    expected = hashlib.sha256(b"a.png,train\nb.png,test\n").hexdigest()
    assert split_hash(["b.png", "a.png"], ["test", "train"]) == expected
    assert split_hash(["a.png", "b.png"], ["test", "train"]) != expected


def test_split_is_stratified_and_sized():
    frame, Y = corpus(n_patients=1500)
    ids = frame["patient_id"].tolist()
    splits = patient_split(ids, Y, fractions=(0.7, 0.1, 0.2), seed=0)
    summary = split_summary(frame, Y, splits, LABELS)
    for name, target in (("train", 0.7), ("val", 0.1), ("test", 0.2)):
        assert abs(summary["fractions"][name] - target) < 0.02
    assert summary["labels_missing_from_a_split"] == []
    # Stratification is on patients: each label's patients land in each split within one patient
    # of the target. Images then follow their patients, so image shares vary with images per patient.
    P, codes = patient_labels(ids, Y)
    per_patient = np.empty(len(P), dtype=object)
    per_patient[codes] = splits
    for name, target in (("train", 0.7), ("val", 0.1), ("test", 0.2)):
        assert np.abs(P[per_patient == name].sum(axis=0) - target * P.sum(axis=0)).max() <= 1.0
    assert summary["max_prevalence_deviation"]["points"] < 5.0
    assert summary["n_patients"] == 1500
    assert sum(summary["patients"].values()) == 1500
    counts = {c["label"]: c for c in summary["label_counts"]}
    assert counts["rarest"]["all"] == int(Y[:, 5].sum())
    assert counts["rarest"]["train"] + counts["rarest"]["val"] + counts["rarest"]["test"] == counts["rarest"]["all"]
    assert summary["split_hash"] == split_hash(frame["image_id"].tolist(), splits)


def test_zero_fraction_gets_no_images_and_bad_fractions_are_refused():
    frame, Y = corpus(n_patients=50)
    splits = patient_split(frame["patient_id"].tolist(), Y, fractions=(0.8, 0.0, 0.2))
    assert set(splits) == {"train", "test"}
    with pytest.raises(ValueError, match="summing to 1"):
        patient_split(frame["patient_id"].tolist(), Y, fractions=(0.7, 0.2, 0.2))
    with pytest.raises(ValueError, match="one row per patient id"):
        patient_split(frame["patient_id"].tolist()[:-1], Y)


def test_patient_in_two_splits_is_named():
    with pytest.raises(SplitError, match=r"1 patient\(s\) .*: P2"):
        assert_patient_disjoint(["P1", "P2", "P2"], ["train", "train", "test"])


def test_split_files_follow_the_contract(tmp_path):
    frame, Y = corpus(n_patients=60)
    splits = patient_split(frame["patient_id"].tolist(), Y)
    table = split_table(frame, Y, splits, LABELS)
    assert table.column_names == ["image_id", "patient_id", "split", *LABELS]
    summary = split_summary(frame, Y, splits, LABELS)
    paths = write_split_files(tmp_path, frame, Y, splits, LABELS, summary)
    back = pq.read_table(paths["split"]).to_pandas()
    assert back["image_id"].tolist() == frame["image_id"].tolist()
    assert back["split"].tolist() == list(splits)
    assert (back[LABELS].to_numpy() == Y).all()
    labels_doc = read_json(paths["labels"])
    assert [c["label"] for c in labels_doc["labels"]] == LABELS
    assert labels_doc["split_hash"] == summary["split_hash"]
    assert read_json(paths["summary"])["sizes"] == summary["sizes"]
    assert not list(tmp_path.glob(".*.tmp"))  # atomic writes leave no temp files


def test_split_table_rejects_mismatched_shapes():
    frame, Y = corpus(n_patients=5)
    with pytest.raises(ValueError, match="must agree"):
        split_table(frame, Y[:, :2], ["train"] * len(frame), LABELS)
