"""The merged padchest-nih benchmark on both demo corpora: a whole tiny run, the split rule, each mistake one line."""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner

import mlbench
from mlbench.cli import main
from mlbench.testing import assert_one_error
from mlbench.data import DataSource, DatasetError
from mlbench.data.splits import assert_patient_disjoint, split_benchmark
from mlbench_merged.dataset import PADCHEST_NIH, padchest_nih
from mlbench_merged.sources import SOURCES_FILE, read_sources_file

DEMO = ["--demo-option", "n_patients=20", "--demo-option", "image_size=64"]
TINY_RUN = ["--backbones", "resnet10t", "--ensembles", "ctp", "--epochs", "1", "--image-size", "32", "--workers", "1",
            "--no-pretrained", "--bootstrap", "10", "--quiet"]
LABELS = ("Atelectasis", "Cardiomegaly", "Effusion", "Infiltration", "Mass", "Nodule", "Pneumonia", "Pneumothorax",
          "Emphysema", "Fibrosis", "Pleural_Thickening", "Hernia")


def cli(*args):
    return CliRunner().invoke(main, [str(a) for a in args], catch_exceptions=False)



@pytest.fixture(scope="module")
def corpus(tmp_path_factory) -> DataSource:
    out = tmp_path_factory.mktemp("merged")
    return padchest_nih().write_demo(out / "demo", seed=0, n_patients=20, image_size=64, workers=1)


def registry_benchmark(name: str):
    return mlbench.get_registry().create("benchmark", name)


def test_labels_are_the_findings_both_sources_label_named_by_the_vocabulary():
    bench = registry_benchmark("padchest-nih")
    assert bench.labels == LABELS
    nih, padchest = registry_benchmark("nih-cxr14"), registry_benchmark("padchest-general")
    both = ({f.term for f in nih.findings.labels.values()} & {f.term for f in padchest.findings.labels.values()})
    assert set(bench.labels) == both  # NIH's Consolidation and Edema: no padchest-general label maps to them


def test_demo_writes_both_corpora_in_their_own_formats_and_a_sources_file(corpus):
    root = Path(corpus.images)
    assert Path(corpus.csv) == root / SOURCES_FILE
    text = Path(corpus.csv).read_text()
    assert "[padchest]" in text and "[nih]" in text and "sha256" in text
    files = read_sources_file(Path(corpus.csv), root, PADCHEST_NIH)
    assert [f.source.name for f in files] == ["padchest", "nih"]
    for f in files:  # each source's own reader reads its own corpus, inside its own folder
        assert Path(f.images).resolve().is_relative_to(root / f.source.name)
        own = mlbench.get_registry().create("dataset", f.source.dataset).read(DataSource(f.csv, f.images))
        assert len(own.frame) > 0 and own.kind == mlbench.SYNTHETIC_KIND
    assert mlbench.is_marked_synthetic(Path(corpus.csv))


def test_merged_records_prefix_ids_record_the_source_and_leave_narrower_negatives_unknown(corpus):
    records = padchest_nih().read(corpus)
    frame = records.frame
    assert records.kind == mlbench.SYNTHETIC_KIND and frame["image_id"].is_unique
    for column in ("image_id", "patient_id"):
        assert (frame[column].str.split(":").str[0] == frame[mlbench.SOURCE_COLUMN]).all()
    assert set(frame[mlbench.SOURCE_COLUMN]) == {"padchest", "nih"}
    nih, pad = frame[frame.source == "nih"], frame[frame.source == "padchest"]
    assert all(u == () for u in nih[mlbench.UNKNOWN_COLUMN])  # NIH's 14 labels are exactly their terms
    # PadChest's hiatal hernia is one kind of Hernia: its positives count, its negatives are unknown.
    for findings, unknown in zip(pad["findings"], pad[mlbench.UNKNOWN_COLUMN]):
        assert ("Hernia" in findings) != (unknown == ("Hernia",))
    assert set(records.facts["sources"]) == {"padchest", "nih"}
    assert all(s.item.split(":")[0] in ("padchest", "nih") for s in records.skipped)


def test_split_keeps_nih_pinned_test_patients_in_test_and_splits_padchest_70_10_20(corpus):
    records = padchest_nih().read(corpus)
    split = split_benchmark(records, registry_benchmark("padchest-nih"))
    frame, splits = split.frame, split.splits
    assert_patient_disjoint(frame["patient_id"].tolist(), splits)
    nih_own = mlbench.get_registry().create("dataset", "nih-cxr14").read(
        DataSource(Path(corpus.images) / "nih" / "Data_Entry_2017_v2020.csv", Path(corpus.images) / "nih"))
    official = nih_own.frame.loc[registry_benchmark("nih-cxr14").fixed_test(nih_own.frame), "image_id"]
    official = {f"nih:{i}" for i in official}
    assert official and set(frame.loc[splits == "test"].query("source == 'nih'")["image_id"]) == official
    per = split.summary["per_source"]
    assert per["nih"]["sizes"]["test"] == len(official)
    assert per["padchest"]["sizes"]["test"] > 0 and per["padchest"]["sizes"]["train"] > per["padchest"]["sizes"]["val"]
    assert sum(p["n_images"] for p in per.values()) == len(frame)
    assert split.known is not None and int((~split.known).sum()) == split.summary["unknown_cells"]


def test_demo_run_on_both_corpora_ends_with_a_leaderboard_on_the_merged_labels(tmp_path):
    out = tmp_path / "run"
    result = cli("run", "padchest-nih", "--demo", *DEMO, *TINY_RUN, "--out", out)
    assert result.exit_code == 0, result.output[-3000:]
    board = pd.read_parquet(out / "leaderboard.parquet")
    assert set(board["label"]) - {l for l in board["label"] if l.startswith("__")} == set(LABELS)
    assert set(board["dataset_kind"]) == {"synthetic"} and set(board["benchmark"]) == {"padchest-nih"}
    split = pd.read_parquet(out / "split.parquet")
    assert set(split["image_id"].str.split(":").str[0]) == {"padchest", "nih"}
    assert split["Hernia"].isna().any() and split["Cardiomegaly"].notna().all()  # unknown cells are nulls
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["unknown_cells"]["test"] > 0 and manifest["recipe"]["preprocessor"] == "resize"
    again = cli("run", "padchest-nih", "--demo", *DEMO, *TINY_RUN, "--out", out)  # resumes: nothing to redo
    assert again.exit_code == 0, again.output[-3000:]
    assert json.loads((out / "manifest.json").read_text())["split_hash"] == manifest["split_hash"]


def _sources(folder: Path, corpus: DataSource, **tables) -> Path:
    root = Path(corpus.images)
    default = {"padchest": {"csv": str(root / "padchest" / "PADCHEST_demo_labels.csv"), "images": str(root / "padchest")},
               "nih": {"csv": str(root / "nih" / "Data_Entry_2017_v2020.csv"), "images": str(root / "nih")}}
    default.update(tables)
    lines = []
    for name, table in default.items():
        if table is None:
            continue
        lines.append(f"[{name}]")
        lines += [f"{k} = {json.dumps(v)}" for k, v in table.items()]
    path = folder / "sources.toml"
    path.write_text("\n".join(lines) + "\n")
    return path


def test_each_mistake_in_the_sources_file_is_one_line_naming_the_source_and_the_path(corpus, tmp_path):
    root = Path(corpus.images)
    csv = root / "nih" / "Data_Entry_2017_v2020.csv"

    def split_error(sources: Path, *names: str, images: Path = root) -> None:
        assert_one_error(cli("split", "padchest-nih", "--csv", sources, "--images", images, "--out", tmp_path / "s"), *names)

    split_error(_sources(tmp_path, corpus, nih=None), "no [nih] table", "padchest, nih")
    split_error(_sources(tmp_path, corpus, chexpert={"csv": str(csv), "images": str(root)}), "[chexpert]", "padchest, nih")
    split_error(_sources(tmp_path, corpus, nih={"csv": str(root / "nope.csv"), "images": str(root / "nih")}),
                "[nih] csv", "nope.csv", "no such file")
    split_error(_sources(tmp_path, corpus, nih={"csv": str(csv), "images": str(root / "gone")}),
                "[nih] images", "gone", "no such folder")
    split_error(_sources(tmp_path, corpus, nih={"csv": str(csv), "images": str(root / "nih"), "colour": "red"}),
                "[nih]", "'colour'", "csv, images, sha256")
    split_error(_sources(tmp_path, corpus, nih={"csv": str(csv), "images": str(root / "nih"), "sha256": "0" * 64}),
                "[nih] csv", "sha256 differs")
    split_error(_sources(tmp_path, corpus, nih={"csv": 3, "images": str(root / "nih")}), "[nih] csv must be a path")
    outside = tmp_path / "elsewhere"
    outside.mkdir()
    split_error(_sources(tmp_path, corpus, nih={"csv": str(csv), "images": str(outside)}),
                "[nih] images", "outside --images")
    os.symlink(outside, root / "nih-link")  # a link inside the root that leads out of it
    try:
        split_error(_sources(tmp_path, corpus, nih={"csv": str(csv), "images": str(root / "nih-link")}),
                    "[nih] images", "outside --images")
    finally:
        os.unlink(root / "nih-link")
    broken = tmp_path / "broken.toml"
    broken.write_text("[nih\ncsv = 1\n")
    split_error(broken, str(broken), "not a TOML sources file")
    assert_one_error(cli("run", "padchest-nih", "--demo", "--demo-option", "chexpert.n_patients=3", *TINY_RUN,
                  "--out", tmp_path / "r"), "chexpert.n_patients", "padchest, nih")
    assert not (tmp_path / "s").exists()


def test_relative_paths_are_relative_to_the_sources_file(corpus, tmp_path):
    records = padchest_nih().read(corpus)  # the demo's sources file names its corpora relatively
    assert not os.path.isabs(Path(corpus.csv).read_text().split('csv = "')[1].split('"')[0])
    assert len(records.frame) > 0 and np.all(records.frame["image_path"].map(os.path.isabs))


def test_the_read_identity_covers_every_label_file_not_only_the_sources_file(corpus, tmp_path):
    root = Path(corpus.images)
    copy = tmp_path / "nih.csv"
    copy.write_bytes((root / "nih" / "Data_Entry_2017_v2020.csv").read_bytes())
    sources = _sources(tmp_path, corpus, nih={"csv": str(copy), "images": str(root / "nih")})  # no sha256 pinned
    before = padchest_nih().read(DataSource(sources, root)).source_sha256
    lines = copy.read_text().splitlines(keepends=True)
    copy.write_text("".join(lines[:-1]))  # one image fewer behind an unchanged sources file
    after = padchest_nih().read(DataSource(sources, root))
    assert after.source_sha256 != before and len(after.frame) > 0
