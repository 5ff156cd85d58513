"""The synthetic PadChest-format demo corpus: format, quirks, determinism, boxes, label statistics."""

from __future__ import annotations

import ast
import hashlib
import json
from pathlib import Path

import cv2
import numpy as np
import pandas as pd
import pytest

from mlbench.demo import MARKER_NAME
from mlbench_padchest import demo
from mlbench_padchest.labels import PA_COUNTS, SPECIFIC_LABELS

SIZE = 128
N_PATIENTS = 40


@pytest.fixture(scope="module")
def corpus(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("demo")
    demo.write_demo_corpus(out, seed=0, n_patients=N_PATIENTS, image_size=SIZE, n_corrupt=1, workers=2)
    return out


@pytest.fixture(scope="module")
def table(corpus) -> pd.DataFrame:
    return pd.read_csv(corpus / demo.CSV_NAME, index_col=0, dtype={"ImageDir": str, "PatientID": str, "StudyID": str})


def _stripped(text: str) -> list[str]:
    return [item.strip() for item in ast.literal_eval(text)]


def test_csv_has_padchest_columns_after_an_unnamed_index(corpus, table):
    header = (corpus / demo.CSV_NAME).read_text(encoding="utf-8").splitlines()[0].split(",")
    assert header[0] == ""
    assert tuple(header[1:]) == demo.PADCHEST_COLUMNS
    assert list(table.index) == list(range(len(table)))
    assert table["ImageID"].is_unique
    assert (table["BitsStored_DICOM"] == 12).all()
    assert (table["Rows_DICOM"] == SIZE).all() and (table["Columns_DICOM"] == SIZE).all()
    assert set(table["MethodLabel"]) <= {"Physician", "RNN_model"}


def test_patients_have_several_images_and_projections(table):
    per_patient = table.groupby("PatientID").size()
    assert per_patient.min() >= 1 and per_patient.max() <= 4 and (per_patient > 1).any()
    assert table["PatientID"].nunique() == N_PATIENTS
    assert {"PA", "L"} <= set(table["Projection"])
    assert table["ImageDir"].nunique() >= 2


def test_labels_are_list_literals_with_padchest_quirks(table):
    from mlbench_padchest.tree import known_labels

    labels = table["Labels"]
    assert labels.isna().sum() >= 2, "a few rows must have NaN Labels"
    parsed = [ast.literal_eval(text) for text in labels.dropna()]
    assert all(isinstance(items, list) and all(isinstance(i, str) for i in items) for items in parsed)
    items = [i for row in parsed for i in row]
    assert any(i != i.strip() for i in items), "some items carry stray spaces, as in PadChest"
    known = known_labels()
    assert not [i for i in items if i.strip() not in known], "every item is a real PadChest term"
    benchmark = set(SPECIFIC_LABELS)
    stripped = [set(_stripped(t)) for t in labels.dropna()]
    assert any(s - benchmark for s in stripped), "some rows carry labels outside the 35"
    assert any(s and not s & benchmark for s in stripped), "some images have only labels outside the 35"


def test_images_are_12bit_uint16_pngs_except_the_truncated_one(corpus, table):
    unreadable = []
    for row in table.itertuples():
        path = corpus / demo.IMAGES_DIR / row.ImageDir / row.ImageID
        assert path.is_file(), path
        image = cv2.imdecode(np.fromfile(path, dtype=np.uint8), cv2.IMREAD_UNCHANGED)
        if image is None:
            unreadable.append(row)
            continue
        assert image.dtype == np.uint16 and image.shape == (SIZE, SIZE)
        assert image.max() <= 4095 and image.max() > 1000
    assert len(unreadable) == 1
    assert unreadable[0].Projection == "PA"
    assert set(_stripped(unreadable[0].Labels)) & set(SPECIFIC_LABELS)


def test_findings_sidecar_matches_each_frontal_images_labels(corpus, table):
    findings = pd.read_csv(corpus / demo.FINDINGS_NAME)
    lungs = pd.read_csv(corpus / demo.LUNGS_NAME)
    assert list(findings.columns) == ["image_id", "label", "x0", "y0", "x1", "y1"]
    assert set(findings["label"]) <= set(SPECIFIC_LABELS)
    assert findings["label"].nunique() >= 10
    for frame in (findings, lungs):
        assert ((frame.x0 >= 0) & (frame.y0 >= 0) & (frame.x1 <= SIZE) & (frame.y1 <= SIZE)).all()
        assert ((frame.x0 < frame.x1) & (frame.y0 < frame.y1)).all()
    by_image = findings.groupby("image_id")["label"].apply(set).to_dict()
    frontal = table[table["Projection"] != "L"]
    for row in frontal.itertuples():
        expected = set() if pd.isna(row.Labels) else set(_stripped(row.Labels)) & set(SPECIFIC_LABELS) - {"normal"}
        assert by_image.get(row.ImageID, set()) == expected, row.ImageID
    assert not set(findings["image_id"]) & set(table.loc[table["Projection"] == "L", "ImageID"])
    # PA: the patient's right lung is on the image's left
    sides = lungs.pivot(index="image_id", columns="side", values="x1")
    assert set(sides.index) == set(frontal["ImageID"])
    assert (sides["right"] < lungs.pivot(index="image_id", columns="side", values="x0")["left"]).all()


def test_marker_labels_the_corpus_synthetic_and_the_reader_reads_it(corpus, table):
    marker = json.loads((corpus / MARKER_NAME).read_text(encoding="utf-8"))
    assert marker["synthetic"] is True and "synthetic" in marker["statement"].lower()
    assert marker["seed"] == 0 and marker["generator_version"] == demo.GENERATOR_VERSION
    assert marker["parameters"] == {"n_patients": N_PATIENTS, "image_size": SIZE, "n_corrupt": 1}

    from mlbench.data import DataSource
    from mlbench_padchest.dataset import PadChestDataset

    records = PadChestDataset().read(DataSource(csv=corpus / demo.CSV_NAME, images=corpus / demo.IMAGES_DIR))
    assert records.kind == "synthetic"
    pa_with_labels = table[(table["Projection"] == "PA") & table["Labels"].notna()]
    assert set(records.frame["image_id"]) == set(pa_with_labels["ImageID"])
    assert {"not_pa"} <= {skip.reason for skip in records.skipped}


def _digests(root: Path) -> dict[str, str]:
    return {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(root.rglob("*")) if p.is_file()}


def test_same_seed_gives_the_same_bytes_whatever_the_threads(tmp_path):
    options = dict(n_patients=8, image_size=64, n_corrupt=1)
    demo.write_demo_corpus(tmp_path / "a", seed=3, workers=1, **options)
    demo.write_demo_corpus(tmp_path / "b", seed=3, workers=3, **options)
    demo.write_demo_corpus(tmp_path / "c", seed=4, workers=1, **options)
    a, b, c = (_digests(tmp_path / name) for name in "abc")
    assert len(a) > 10 and a == b
    assert a[demo.CSV_NAME] != c[demo.CSV_NAME]
    assert set(a) != set(c), "another seed draws other images"


def test_bad_arguments_are_named(tmp_path):
    with pytest.raises(ValueError, match="n_patients"):
        demo.write_demo_corpus(tmp_path, n_patients=0)
    with pytest.raises(ValueError, match="image_size"):
        demo.write_demo_corpus(tmp_path, n_patients=2, image_size=32)
    with pytest.raises(ValueError, match="n_corrupt"):
        demo.write_demo_corpus(tmp_path, n_patients=2, image_size=64, n_corrupt=50)
    with pytest.raises(ValueError, match="consolidation"):
        demo.draw_frontal(["nodule", "consolidation"], 64, np.random.default_rng(0))


# Where each finding must sit, relative to the drawn lungs (the union of both lung boxes).
UPPER = {"pacemaker", "apical pleural thickening", "aortic elongation", "aortic atheromatosis",
         "supra aortic elongation", "kyphosis", "unchanged", "chronic changes", "suture material"}
LOWER = {"pleural effusion", "costophrenic angle blunting", "hemidiaphragm elevation", "cardiomegaly",
         "hiatal hernia", "laminar atelectasis", "interstitial pattern", "bronchiectasis", "pseudonodule"}
MIDLINE = {"sternotomy", "scoliosis", "kyphosis", "vertebral degenerative changes", "vertebral anterior compression",
           "hiatal hernia", "aortic elongation", "aortic atheromatosis", "supra aortic elongation",
           "vascular hilar enlargement", "alveolar pattern"}
LATERAL = {"callus rib fracture", "costophrenic angle blunting"}
PATIENT_LEFT = {"pacemaker", "chronic changes", "air trapping"}  # image right on a PA film
PATIENT_RIGHT = {"unchanged", "infiltrates"}


@pytest.mark.parametrize("label", SPECIFIC_LABELS)
def test_each_signature_is_drawn_where_it_belongs(label):
    assert label in demo.SIGNATURES
    for seed in range(3):
        image, boxes, lungs = demo.draw_frontal([label], SIZE, np.random.default_rng(seed))
        assert image.dtype == np.uint16 and image.shape == (SIZE, SIZE) and image.max() <= 4095
        if label == "normal":
            assert boxes == {}
            continue
        assert set(boxes) == {label}
        x0, y0, x1, y1 = boxes[label]
        assert 0 <= x0 < x1 <= SIZE and 0 <= y0 < y1 <= SIZE
        right, left = lungs["right"], lungs["left"]
        top, bottom = min(right[1], left[1]), max(right[3], left[3])
        outer_left, outer_right = right[0], left[2]
        midline = (right[2] + left[0]) / 2
        width, middle = outer_right - outer_left, (top + bottom) / 2
        cx, cy = (x0 + x1) / 2, (y0 + y1) / 2
        where = f"{label} (seed {seed}): box {boxes[label]}, lungs {lungs}"
        margin = 0.05 * SIZE
        assert outer_left - margin <= cx <= outer_right + margin and top - margin <= cy <= bottom + margin, where
        if label in UPPER:
            assert y0 < middle, where
        if label in LOWER:
            assert cy > middle, where
        if label in MIDLINE:
            assert abs(cx - midline) < 0.2 * width, where
        if label in LATERAL:
            assert abs(cx - midline) > 0.3 * width, where
        if label in PATIENT_LEFT:
            assert cx > midline, where
        if label in PATIENT_RIGHT:
            assert cx < midline, where


@pytest.mark.parametrize("label", [label for label in SPECIFIC_LABELS if label != "normal"])
def test_the_lung_crop_keeps_every_finding(label):
    """A finding must not hide the lungs from the weight-free segmenter, or the crop would cut it off."""
    from mlbench_padchest.lungcrop import LungCrop

    crop = LungCrop(size=64)
    for seed in range(2):
        image, boxes, _ = demo.draw_frontal([label], 256, np.random.default_rng(100 + seed))
        found = crop.locate(image.astype(np.float32) / 4095)
        assert not found.fallback, f"{label} (seed {seed}): {found.reason}"
        x0, y0, x1, y1 = boxes[label]
        cx0, cy0, cx1, cy1 = found.box
        assert cx0 <= x0 and cy0 <= y0 and x1 <= cx1 and y1 <= cy1, f"{label} (seed {seed}): box {boxes[label]}, crop {found.box}"


def test_shipped_label_sets_reproduce_the_real_pa_counts():
    table = demo.load_label_sets()
    assert table.labels == SPECIFIC_LABELS
    counts = table.remainder_label_counts.copy()
    for labels, n in zip(table.sets, table.set_counts):
        counts[list(labels)] += n
    assert dict(zip(SPECIFIC_LABELS, counts.astype(int).tolist())) == PA_COUNTS
    assert () in table.sets, "images with none of the 35 labels are part of the table"


def _prevalence_matrix(sets: list[tuple[str, ...]]) -> np.ndarray:
    index = {label: j for j, label in enumerate(SPECIFIC_LABELS)}
    y = np.zeros((len(sets), len(SPECIFIC_LABELS)), dtype=np.float64)
    for i, labels in enumerate(sets):
        y[i, [index[label] for label in labels]] = 1
    return y


def test_sampled_prevalence_follows_the_real_pa_prevalence():
    n = 30_000
    y = _prevalence_matrix(demo.sample_label_sets(n, np.random.default_rng(7)))
    table = demo.load_label_sets()
    n_real = table.set_counts.sum() + table.remainder_images
    real = np.array([PA_COUNTS[label] for label in SPECIFIC_LABELS]) / n_real
    z = (y.mean(axis=0) - real) / np.sqrt(real * (1 - real) / n)
    assert np.abs(z).max() < 4.5, dict(zip(SPECIFIC_LABELS, np.round(z, 1)))
    assert y.mean(axis=0)[-1] == pytest.approx(0.0114, abs=0.003), "the rarest label is about 1.1% of PA images"
    assert y.sum(axis=1).mean() == pytest.approx(1.50, abs=0.03), "label cardinality of the real PA images"


@pytest.mark.realcsv
def test_sampled_co_occurrence_follows_the_real_csv():
    """Pairs of labels co-occur as often as in the real PA rows (not as independent labels would)."""
    resources = pytest.importorskip("importlib.resources")
    pytest.importorskip("torchxrayvision")
    csv = resources.files("torchxrayvision") / "data" / "PADCHEST_chest_x_ray_images_labels_160K_01.02.19.csv.gz"
    frame = pd.read_csv(csv, usecols=["Projection", "Labels"])
    pa = frame[(frame["Projection"] == "PA") & frame["Labels"].notna()]
    wanted = set(SPECIFIC_LABELS)
    real = _prevalence_matrix([tuple(i for i in _stripped(t) if i in wanted) for t in pa["Labels"]])
    n = 30_000
    sampled = _prevalence_matrix(demo.sample_label_sets(n, np.random.default_rng(11)))
    upper = np.triu_indices(len(SPECIFIC_LABELS), 1)
    joint_real = (real.T @ real / len(real))[upper]
    joint_sampled = (sampled.T @ sampled / n)[upper]
    common = joint_real >= 0.005
    relative = np.abs(joint_sampled - joint_real)[common] / joint_real[common]
    independent = np.outer(real.mean(0), real.mean(0))[upper][common]
    assert relative.mean() < 0.15
    assert relative.mean() < 0.5 * (np.abs(independent - joint_real[common]) / joint_real[common]).mean()
