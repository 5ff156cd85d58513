"""The PadChest CSV reader on a hostile CSV: every bad row is skipped with a reason, none escapes."""

import gzip
import hashlib
from pathlib import Path

import pandas as pd
import pytest

from mlbench.data import DataSource, DatasetError
from mlbench_padchest.dataset import PadChestDataset
from mlbench.demo import MARKER_NAME as DEMO_MARKER
from mlbench.data.labelfile import unsafe_name_reason
from mlbench_padchest.reader import read_padchest_csv
from mlbench_padchest.tree import known_labels

# (ImageID, ImageDir, PatientID, StudyID, Projection, Labels)
ROWS = [
    ("good1.png", "0", "P1", "S1", "PA", "['normal']"),
    ("good2.png", "0", "P1", "S1", "PA", "[' pleural effusion', '', 'exclude', 'cardiomegaly ', 'cardiomegaly']"),
    ("up.png", "../../etc", "P2", "S2", "PA", "['normal']"),
    ("/etc/passwd", "0", "P2", "S2", "PA", "['normal']"),
    ("win.png", "..\\x", "P2", "S2", "PA", "['normal']"),
    ("dots.png", "..", "P2", "S2", "PA", "['normal']"),
    ("broken.png", "1", "P3", "S3", "PA", "['normal'"),
    ("string.png", "1", "P3", "S3", "PA", "'normal'"),
    ("numbers.png", "1", "P3", "S3", "PA", "[1, 2]"),
    ("code.png", "1", "P3", "S3", "PA", "__import__('os').system('echo pwned')"),
    ("nan.png", "1", "P4", "S4", "PA", ""),
    ("martian.png", "1", "P4", "S4", "PA", "['nodule', 'martian shadow']"),
    ("good1.png", "2", "P9", "S9", "PA", "['pneumonia']"),
    ("lateral.png", "1", "P5", "S5", "L", "['normal']"),
    ("nopatient.png", "1", "", "S6", "PA", "['normal']"),
    ("", "1", "P7", "S7", "PA", "['normal']"),
]


def write_csv(path: Path, rows=ROWS, drop: tuple[str, ...] = ()) -> Path:
    frame = pd.DataFrame(rows, columns=["ImageID", "ImageDir", "PatientID", "StudyID", "Projection", "Labels"])
    # PadChest's own extra columns, including a mixed-type one, and its unnamed index column.
    frame.insert(2, "StudyDate_DICOM", "20100101")
    frame["MethodLabel"] = "Physician"
    frame["Rows_DICOM"] = ["2048", "None"] * (len(frame) // 2) + ["2048"] * (len(frame) % 2)
    frame = frame.drop(columns=list(drop))
    frame.to_csv(path, index=True)
    return path


@pytest.fixture()
def hostile(tmp_path):
    csv = write_csv(tmp_path / "labels.csv")
    images = tmp_path / "images"
    return DataSource(csv, images), read_padchest_csv(DataSource(csv, images), known_labels=known_labels())


def reasons(records) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for skip in records.skipped:
        out.setdefault(skip.reason, []).append(skip.item)
    return out


def test_good_rows_are_kept_with_clean_findings(hostile):
    source, records = hostile
    frame = records.frame.set_index("image_id")
    assert sorted(frame.index) == ["good1.png", "good2.png", "martian.png"]
    assert frame.loc["good2.png", "findings"] == ("cardiomegaly", "pleural effusion")
    assert frame.loc["good1.png", "findings"] == ("normal",)
    assert frame.loc["good1.png", "patient_id"] == "P1"
    assert frame.loc["good1.png", "study_id"] == "S1"
    assert frame.loc["good1.png", "image_dir"] == "0"
    assert frame.loc["good1.png", "image_path"] == str(source.images.resolve() / "0" / "good1.png")
    assert records.kind == "padchest"
    assert records.source_sha256 == hashlib.sha256(source.csv.read_bytes()).hexdigest()


def test_every_bad_row_is_skipped_with_its_reason(hostile):
    _, records = hostile
    r = reasons(records)
    assert r["unsafe_path"] == ["up.png", "row 4", "win.png", "dots.png"]
    assert r["unparseable_labels"] == ["broken.png", "string.png", "numbers.png", "code.png"]
    assert r["nan_labels"] == ["nan.png"]
    assert r["duplicate_image_id"] == ["good1.png"]
    assert r["not_pa"] == ["lateral.png"]
    assert r["missing_patient_id"] == ["nopatient.png"]
    assert r["missing_image_id"] == ["row 16"]
    # nothing lost: every CSV row is either kept or skipped exactly once (unknown labels keep their row)
    row_skips = [s for s in records.skipped if s.reason != "unknown_label"]
    assert len(records.frame) + len(row_skips) == len(ROWS)


def test_skip_details_explain_the_problem(hostile):
    _, records = hostile
    detail = {(s.item, s.reason): s.detail for s in records.skipped}
    assert "ImageDir '../../etc'" in detail[("up.png", "unsafe_path")]
    assert "ImageID '/etc/passwd'" in detail[("row 4", "unsafe_path")]
    assert "got str" in detail[("string.png", "unparseable_labels")]
    assert "must be strings, found int" in detail[("numbers.png", "unparseable_labels")]
    assert "not a Python literal" in detail[("code.png", "unparseable_labels")]
    assert "row 1" in detail[("good1.png", "duplicate_image_id")]


def test_unknown_label_is_recorded_and_the_row_keeps_its_other_labels(hostile):
    _, records = hostile
    unknown = [s for s in records.skipped if s.reason == "unknown_label"]
    assert [(s.item, s.detail) for s in unknown] == [("martian.png", "martian shadow")]
    assert records.frame.set_index("image_id").loc["martian.png", "findings"] == ("nodule",)


def test_no_kept_path_leaves_the_image_folder(hostile):
    source, records = hostile
    root = source.images.resolve()
    for path in records.frame["image_path"]:
        assert Path(path).resolve().is_relative_to(root)


@pytest.mark.parametrize("name", ["", ".", "..", "a/b", "a\\b", "/abs", "C:evil", "nul\0byte", "tab\there"])
def test_unsafe_names(name):
    assert unsafe_name_reason(name) is not None


def test_plain_names_are_safe():
    assert unsafe_name_reason("216840111366964012989926673512011151082430686_00-157-045.png") is None
    assert unsafe_name_reason("54") is None


def test_all_projections_and_known_labels_off(tmp_path):
    csv = write_csv(tmp_path / "labels.csv")
    records = read_padchest_csv(DataSource(csv, tmp_path), projections=None)
    kept = set(records.frame["image_id"])
    assert "lateral.png" in kept
    assert records.frame.set_index("image_id").loc["martian.png", "findings"] == ("martian shadow", "nodule")
    assert not [s for s in records.skipped if s.reason in ("not_pa", "unknown_label")]


def test_other_projection_choice_names_its_reason(tmp_path):
    csv = write_csv(tmp_path / "labels.csv")
    records = read_padchest_csv(DataSource(csv, tmp_path), projections=("L",))
    assert list(records.frame["image_id"]) == ["lateral.png"]
    assert {s.reason for s in records.skipped} >= {"projection_not_selected"}


def test_missing_columns_name_the_file_the_columns_and_what_was_found(tmp_path):
    csv = write_csv(tmp_path / "labels.csv", drop=("Labels", "PatientID"))
    with pytest.raises(DatasetError) as err:
        read_padchest_csv(DataSource(csv, tmp_path))
    message = str(err.value)
    assert str(csv) in message
    assert "missing required column(s) PatientID, Labels" in message
    assert "found ImageID, ImageDir, StudyDate_DICOM" in message


def test_missing_and_empty_files_are_clear_errors(tmp_path):
    with pytest.raises(DatasetError, match="not found"):
        read_padchest_csv(DataSource(tmp_path / "absent.csv", tmp_path))
    empty = tmp_path / "empty.csv"
    empty.write_text("")
    with pytest.raises(DatasetError, match=r"empty.csv: cannot read it as a CSV file"):
        read_padchest_csv(DataSource(empty, tmp_path))


def test_gzipped_csv_reads_the_same(tmp_path):
    plain = write_csv(tmp_path / "labels.csv")
    packed = tmp_path / "labels.csv.gz"
    packed.write_bytes(gzip.compress(plain.read_bytes()))
    a = read_padchest_csv(DataSource(plain, tmp_path), known_labels=known_labels())
    b = read_padchest_csv(DataSource(packed, tmp_path), known_labels=known_labels())
    pd.testing.assert_frame_equal(a.frame, b.frame)
    assert a.skipped == b.skipped
    assert b.source_sha256 == hashlib.sha256(packed.read_bytes()).hexdigest()


def test_demo_marker_makes_the_records_synthetic(tmp_path):
    csv = write_csv(tmp_path / "labels.csv")
    (tmp_path / DEMO_MARKER).write_text("{}")
    assert read_padchest_csv(DataSource(csv, tmp_path)).kind == "synthetic"


def test_dataset_plugin_uses_the_term_tree(tmp_path):
    csv = write_csv(tmp_path / "labels.csv")
    records = PadChestDataset().read(DataSource(csv, tmp_path / "images"))
    assert [s.detail for s in records.skipped if s.reason == "unknown_label"] == ["martian shadow"]
    assert "lateral.png" not in set(records.frame["image_id"])


def test_nul_bytes_in_names_are_unsafe(tmp_path):
    csv = tmp_path / "nul.csv"
    csv.write_bytes(b",ImageID,ImageDir,PatientID,Projection,Labels\n"
                    b"0,a\x00b.png,0,P,PA,\"['normal']\"\n"
                    b"1,ok.png,0\x00,P,PA,\"['normal']\"\n"
                    b"2,c.png,0,P,PA,\"['normal']\"\n")
    records = read_padchest_csv(DataSource(csv, tmp_path))
    assert records.frame["image_id"].tolist() == ["c.png"]
    assert [(s.item, s.reason) for s in records.skipped] == [("row 1", "unsafe_path"), ("ok.png", "unsafe_path")]
    assert records.frame["study_id"].tolist() == [""]  # StudyID is optional
