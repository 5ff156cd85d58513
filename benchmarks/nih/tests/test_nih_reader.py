"""The NIH label-file reader: columns, hostile rows, folder layouts, missing and unsafe images."""

from __future__ import annotations

import gzip
import os
from collections import Counter
from pathlib import Path

import pytest

from mlbench.data import DataSource, DatasetError
from mlbench.demo import SYNTHETIC_KIND, mark_synthetic
from mlbench_nih.dataset import NIHDataset
from mlbench_nih.reader import index_images, read_nih_csv

HEADER = ("Image Index,Finding Labels,Follow-up #,Patient ID,Patient Age,Patient Gender,View Position,"
          "OriginalImage[Width,Height],OriginalImagePixelSpacing[x,y]")


def _row(name: str, labels: str, patient: str = "1", view: str = "PA", follow_up: int = 0) -> str:
    return f"{name},{labels},{follow_up},{patient},58,M,{view},2500,2048,0.168,0.168"


def _write(tmp_path: Path, rows: list[str], name: str = "Data_Entry_2017_v2020.csv", header: str = HEADER) -> Path:
    path = tmp_path / name
    text = "\n".join([header, *rows]) + "\n"
    if name.endswith(".gz"):
        path.write_bytes(gzip.compress(text.encode()))
    else:
        path.write_text(text)
    return path


def _images(root: Path, names: list[str], folder: str = "images") -> None:
    (root / folder).mkdir(parents=True, exist_ok=True)
    for name in names:
        (root / folder / name).write_bytes(b"\x89PNG not decoded by the reader")


GOOD = [
    _row("00000001_000.png", "Cardiomegaly", "1"),
    _row("00000001_001.png", "Cardiomegaly|Emphysema", "1", follow_up=1),
    _row("00000002_000.png", "No Finding", "2", view="AP"),
    _row("00000003_000.png", "Effusion|Hernia|Infiltration", "3"),
]


def test_reads_labels_views_and_patients(tmp_path):
    csv = _write(tmp_path, GOOD)
    _images(tmp_path, [f"0000000{p}_00{k}.png" for p, k in ((1, 0), (1, 1), (2, 0), (3, 0))])
    records = read_nih_csv(DataSource(csv, tmp_path))
    frame = records.frame.set_index("image_id")
    assert records.kind == "nih-cxr14" and records.skipped == []
    assert frame.loc["00000001_001.png", "findings"] == ("Cardiomegaly", "Emphysema")
    assert frame.loc["00000002_000.png", "findings"] == ()  # No Finding: no label
    assert frame.loc["00000003_000.png", "findings"] == ("Effusion", "Hernia", "Infiltration")
    assert frame.loc["00000002_000.png", "projection"] == "AP"
    assert frame.loc["00000001_001.png", "follow_up"] == "1"
    assert list(frame["patient_id"]) == ["1", "1", "2", "3"]
    assert frame.loc["00000001_000.png", "image_path"] == str((tmp_path / "images" / "00000001_000.png").resolve())


def test_pa_only_option_skips_ap_by_reason(tmp_path):
    csv = _write(tmp_path, GOOD)
    _images(tmp_path, ["00000001_000.png", "00000001_001.png", "00000002_000.png", "00000003_000.png"])
    records = NIHDataset(projections=("PA",)).read(DataSource(csv, tmp_path))
    assert len(records.frame) == 3
    assert [(s.item, s.reason) for s in records.skipped] == [("00000002_000.png", "projection_not_selected")]
    with pytest.raises(DatasetError, match="projections"):
        NIHDataset(projections=("LATERAL",))


def test_hostile_rows_are_skipped_by_reason(tmp_path):
    rows = [
        *GOOD,
        _row("", "Mass", "4"),                                   # missing_image_id
        _row("../etc/passwd", "Mass", "4"),                      # unsafe_path
        _row("..", "Mass", "4"),                                 # unsafe_path
        _row("00000001_000.png", "Nodule", "1"),                 # duplicate_image_id
        _row("00000005_000.png", "Mass", ""),                    # missing_patient_id
        _row("00000006_000.png", "", "6"),                       # nan_labels
        _row("00000007_000.png", "Mass|Covid|", "7"),            # unknown_label, row kept
        _row("00000008_000.png", "Nodule", "8", view="LL"),      # projection_not_selected
    ]
    csv = _write(tmp_path, rows)
    _images(tmp_path, ["00000001_000.png", "00000001_001.png", "00000002_000.png", "00000003_000.png",
                       "00000007_000.png"])
    records = read_nih_csv(DataSource(csv, tmp_path))
    reasons = Counter(s.reason for s in records.skipped)
    assert reasons == {"missing_image_id": 1, "unsafe_path": 2, "duplicate_image_id": 1, "missing_patient_id": 1,
                       "nan_labels": 1, "unknown_label": 1, "projection_not_selected": 1}
    assert sorted(records.frame["image_id"]) == ["00000001_000.png", "00000001_001.png", "00000002_000.png",
                                                 "00000003_000.png", "00000007_000.png"]
    kept = records.frame.set_index("image_id")
    assert kept.loc["00000001_000.png", "findings"] == ("Cardiomegaly",)  # the first row wins
    assert kept.loc["00000007_000.png", "findings"] == ("Mass",)
    unsafe = [s for s in records.skipped if s.reason == "unsafe_path"]
    assert all(s.item.startswith("row ") for s in unsafe)  # a hostile name is not echoed as the item


def test_tarball_layout_and_missing_and_empty_images(tmp_path):
    csv = _write(tmp_path, GOOD)
    _images(tmp_path, ["00000001_000.png"], "images_001/images")
    _images(tmp_path, ["00000001_001.png"], "images_002/images")
    (tmp_path / "images_002" / "images" / "00000002_000.png").write_bytes(b"")
    records = read_nih_csv(DataSource(csv, tmp_path))
    paths = dict(zip(records.frame["image_id"], records.frame["image_path"]))
    assert paths == {"00000001_000.png": str(tmp_path.resolve() / "images_001/images/00000001_000.png"),
                     "00000001_001.png": str(tmp_path.resolve() / "images_002/images/00000001_001.png")}
    assert {(s.item, s.reason) for s in records.skipped} == {("00000002_000.png", "empty_image"),
                                                             ("00000003_000.png", "missing_image")}


def test_index_walks_only_image_folders_and_refuses_links_out(tmp_path):
    root, outside = tmp_path / "root", tmp_path / "outside"
    _images(root, ["a.png"], "images")
    _images(root, ["b.png"], "holiday_photos")       # not an image folder of the release
    _images(root, ["c.png"], "images_003/images")
    outside.mkdir()
    (outside / "secret.png").write_bytes(b"x")
    os.symlink(outside / "secret.png", root / "images" / "secret.png")
    os.symlink(root / "images" / "a.png", root / "images" / "alias.png")  # a link inside the root is fine
    os.symlink(outside, root / "images_009")                                # a folder link out is not entered
    (root / "images" / "notes.txt").write_text("not an image")
    found, refused = index_images(root)
    assert sorted(found) == ["a.png", "alias.png", "c.png"]
    assert sorted(refused) == ["secret.png"]

    csv = _write(root, [_row("secret.png", "Mass", "9"), _row("a.png", "Mass", "10")])
    records = read_nih_csv(DataSource(csv, root))
    assert [(s.item, s.reason) for s in records.skipped] == [("secret.png", "outside_root")]


def test_label_file_alone_points_at_the_default_folder(tmp_path):
    # no image under the root: a split from the label file alone keeps every row
    csv = _write(tmp_path, GOOD, name="Data_Entry_2017_v2020.csv.gz")
    records = read_nih_csv(DataSource(csv, tmp_path))
    assert len(records.frame) == 4 and records.skipped == []
    assert records.frame["image_path"].iloc[0] == str(tmp_path.resolve() / "images" / "00000001_000.png")


def test_older_label_file_with_its_trailing_empty_column(tmp_path):
    # Data_Entry_2017.csv ends every line with a comma: pandas names that column "Unnamed: 11"
    csv = _write(tmp_path, [r + "," for r in GOOD], name="Data_Entry_2017.csv", header=HEADER + ",")
    records = read_nih_csv(DataSource(csv, tmp_path))
    assert len(records.frame) == 4
    only_required = "Image Index,Finding Labels,Patient ID,View Position"
    csv = _write(tmp_path, ["x.png,Mass,12,PA"], name="minimal.csv", header=only_required)
    frame = read_nih_csv(DataSource(csv, tmp_path)).frame
    assert frame["age"].tolist() == [""] and frame["findings"].tolist() == [("Mass",)]


def test_unusable_sources_raise_dataset_error_naming_file_and_column(tmp_path):
    with pytest.raises(DatasetError, match="not found"):
        read_nih_csv(DataSource(tmp_path / "nope.csv", tmp_path))
    bad = _write(tmp_path, ["x.png,Mass,1"], name="bad.csv", header="Image Index,Labels,Patient ID")
    with pytest.raises(DatasetError, match=r"bad\.csv: missing required column\(s\) Finding Labels, View Position"):
        read_nih_csv(DataSource(bad, tmp_path))
    binary = tmp_path / "binary.csv"
    binary.write_bytes(b"\xff\xfe\x00garbage")
    with pytest.raises(DatasetError, match="binary.csv"):
        read_nih_csv(DataSource(binary, tmp_path))


def test_marker_makes_records_synthetic(tmp_path):
    csv = _write(tmp_path, GOOD)
    mark_synthetic(tmp_path, generator="test")
    assert read_nih_csv(DataSource(csv, tmp_path)).kind == SYNTHETIC_KIND


def test_patient_ids_are_normalised(tmp_path):
    csv = _write(tmp_path, [_row("a.png", "Mass", "00042"), _row("b.png", "Mass", " 42 ")])
    assert set(read_nih_csv(DataSource(csv, tmp_path)).frame["patient_id"]) == {"42"}


def test_a_non_ascii_digit_patient_id_is_read_not_a_crash(tmp_path):
    # '²'.isdigit() is True but int('²') raises: such a cell is kept as written, never normalised.
    csv = _write(tmp_path, [_row("00000001_000.png", "Mass", "²"), _row("00000002_000.png", "Mass", "007")])
    _images(tmp_path, ["00000001_000.png", "00000002_000.png"])
    records = read_nih_csv(DataSource(csv, tmp_path))
    assert list(records.frame["patient_id"]) == ["²", "7"] and records.skipped == []
    assert NIHDataset().profile(DataSource(csv, tmp_path))["patients"] == 2
