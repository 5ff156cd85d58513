"""The folder benchmark: a CSV and an image folder, no plugin written (issue 23 part 5).

Tiny RGB shape folders (32 px) and the 60 real NIH test films laid out as such a CSV; every label
layout, every policy that works, the mistakes as one line, and `mlbench run` end to end.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import cv2
import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner

import mlbench
from mlbench.cli import main
from mlbench.testing import assert_one_error
from mlbench.data import DataSource, DatasetError
from mlbench.data.imagepaths import OUTSIDE_ROOT
from mlbench.data.splits import SPLIT_KEY_COLUMNS
from mlbench_folder.dataset import FolderDataset
from mlbench_folder.demo import draw_image, write_demo_folder

NIH_FILMS = Path(__file__).resolve().parents[3] / "tests" / "data" / "nih"
TINY_RUN = ["--backbones", "resnet10t", "--ensembles", "ctp", "--epochs", "1", "--image-size", "32", "--workers", "1",
            "--no-pretrained", "--bootstrap", "10", "--quiet"]


def cli(*args):
    return CliRunner().invoke(main, [str(a) for a in args], catch_exceptions=False)



def write_png(path: Path, rgb: tuple[int, int, int] = (200, 40, 40), size: int = 32) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    image = np.zeros((size, size, 3), np.uint8)
    image[...] = rgb[::-1]
    cv2.imwrite(str(path), image)


def cell_folder(tmp_path: Path, rows: list[tuple[str, str, str, str]]) -> DataSource:
    """A per-label CSV (path, patient, a, b) over solid RGB images, one per row."""
    images = tmp_path / "images"
    for path, *_ in rows:
        write_png(images / path)
    lines = ["path,patient,a,b"] + [",".join(r) for r in rows]
    (tmp_path / "labels.csv").write_text("\n".join(lines) + "\n")
    return DataSource(tmp_path / "labels.csv", images)


CELLS = [("x1.png", "p1", "1", "-1"), ("x2.png", "p2", "-1", ""), ("x3.png", "p3", "0", "1"),
         ("x4.png", "p4", "", "0"), ("sub/x5.png", "p5", "1", "1"), ("x6.png", "p6", "0", "-1")]


def split_matrix(tmp_path: Path, source: DataSource, options: dict) -> tuple[dict, pd.DataFrame]:
    out = tmp_path / f"split-{'-'.join(f'{k}{v}' for k, v in sorted(options.items()))}"
    summary = mlbench.split_dataset("folder", source.csv, out, images=source.images, dataset_options=options)
    frame = pd.read_parquet(out / "split.parquet").set_index("image_id").sort_index()
    return summary, frame


@pytest.mark.parametrize("policy, a, b", [
    ("ones", [1, 1, 0, 0, 1, 0], [1, 0, 1, 0, 1, 1]),
    ("zeros", [1, 0, 0, 0, 1, 0], [0, 0, 1, 0, 1, 0]),
])
def test_one_column_per_label_under_each_policy_gives_this_exact_matrix(tmp_path, policy, a, b):
    source = cell_folder(tmp_path, CELLS)
    summary, frame = split_matrix(tmp_path, source, {"policy": policy, "min_count": 1})
    ids = ["sub/x5.png", "x1.png", "x2.png", "x3.png", "x4.png", "x6.png"]  # sorted ids; rows of CELLS reordered
    order = [4, 0, 1, 2, 3, 5]
    assert frame.index.tolist() == ids
    assert [c for c in frame.columns if c not in SPLIT_KEY_COLUMNS] == ["a", "b"]
    assert frame["a"].tolist() == [a[i] for i in order] and frame["b"].tolist() == [b[i] for i in order]
    assert summary["dataset"]["uncertain_cells"] == 3 and summary["dataset"]["blank_cells"] == 2
    assert summary["dataset"]["blank_means"] == "0 (absent)"


def test_a_joined_labels_column_and_min_count(tmp_path):
    images = tmp_path / "imgs"
    rows = [("a.png", "1", "cat;dog"), ("b.png", "1", "dog"), ("c.png", "2", ""), ("d.png", "3", "dog;owl")]
    for name, *_ in rows:
        write_png(images / name)
    csv = tmp_path / "l.csv"
    csv.write_text("file,who,tags\n" + "".join(f"{p},{g},{t}\n" for p, g, t in rows))
    options = {"path_column": "file", "group_column": "who", "labels": "tags", "separator": ";", "min_count": 2}
    summary, frame = split_matrix(tmp_path, DataSource(csv, images), options)
    assert [c for c in frame.columns if c not in SPLIT_KEY_COLUMNS] == ["dog"]  # cat and owl: 1 image each
    assert frame["dog"].tolist() == [1, 1, 0, 1]
    assert frame["patient_id"].tolist() == ["1", "1", "2", "3"]
    assert summary["dataset"]["labels_dropped"] == {"cat": "1 image(s) < min_count 2", "owl": "1 image(s) < min_count 2"}
    assert summary["dataset"]["images_without_labels"] == 1


def test_the_split_hash_follows_label_options_and_the_policy_keeps_the_test_patients(tmp_path):
    source = write_demo_folder(tmp_path / "shapes", n_patients=30, image_size=32)
    ones, ones_frame = split_matrix(tmp_path, source, {"policy": "ones"})
    zeros, zeros_frame = split_matrix(tmp_path, source, {"policy": "zeros"})
    fewer, _ = split_matrix(tmp_path, source, {"min_count": 6})
    assert len({ones["split_hash"], zeros["split_hash"], fewer["split_hash"]}) == 3
    assert ones_frame["split"].tolist() == zeros_frame["split"].tolist()  # the same patients in every subset
    assert zeros["dataset"]["uncertain_cells"] > 0
    assert (ones_frame["circle"] >= zeros_frame["circle"]).all() and (ones_frame != zeros_frame).any().any()
    (tmp_path / "again").mkdir()
    again, _ = split_matrix(tmp_path / "again", source, {"policy": "ones"})
    assert again["split_hash"] == ones["split_hash"]  # deterministic


def test_paths_outside_the_folder_are_skipped_as_outside_root(tmp_path):
    images = tmp_path / "images"
    write_png(images / "in.png")
    write_png(images / "ok" / "deep.png")
    write_png(tmp_path / "secret.png")
    os.symlink(tmp_path / "secret.png", images / "link.png")
    rows = ["in.png", "ok/../ok/deep.png", str(tmp_path / "secret.png"), "../secret.png", "link.png", "gone.png",
            "in.png"]
    csv = tmp_path / "labels.csv"
    csv.write_text("path,labels\n" + "".join(f"{p},x\n" for p in rows))
    records = FolderDataset(min_count=1).read(DataSource(csv, images))
    assert records.frame["image_id"].tolist() == ["in.png", "ok/deep.png"]
    reasons = [(s.item, s.reason) for s in records.skipped]
    assert reasons == [("row 3", OUTSIDE_ROOT), ("row 4", OUTSIDE_ROOT), ("link.png", OUTSIDE_ROOT),
                       ("gone.png", "missing_image"), ("in.png", "duplicate_image_id")]
    assert "leads outside the image folder" in records.skipped[0].detail
    assert all(Path(p).resolve().is_relative_to(images.resolve()) for p in records.frame["image_path"])


def test_mistakes_are_one_line_naming_the_file_row_column_or_option(tmp_path):
    source = cell_folder(tmp_path, CELLS)
    out = tmp_path / "split"
    assert_one_error(cli("run", "folder", "--csv", source.csv, "--images", source.images, "--out", tmp_path / "r",
                  "--dataset-option", "policy=ignore", "--adjuster", "temperature", *TINY_RUN),
              "policy=ignore leaves unknown label cells", "--adjuster none")
    assert_one_error(cli("split", "folder", "--csv", source.csv, "--images", source.images, "--out", out,
                  "--dataset-option", "colour=red"), "colour", "path_column, group_column, labels")
    assert_one_error(cli("split", "folder", "--csv", source.csv, "--images", source.images, "--out", out,
                  "--dataset-option", "min_count=many"), "min_count=many", "integer")
    assert_one_error(cli("split", "folder", "--csv", source.csv, "--images", source.images, "--out", out,
                  "--dataset-option", "labels=a,zz"), str(source.csv), "zz")
    assert_one_error(cli("split", "folder", "--csv", source.csv, "--images", source.images, "--out", out,
                  "--dataset-option", "path_column=file"), str(source.csv), "file")
    assert_one_error(cli("run", "folder", "--csv", source.csv, "--images", source.images, "--out", tmp_path / "r",
                  "--dataset-option", "policy=maybe", *TINY_RUN), "policy=maybe", "ones, zeros")
    assert not (tmp_path / "r").exists() and not out.exists()  # refused before any work
    # A per-label cell that is none of 1 / 0 / -1 / blank: that row is skipped, named by row and column.
    (tmp_path / "labels.csv").write_text("path,patient,a,b\nx1.png,p1,1,yes\nx3.png,p3,1,0\n")
    assert FolderDataset(min_count=1).read(source).facts["other_columns"] == ["b"]  # auto: not a label column
    records = FolderDataset(min_count=1, labels="a,b").read(source)
    assert [(s.item, s.reason) for s in records.skipped] == [("x1.png", "bad_label_value")]
    assert "row 1: column 'b' holds 'yes'" in records.skipped[0].detail
    with pytest.raises(DatasetError, match="min_count 5"):
        FolderDataset().read(source)


def test_datasets_inspect_lists_the_options_and_what_the_reader_counted(tmp_path):
    result = cli("datasets", "inspect", "folder")
    assert result.exit_code == 0 and "policy" in result.output and "min_count" in result.output
    source = cell_folder(tmp_path, CELLS)
    report = mlbench.inspect_dataset("folder", source.csv, images=source.images,
                                     dataset_options={"min_count": 1, "policy": "zeros"})
    options = {o["name"]: o for o in report["options"]}
    assert options["policy"]["value"] == "zeros" and options["policy"]["changes_labels"]
    assert not options["path_column"]["changes_labels"]
    assert report["facts"]["uncertain_cells"] == 3 and report["facts"]["blank_cells"] == 2
    assert report["benchmarks"][0]["labels"] == ["a", "b"]
    printed = cli("datasets", "inspect", "folder", "--csv", source.csv, "--images", source.images,
                  "--dataset-option", "min_count=1")
    assert printed.exit_code == 0 and "blank_means: 0 (absent)" in printed.output


def test_rgb_images_are_read_as_luminance(tmp_path):
    """An RGB PNG reaches the recipe as one channel: OpenCV's BT.601 luma 0.299 R + 0.587 G + 0.114 B."""
    from mlbench.preprocessing.images import read_grayscale

    for rgb in ((255, 0, 0), (0, 255, 0), (0, 0, 255), (40, 160, 220)):
        write_png(tmp_path / "c.png", rgb)
        image = read_grayscale(tmp_path / "c.png", invert=False)
        assert image.shape == (32, 32)
        assert abs(float(image.mean()) * 255 - (0.299 * rgb[0] + 0.587 * rgb[1] + 0.114 * rgb[2])) < 1.0
    drawn, boxes = draw_image({"circle": False, "square": True}, 32, np.random.default_rng(0))
    assert drawn.shape == (32, 32, 3) and set(boxes) == {"circle", "square"}


def test_the_folder_recipe_never_flips_an_image_the_chest_film_test_would(tmp_path):
    """The cache reads the folder's images as they are: its resize preprocessor has auto_invert off."""
    from mlbench.contracts.registry import get_registry
    from mlbench.preprocessing.cache import prepare_image_and_box
    from mlbench.preprocessing.images import looks_inverted, read_grayscale

    registry = get_registry()
    recipe = registry.create("benchmark", "folder").recipe
    size = 32
    kept = registry.create("preprocessor", recipe.active_preprocessor, size=size, **dict(recipe.preprocessor_options))
    films = registry.create("preprocessor", recipe.active_preprocessor, size=size)  # the chest-film default
    source = write_demo_folder(tmp_path / "shapes", n_patients=30, image_size=size)
    paths = sorted(Path(source.images).rglob("*.png"))
    flipped = [p for p in paths if looks_inverted(read_grayscale(p, invert=False))]
    assert flipped, "the demo should hold images the chest-film test calls inverted"
    for path in flipped:
        as_is = films(read_grayscale(path, invert=False)).image
        assert np.array_equal(prepare_image_and_box(path, kept, size)[0],
                              np.clip(np.rint(as_is * 255.0), 0, 255).astype(np.uint8))
        assert not np.array_equal(prepare_image_and_box(path, films, size)[0], prepare_image_and_box(path, kept, size)[0])


def test_mlbench_run_on_a_csv_and_a_folder_of_rgb_images_with_no_plugin(tmp_path):
    source = write_demo_folder(tmp_path / "shapes", n_patients=24, image_size=32)
    csv = tmp_path / "mine.csv"  # the user's own CSV: another path column name, labels joined
    demo = pd.read_csv(source.csv, dtype=str, keep_default_na=False)
    shapes = [c for c in demo.columns if c not in ("path", "patient")]
    joined = ["+".join(s for s in shapes if row[s] in ("1", "-1")) for _, row in demo.iterrows()]
    pd.DataFrame({"file": demo["path"], "patient": demo["patient"], "shapes": joined}).to_csv(csv, index=False)
    out = tmp_path / "run"
    result = cli("run", "folder", "--csv", csv, "--images", source.images, "--out", out,
                 "--dataset-option", "path_column=file", "--dataset-option", "labels=shapes",
                 "--dataset-option", "separator=+", "--dataset-option", "min_count=3", *TINY_RUN)
    assert result.exit_code == 0, result.output[-3000:]
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["benchmark"] == "folder" and manifest["variant"] == "aug"  # no crop
    assert manifest["dataset_kind"] == "folder"  # the user's CSV is not the marked demo
    assert manifest["identity"]["dataset_options"]["separator"] == "+"
    assert manifest["dataset"]["labels"] == sorted(shapes)
    assert manifest["dataset"]["label_options"] == {"labels": "shapes", "min_count": 3, "policy": "ones",
                                                    "separator": "+"}
    board = pd.read_parquet(out / "leaderboard.parquet")
    assert set(board["label"]) >= set(shapes)
    split = pd.read_parquet(out / "split.parquet")
    assert len(split) == len(demo) and split.groupby("patient_id")["split"].nunique().max() == 1
    # Another policy: another split hash, but a joined column has no uncertain cell, so the test images and
    # their labels coincide and the two runs compare paired.
    other = tmp_path / "zeros"
    result = cli("run", "folder", "--csv", csv, "--images", source.images, "--out", other,
                 "--dataset-option", "path_column=file", "--dataset-option", "labels=shapes",
                 "--dataset-option", "separator=+", "--dataset-option", "min_count=3",
                 "--dataset-option", "policy=zeros", *TINY_RUN)
    assert result.exit_code == 0, result.output[-3000:]
    assert json.loads((other / "manifest.json").read_text())["split_hash"] != manifest["split_hash"]
    paired = mlbench.compare_run(other, against=str(out), n_boot=10)
    assert len(paired.rows) and any("split hashes differ" in note for note in paired.notes)


def nih_layout(tmp_path: Path) -> Path:
    """The 60 NIH test films as a folder CSV: path, patient (the file name's first 8 digits), joined labels."""
    labels = pd.read_csv(NIH_FILMS / "labels.csv", dtype=str)
    findings = labels["finding_labels"].str.replace("No Finding", "", regex=False)
    csv = tmp_path / "nih-folder.csv"
    pd.DataFrame({"path": labels["file"], "patient": labels["file"].str[:8], "findings": findings}).to_csv(
        csv, index=False)
    return csv


def test_the_60_nih_test_films_laid_out_as_a_csv_split_and_run(tmp_path):
    csv = nih_layout(tmp_path)
    summary = mlbench.split_dataset("folder", csv, tmp_path / "split", images=NIH_FILMS,
                                    dataset_options={"min_count": 8})
    assert summary["n_images"] == 60 and summary["n_labels"] == 14
    assert summary["dataset"]["images_without_labels"] == 8  # NIH's No Finding films, kept as all-zero rows
    out = tmp_path / "run"
    result = cli("run", "folder", "--csv", csv, "--images", NIH_FILMS, "--out", out,
                 "--dataset-option", "min_count=8", *TINY_RUN)
    assert result.exit_code == 0, result.output[-3000:]
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["split_hash"] == summary["split_hash"] and manifest["n_images"]["test"] > 0
    assert len(manifest["dataset"]["labels"]) == 14


def test_the_folder_plugin_passes_its_conformance_checks():
    from mlbench.conformance import check_plugin

    report = check_plugin("folder")
    assert report.passed, [(r.kind, r.name, r.detail) for r in report.results if r.status == "fail"]
