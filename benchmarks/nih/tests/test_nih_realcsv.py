"""The NIH benchmarks on the real label file (shipped in the torchxrayvision 1.5.7 wheel).

Run with ``pytest -m realcsv``. The label file is read from the installed package, never copied
into the repository. The figures asserted here are facts of the label file and of NIH's official
test list (mlbench_nih/data/ATTRIBUTION.md).
"""

from __future__ import annotations

import gzip
import hashlib
import importlib.util
import json
import shutil
from pathlib import Path

import pyarrow.parquet as pq
import pytest
from click.testing import CliRunner

from mlbench.data import DataSource
from mlbench.data.canonical import canonical_source, content_sha256, describe
from mlbench.data.inspect import inspect_dataset
from mlbench.data.splits import SPLITS, assert_patient_disjoint, split_benchmark
from mlbench_nih.benchmarks import nih_cxr14, nih_cxr14_pa
from mlbench_nih.dataset import NIHDataset
from mlbench_nih.labels import LABELS, OFFICIAL_TEST_IMAGES, OFFICIAL_TEST_SHA256, official_test_patients

pytestmark = pytest.mark.realcsv

CSV_NAME = "Data_Entry_2017_v2020.csv.gz"
LABEL_COUNTS = {
    "Infiltration": 19_894, "Effusion": 13_317, "Atelectasis": 11_559, "Nodule": 6_331, "Mass": 5_782,
    "Pneumothorax": 5_302, "Consolidation": 4_667, "Pleural_Thickening": 3_385, "Cardiomegaly": 2_776,
    "Emphysema": 2_516, "Edema": 2_303, "Fibrosis": 1_686, "Pneumonia": 1_431, "Hernia": 227,
}
# The splits of this file at the benchmarks' seed 0 (test pinned, train/val stratified 7:1). Any
# machine must get these: a different value means the split is not reproducible.
SPLIT_HASHES = {
    "nih-cxr14": "e8f4250f68c78e914229282f21b9f9769d52f739063901ee003b6655093cde84",
    "nih-cxr14-pa": "cf021a42e93b2d2a5929c2e301bb188a697e4c24231be83682fdde8d8c9b1ad5",
}


def real_csv() -> Path:
    # find_spec locates the installed package without importing it (its import loads torch models).
    spec = importlib.util.find_spec("torchxrayvision")
    if spec is None or not spec.submodule_search_locations:
        pytest.fail("the real-CSV tests need NIH's label file shipped in torchxrayvision==1.5.7: "
                    "install the test extra (pip install -e '.[test]') or deselect them with -m 'not realcsv'")
    path = Path(next(iter(spec.submodule_search_locations))) / "data" / CSV_NAME
    if not path.is_file():
        pytest.fail(f"{path} is missing: install torchxrayvision==1.5.7 (the test extra)")
    return path


@pytest.fixture(scope="module")
def source() -> DataSource:
    csv = real_csv()
    return DataSource(csv, csv.parent)  # no images there: the labels-only reading


@pytest.fixture(scope="module")
def records(source):
    return NIHDataset().read(source)


@pytest.fixture(scope="module")
def split(records):
    return split_benchmark(records, nih_cxr14())


def _test_checksum(image_ids) -> str:
    return hashlib.sha256("\n".join(sorted(image_ids)).encode()).hexdigest()


def test_label_file_facts(records):
    frame = records.frame
    assert records.kind == "nih-cxr14" and records.skipped == []
    assert len(frame) == 112_120 and frame["patient_id"].nunique() == 30_805
    assert frame["projection"].value_counts().to_dict() == {"PA": 67_310, "AP": 44_810}
    counts = {label: 0 for label in LABELS}
    for findings in frame["findings"]:
        for label in findings:
            counts[label] += 1
    assert counts == LABEL_COUNTS
    assert sum(1 for f in frame["findings"] if not f) == 60_361  # No Finding


def test_official_test_split(split):
    test = split.frame.loc[split.splits == "test"]
    assert len(test) == OFFICIAL_TEST_IMAGES
    assert _test_checksum(test["image_id"]) == OFFICIAL_TEST_SHA256
    assert set(test["patient_id"]) == official_test_patients()
    assert len(split.frame) == 112_120  # No Finding films stay (all-zero rows)


def test_train_val_are_patient_disjoint_7_to_1_with_every_label_everywhere(split):
    assert_patient_disjoint(split.frame["patient_id"].tolist(), split.splits)
    sizes = split.summary["sizes"]
    assert sizes["train"] / sizes["val"] == pytest.approx(7, rel=0.03)
    assert split.summary["labels_missing_from_a_split"] == []
    for s in SPLITS:
        assert split.Y[split.splits == s].sum(axis=0).min() > 0
    assert split.summary["split_hash"] == SPLIT_HASHES["nih-cxr14"]
    assert split.summary["pinned_test_set"] is True


def test_pa_only_benchmark_keeps_the_official_test_patients(source):
    bench = nih_cxr14_pa()
    records = NIHDataset(projections=("PA",)).read(source)
    split = split_benchmark(records, bench)
    assert len(split.frame) == 67_310
    test = split.frame.loc[split.splits == "test"]
    assert set(test["patient_id"]) <= official_test_patients()
    assert not set(split.frame.loc[split.splits != "test", "patient_id"]) & official_test_patients()
    assert split.summary["labels_missing_from_a_split"] == []
    assert split.summary["split_hash"] == SPLIT_HASHES["nih-cxr14-pa"]


def test_split_command_puts_exactly_the_official_images_in_test(tmp_path, source):
    from mlbench.cli import main

    result = CliRunner().invoke(main, ["split", "nih-cxr14", "--csv", str(source.csv), "--out", str(tmp_path)])
    assert result.exit_code == 0, result.output
    table = pq.read_table(tmp_path / "split.parquet")
    assert table.column_names == ["image_id", "patient_id", "split", *LABELS]
    ids = [i for i, s in zip(table.column("image_id").to_pylist(), table.column("split").to_pylist()) if s == "test"]
    assert len(ids) == OFFICIAL_TEST_IMAGES and _test_checksum(ids) == OFFICIAL_TEST_SHA256
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert summary["split_hash"] == SPLIT_HASHES["nih-cxr14"]


def test_inspect_reports_imbalance(source):
    report = inspect_dataset("nih-cxr14", source)
    assert report["images_kept"] == 112_120 and report["kind"] == "nih-cxr14"
    assert report["profile"]["label_counts"] == {label: LABEL_COUNTS[label] for label in LABELS}
    assert report["profile"]["no_finding"] == 60_361
    (bench,) = [b for b in report["benchmarks"] if b["benchmark"] == "nih-cxr14"]
    overall = bench["imbalance"]["all"]
    assert overall["max_ir"] == pytest.approx(19_894 / 227)
    assert overall["irlbl"]["Hernia"] == pytest.approx(19_894 / 227)
    assert bench["sizes"]["test"] == OFFICIAL_TEST_IMAGES

    from mlbench.cli import main

    result = CliRunner().invoke(main, ["datasets", "inspect", "nih-cxr14", "--csv", str(source.csv)])
    assert result.exit_code == 0, result.output
    assert "nih-cxr14" in result.output


# -- the canonical release the benchmarks pin (Benchmark.canonical_sources) ----------------------------
def test_both_benchmarks_pin_the_2020_release_by_its_decompressed_content(source):
    digest = content_sha256(source.csv)
    for bench in (nih_cxr14(), nih_cxr14_pa()):
        (pin,) = bench.canonical_sources
        assert pin.release == CSV_NAME.removesuffix(".gz")
        assert pin.content_sha256 == digest
        assert canonical_source(bench, source.csv) == pin
        assert describe(bench, source.csv) == {"canonical": True, "release": pin.release, "content_sha256": digest}


def test_the_decompressed_release_is_the_same_source(source, tmp_path):
    plain = tmp_path / CSV_NAME.removesuffix(".gz")
    with gzip.open(source.csv, "rb") as packed, open(plain, "wb") as out:
        shutil.copyfileobj(packed, out, 1 << 20)
    assert content_sha256(plain) == content_sha256(source.csv)
    assert canonical_source(nih_cxr14(), plain) == nih_cxr14().canonical_sources[0]


def test_the_pinned_splits_are_the_splits_recomputed_from_the_file(source, split):
    assert nih_cxr14().canonical_sources[0].split_hash == split.summary["split_hash"] == SPLIT_HASHES["nih-cxr14"]
    pa_split = split_benchmark(NIHDataset(projections=("PA",)).read(source), nih_cxr14_pa())
    assert nih_cxr14_pa().canonical_sources[0].split_hash == pa_split.summary["split_hash"] \
        == SPLIT_HASHES["nih-cxr14-pa"]
