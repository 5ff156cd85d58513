"""Our list of everyday mistakes, each through the real ``mlbench`` command (issue 12).

Every case must end with exactly one ``Error: ...`` line that names the file, option or field
and what is wrong, exit non-zero, and print no traceback. The run-directory cases copy one tiny
real run (40 demo patients, one epoch of resnet10t at 32 px).
"""

from __future__ import annotations

import gzip
import os
import random
import shutil
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from mlbench.contracts.registry import ONLY_PLUGINS_ENV, reset_registry
from cli_checks import assert_one_error, cli, finished_tiny_run

BENCH = "padchest-specific"
COLUMNS = ["ImageID", "ImageDir", "PatientID", "StudyID", "Projection", "Labels"]
ROWS = [(f"img{i}.png", "0", f"P{i // 2}", f"S{i}", "PA", "['normal']" if i % 3 else "['cardiomegaly']")
        for i in range(12)]
# The run's own small files (checkpoints are copied only where a case needs them).
RUN_FILES = ("manifest.json", "split.parquet", "predictions.parquet", "leaderboard.parquet", "skipped.parquet")


# ---------------------------------------------------------------- helpers


def write_csv(path: Path, rows=ROWS, columns=COLUMNS) -> Path:
    frame = pd.DataFrame(rows, columns=columns)
    frame.to_csv(path, index=True)  # PadChest's unnamed index column
    return path


def empty_csv(tmp: Path) -> Path:
    (tmp / "empty.csv").write_bytes(b"")
    return tmp / "empty.csv"


def header_only_csv(tmp: Path) -> Path:
    return write_csv(tmp / "header.csv", rows=[])


def binary_csv(tmp: Path) -> Path:
    (tmp / "binary.csv").write_bytes(bytes(range(256)) * 8 + b"\x00\xff\xfe" * 100)
    return tmp / "binary.csv"


def broken_gzip_csv(tmp: Path) -> Path:
    whole = gzip.compress(write_csv(tmp / "whole.csv").read_bytes())
    (tmp / "broken.csv.gz").write_bytes(whole[: len(whole) // 2])
    return tmp / "broken.csv.gz"


def no_labels_csv(tmp: Path) -> Path:
    return write_csv(tmp / "nolabels.csv", rows=[r[:5] for r in ROWS], columns=COLUMNS[:5])


def png_as_csv(tmp: Path) -> Path:
    (tmp / "film.csv").write_bytes(b"\x89PNG\r\n\x1a\n" + bytes(range(128, 256)) * 4)
    return tmp / "film.csv"


# case -> (how to make it, what the Error line must say besides the file's name)
BAD_CSVS = {
    "missing": (lambda tmp: tmp / "nosuch.csv", "not found"),
    "no-labels-column": (no_labels_csv, "missing required column(s) Labels"),
    "empty": (empty_csv, "cannot read it as a CSV"),
    "header-only": (header_only_csv, "no data rows"),
    "binary": (binary_csv, "binary content"),
    "png": (png_as_csv, "cannot read it as a CSV"),
    "broken-gzip": (broken_gzip_csv, "cannot read it as a CSV"),
}


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory):
    """One finished real run of the demo (the run-directory cases copy it)."""
    return finished_tiny_run(tmp_path_factory.mktemp("mistakes") / "run")


def copy_run(run_dir: Path, dest: Path, *, checkpoint: bool = False) -> Path:
    """The run's own files and its demo corpus (a run directory's stored paths are followed only inside it)."""
    dest.mkdir(parents=True)
    for name in RUN_FILES:
        shutil.copy2(run_dir / name, dest / name)
    shutil.copytree(run_dir / "demo-data", dest / "demo-data")
    if checkpoint:
        for backbone in (run_dir / "backbones").iterdir():
            (dest / "backbones" / backbone.name).mkdir(parents=True)
            for f in backbone.iterdir():
                if f.name != "last.pt":
                    shutil.copy2(f, dest / "backbones" / backbone.name / f.name)
    return dest


def truncate(path: Path) -> None:
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])


# ---------------------------------------------------------------- bad label CSVs


@pytest.mark.parametrize("case", sorted(BAD_CSVS))
def test_split_of_a_bad_csv(tmp_path, case):
    make, named = BAD_CSVS[case]
    csv = make(tmp_path)
    out = tmp_path / "split"
    last = assert_one_error(cli("split", BENCH, "--csv", csv, "--out", out), csv.name)
    assert named.lower() in last.lower()
    assert not (out / "split.parquet").exists()


@pytest.mark.parametrize("case", sorted(BAD_CSVS))
def test_inspect_of_a_bad_csv(tmp_path, case):
    make, named = BAD_CSVS[case]
    csv = make(tmp_path)
    last = assert_one_error(cli("datasets", "inspect", "padchest", "--csv", csv), csv.name)
    assert named.lower() in last.lower()


@pytest.mark.parametrize("case", sorted(BAD_CSVS))
def test_run_on_a_bad_csv(tmp_path, case):
    make, named = BAD_CSVS[case]
    csv = make(tmp_path)
    (tmp_path / "images").mkdir()
    out = tmp_path / "run"
    last = assert_one_error(cli("run", BENCH, "--csv", csv, "--images", tmp_path / "images", "--out", out,
                                "--workers", "1", "--quiet", "--no-pretrained"), csv.name)
    assert named.lower() in last.lower() or case == "missing"
    assert not (out / "split.parquet").exists()


def test_header_only_csv_gives_no_empty_split(tmp_path):
    """An empty split must be an error, not a split whose hash is the hash of nothing."""
    csv = header_only_csv(tmp_path)
    out = tmp_path / "split"
    last = assert_one_error(cli("split", BENCH, "--csv", csv, "--out", out), str(csv))
    assert "no " in last.lower() or "empty" in last.lower()
    assert not (out / "split.parquet").exists()


def test_csv_with_no_usable_row_gives_no_split(tmp_path):
    """Rows there, but none kept (all lateral): the same refusal, naming the skips."""
    csv = write_csv(tmp_path / "lateral.csv", rows=[(*r[:4], "L", r[5]) for r in ROWS])
    out = tmp_path / "split"
    assert_one_error(cli("split", BENCH, "--csv", csv, "--out", out), str(csv), "not_pa 12")
    assert not (out / "split.parquet").exists()


def test_run_on_a_csv_with_no_usable_row(tmp_path):
    csv = write_csv(tmp_path / "lateral.csv", rows=[(*r[:4], "L", r[5]) for r in ROWS])
    (tmp_path / "images").mkdir()
    out = tmp_path / "run"
    assert_one_error(cli("run", BENCH, "--csv", csv, "--images", tmp_path / "images", "--out", out, "--workers", "1",
                         "--quiet", "--no-pretrained"), str(csv), "not_pa 12")
    assert not (out / "split.parquet").exists()


def test_inspect_of_a_csv_with_no_usable_row(tmp_path):
    csv = write_csv(tmp_path / "lateral.csv", rows=[(*r[:4], "L", r[5]) for r in ROWS])
    assert_one_error(cli("datasets", "inspect", "padchest", "--csv", csv), str(csv), "not_pa 12")


def test_split_out_is_a_file(tmp_path):
    csv = write_csv(tmp_path / "labels.csv")
    (tmp_path / "taken").write_text("x")
    assert_one_error(cli("split", BENCH, "--csv", csv, "--out", tmp_path / "taken"), "taken")


# ---------------------------------------------------------------- run: names and options


def demo_run(tmp_path: Path, *args: str):
    return cli("run", BENCH, "--demo", "--demo-option", "n_patients=40", "--image-size", "32", "--epochs", "1",
               "--workers", "1", "--quiet", "--out", tmp_path / "run", *args)


def assert_nothing_done(run_dir: Path) -> None:
    """Refused before any stage: no split, no cache, no demo corpus written."""
    for name in ("split.parquet", "cache", "demo-data", "preprocess"):
        assert not (run_dir / name).exists(), f"{name} written before the refusal"


def test_unknown_benchmark(tmp_path):
    assert_one_error(cli("run", "nosuch", "--demo", "--out", tmp_path / "run"), "nosuch", "padchest-specific")
    assert not (tmp_path / "run").exists()


@pytest.mark.parametrize("option, kind", [("--backbones", "backbone"), ("--loss", "loss"),
                                          ("--ensembles", "ensemble")])
def test_unknown_plugin_name(tmp_path, option, kind):
    assert_one_error(demo_run(tmp_path, option, "nosuch"), "nosuch", kind)
    assert_nothing_done(tmp_path / "run")


def test_unknown_second_ensemble(tmp_path):
    assert_one_error(demo_run(tmp_path, "--ensembles", "ctp,nosuch"), "nosuch", "ensemble")
    assert_nothing_done(tmp_path / "run")


def test_empty_backbones(tmp_path):
    assert_one_error(demo_run(tmp_path, "--backbones", ""), "--backbones")
    assert_nothing_done(tmp_path / "run")


def test_bad_loss_option_fails_before_the_split(tmp_path):
    last = assert_one_error(demo_run(tmp_path, "--loss-option", "nosuch=1"), "nosuch")
    assert "loss" in last.lower()
    assert_nothing_done(tmp_path / "run")


def test_loss_option_without_equals(tmp_path):
    assert_one_error(demo_run(tmp_path, "--loss-option", "gamma"), "--loss-option", "KEY=VALUE")
    assert_nothing_done(tmp_path / "run")


def test_backbone_option_for_a_backbone_not_in_the_run(tmp_path):
    assert_one_error(demo_run(tmp_path, "--backbones", "resnet10t", "--backbone-option", "otherbackbone.x=1"),
                     "--backbone-option", "otherbackbone")
    assert_nothing_done(tmp_path / "run")


def test_unknown_backbone_option(tmp_path):
    assert_one_error(demo_run(tmp_path, "--backbones", "resnet10t", "--backbone-option", "resnet10t.nosuch=1"),
                     "--backbone-option", "nosuch")
    assert_nothing_done(tmp_path / "run")


def test_zero_epochs(tmp_path):
    assert_one_error(demo_run(tmp_path, "--epochs", "0"), "--epochs")
    assert not (tmp_path / "run").exists()


def test_unknown_demo_option(tmp_path):
    assert_one_error(demo_run(tmp_path, "--demo-option", "nosuch=1"), "nosuch")


@pytest.mark.parametrize("value, expected", [("0", "at least 1"), ("abc", "whole number")])
def test_bad_demo_option_value(tmp_path, value, expected):
    assert_one_error(demo_run(tmp_path, "--demo-option", f"n_patients={value}"), "n_patients", expected)
    assert_nothing_done(tmp_path / "run")


def test_only_backbone_not_in_the_run(tmp_path):
    assert_one_error(demo_run(tmp_path, "--backbones", "resnet10t", "--only-backbone", "resnet18"),
                     "--only-backbone", "resnet18")
    assert_nothing_done(tmp_path / "run")


def test_run_device_that_does_not_exist(tmp_path):
    assert_one_error(demo_run(tmp_path, "--backbones", "resnet10t", "--device", "cuda:7"), "cuda:7")
    assert_nothing_done(tmp_path / "run")


def test_ensemble_only_of_a_folder_that_is_not_a_run(tmp_path):
    (tmp_path / "notarun").mkdir()
    assert_one_error(cli("run", BENCH, "--ensemble-only", tmp_path / "notarun", "--quiet"), "--ensemble-only", "notarun")


def test_run_without_data(tmp_path):
    assert_one_error(cli("run", BENCH, "--out", tmp_path / "run"), "--csv", "--demo")


def test_run_images_is_a_file(tmp_path):
    csv = write_csv(tmp_path / "labels.csv")
    assert_one_error(cli("run", BENCH, "--csv", csv, "--images", csv, "--out", tmp_path / "run"), "--images",
                     "labels.csv")


def test_run_with_an_images_folder_holding_none_of_the_images(tmp_path):
    """The CSV is right, --images points at the wrong (empty) folder: every image is missing."""
    csv = write_csv(tmp_path / "labels.csv")
    (tmp_path / "images").mkdir()
    assert_one_error(cli("run", BENCH, "--csv", csv, "--images", tmp_path / "images", "--out", tmp_path / "run",
                         "--image-size", "32", "--backbones", "resnet10t", "--workers", "1", "--quiet",
                         "--no-pretrained"), str(tmp_path / "images"), "missing")


def test_run_out_is_a_file(tmp_path):
    (tmp_path / "run").write_text("not a folder")
    assert_one_error(demo_run(tmp_path), "--out", "run")


def test_run_dir_holding_another_recipe(tiny_run, tmp_path):
    copy_run(tiny_run, tmp_path / "run")
    last = assert_one_error(demo_run(tmp_path, "--backbones", "resnet18"), str(tmp_path / "run"))
    assert "recipe" in last
    assert not (tmp_path / "run" / "cache").exists()


def test_run_dir_with_invalid_manifest(tiny_run, tmp_path):
    copy_run(tiny_run, tmp_path / "run")
    (tmp_path / "run" / "manifest.json").write_text("{not json")
    assert_one_error(demo_run(tmp_path, "--backbones", "resnet10t"), "manifest.json")


# ---------------------------------------------------------------- plugins


@pytest.fixture()
def only_garbage_plugins(monkeypatch):
    monkeypatch.setenv(ONLY_PLUGINS_ENV, "garbage")
    reset_registry()
    yield
    monkeypatch.delenv(ONLY_PLUGINS_ENV)
    reset_registry()


def test_plugins_says_the_named_plugin_is_not_installed(only_garbage_plugins):
    result = cli("plugins")
    assert "Traceback" not in result.output
    assert "garbage" in result.output and ONLY_PLUGINS_ENV in result.output, result.output


def test_run_with_garbage_plugins_names_the_load_error(only_garbage_plugins, tmp_path):
    assert_one_error(cli("run", BENCH, "--demo", "--out", tmp_path / "run"), BENCH, "garbage", ONLY_PLUGINS_ENV)


def test_plugins_test_of_an_unknown_plugin():
    assert_one_error(cli("plugins", "test", "nosuch"), "nosuch")


# ---------------------------------------------------------------- other data commands


def test_demo_data_onto_a_file(tmp_path):
    (tmp_path / "taken").write_text("x")
    assert_one_error(cli("demo-data", tmp_path / "taken", "--benchmark", BENCH), "taken", "folder")


def test_demo_data_of_an_unknown_benchmark(tmp_path):
    assert_one_error(cli("demo-data", tmp_path / "demo", "--benchmark", "nosuch"), "nosuch")


def test_labels_tree_of_an_unknown_dataset():
    assert_one_error(cli("labels", "tree", "--dataset", "nosuch"), "nosuch", "dataset")


def test_labels_tree_of_an_unknown_label():
    assert_one_error(cli("labels", "tree", "no such finding", "--dataset", "padchest"), "no such finding")


@pytest.mark.parametrize("size", ["0", "-5"])
def test_preprocess_size_out_of_range(tmp_path, size):
    csv = write_csv(tmp_path / "labels.csv")
    (tmp_path / "images").mkdir()
    assert_one_error(cli("preprocess", BENCH, "--csv", csv, "--images", tmp_path / "images", "--cache",
                         tmp_path / "cache", "--size", size), "--size", size)
    assert not (tmp_path / "cache").exists()


@pytest.mark.parametrize("where", ["file", "under-a-file"])
def test_preprocess_cache_is_a_file(tiny_run, tmp_path, where):
    (tmp_path / "taken").write_text("x")
    cache = tmp_path / "taken" if where == "file" else tmp_path / "taken" / "cache"
    demo = tiny_run / "demo-data"
    assert_one_error(cli("preprocess", BENCH, "--csv", demo / "PADCHEST_demo_labels.csv", "--images", demo / "images",
                         "--cache", cache, "--workers", "1"), "taken")


def test_run_cache_is_a_file(tmp_path):
    (tmp_path / "taken").write_text("x")
    assert_one_error(demo_run(tmp_path, "--cache", tmp_path / "taken"), "--cache", "taken")
    assert not (tmp_path / "run").exists()


def test_preprocess_of_a_bad_csv(tmp_path):
    csv = binary_csv(tmp_path)
    (tmp_path / "images").mkdir()
    assert_one_error(cli("preprocess", BENCH, "--csv", csv, "--images", tmp_path / "images", "--cache",
                         tmp_path / "cache", "--workers", "1"), "binary.csv")


def test_crop_size_out_of_range(tiny_run, tmp_path):
    assert_one_error(cli("crop", one_image(tiny_run), "--out", tmp_path / "out", "--size", "0"), "size", "got 0")
    assert not (tmp_path / "out").exists()


def test_crop_of_a_missing_file(tmp_path):
    assert_one_error(cli("crop", tmp_path / "nosuch.png", "--out", tmp_path / "out"), "nosuch.png")


def test_crop_of_an_empty_folder(tmp_path):
    (tmp_path / "empty").mkdir()
    assert_one_error(cli("crop", tmp_path / "empty", "--out", tmp_path / "out"), "empty")


# ---------------------------------------------------------------- leaderboard files


def not_parquet(tmp: Path) -> Path:
    (tmp / "board.parquet").write_text("image_id,label\nx,y\n")
    return tmp / "board.parquet"


def corrupt_parquet(tmp: Path, tiny_run: Path) -> Path:
    path = tmp / "board.parquet"
    shutil.copy2(tiny_run / "leaderboard.parquet", path)
    truncate(path)
    return path


def wrong_parquet(tmp: Path, tiny_run: Path) -> Path:
    """A valid parquet file that is not a leaderboard (the run's split)."""
    path = tmp / "board.parquet"
    shutil.copy2(tiny_run / "split.parquet", path)
    return path


BAD_BOARDS = {"text": lambda tmp, run: not_parquet(tmp), "truncated": corrupt_parquet, "not-a-board": wrong_parquet}


@pytest.mark.parametrize("case", sorted(BAD_BOARDS))
def test_leaderboard_show_of_a_bad_file(tiny_run, tmp_path, case):
    path = BAD_BOARDS[case](tmp_path, tiny_run)
    assert_one_error(cli("leaderboard", "show", BENCH, "--file", path), "board.parquet")


def test_leaderboard_show_of_a_missing_file(tmp_path):
    assert_one_error(cli("leaderboard", "show", BENCH, "--file", tmp_path / "nosuch.parquet"), "nosuch.parquet")


def test_leaderboard_show_of_an_unknown_benchmark():
    assert_one_error(cli("leaderboard", "show", "nosuch"), "nosuch", "benchmark")


def test_compare_against_an_unknown_variant(tiny_run, tmp_path):
    run_dir = copy_run(tiny_run, tmp_path / "run")
    assert_one_error(cli("compare", run_dir, "--variant", "nosuch", "--n-boot", "5"), "nosuch", "crop+aug")


def test_leaderboard_show_of_an_unknown_metric():
    assert_one_error(cli("leaderboard", "show", BENCH, "--metric", "bogus"), "bogus")


@pytest.mark.parametrize("case", sorted(BAD_BOARDS))
def test_compare_against_a_bad_file(tiny_run, tmp_path, case):
    run_dir = copy_run(tiny_run, tmp_path / "run")
    path = BAD_BOARDS[case](tmp_path, tiny_run)
    assert_one_error(cli("compare", run_dir, "--file", path, "--n-boot", "5"), "board.parquet")


@pytest.mark.parametrize("case", sorted(BAD_BOARDS))
def test_submit_to_a_bad_file(tiny_run, tmp_path, case):
    run_dir = copy_run(tiny_run, tmp_path / "run")
    path = BAD_BOARDS[case](tmp_path, tiny_run)
    before = path.read_bytes()
    assert_one_error(cli("submit", run_dir, "--leaderboard", path), "board.parquet")
    assert path.read_bytes() == before, "a refused submit must leave the board as it was"


# ---------------------------------------------------------------- run directories


RUN_COMMANDS = {
    "compare": lambda run, tmp: ("compare", run, "--n-boot", "5"),
    "submit": lambda run, tmp: ("submit", run, "--leaderboard", tmp / "board.parquet"),
    "report": lambda run, tmp: ("report", run, "--out", tmp / "report.html"),
}


@pytest.mark.parametrize("command", sorted(RUN_COMMANDS))
def test_truncated_leaderboard_in_a_run_dir(tiny_run, tmp_path, command):
    run_dir = copy_run(tiny_run, tmp_path / "run")
    truncate(run_dir / "leaderboard.parquet")
    assert_one_error(cli(*RUN_COMMANDS[command](run_dir, tmp_path)), "leaderboard.parquet")


# compare reads only the run's leaderboard (benchmark, variant, kind are in every row): a broken
# manifest does not stop it doing its job, so it is not on this list.
@pytest.mark.parametrize("command", ["report", "submit"])
def test_invalid_manifest_json(tiny_run, tmp_path, command):
    run_dir = copy_run(tiny_run, tmp_path / "run")
    (run_dir / "manifest.json").write_text('{"benchmark": "padchest-specific",')
    assert_one_error(cli(*RUN_COMMANDS[command](run_dir, tmp_path)), "manifest.json")


@pytest.mark.parametrize("command", sorted(RUN_COMMANDS))
def test_folder_that_is_not_a_run(tmp_path, command):
    folder = tmp_path / "notarun"
    folder.mkdir()
    (folder / "notes.txt").write_text("hello")
    assert_one_error(cli(*RUN_COMMANDS[command](folder, tmp_path)), "notarun")


def test_submit_of_a_half_finished_run(tiny_run, tmp_path):
    """Trained and split, but no ensemble or metrics yet (no predictions, no leaderboard)."""
    run_dir = copy_run(tiny_run, tmp_path / "run")
    (run_dir / "leaderboard.parquet").unlink()
    (run_dir / "predictions.parquet").unlink()
    board = tmp_path / "board.parquet"
    assert_one_error(cli("submit", run_dir, "--leaderboard", board), "run")
    assert not board.exists()


def test_report_of_a_run_without_leaderboard(tiny_run, tmp_path):
    run_dir = copy_run(tiny_run, tmp_path / "run")
    (run_dir / "leaderboard.parquet").unlink()
    assert_one_error(cli("report", run_dir, "--out", tmp_path / "report.html"), "leaderboard.parquet")


# ---------------------------------------------------------------- explain


def one_image(tiny_run: Path) -> Path:
    return next((tiny_run / "demo-data" / "images").rglob("*.png"))


def test_explain_with_a_garbage_checkpoint(tiny_run, tmp_path):
    run_dir = copy_run(tiny_run, tmp_path / "run", checkpoint=True)
    best = next((run_dir / "backbones").glob("*/best.pt"))
    best.write_bytes(random.Random(0).randbytes(4096))
    assert_one_error(cli("explain", run_dir, one_image(tiny_run), "--out", tmp_path / "explain", "--device", "cpu"),
                     "best.pt")


def test_explain_with_a_missing_checkpoint(tiny_run, tmp_path):
    run_dir = copy_run(tiny_run, tmp_path / "run")
    assert_one_error(cli("explain", run_dir, one_image(tiny_run), "--out", tmp_path / "explain", "--device", "cpu"),
                     "resnet10t")


def test_explain_on_a_device_that_does_not_exist(tiny_run, tmp_path):
    run_dir = copy_run(tiny_run, tmp_path / "run", checkpoint=True)
    assert_one_error(cli("explain", run_dir, one_image(tiny_run), "--out", tmp_path / "explain", "--device", "cuda:7"),
                     "cuda:7")


@pytest.mark.parametrize("where", ["file", "under-a-file"])
def test_explain_out_is_a_file(tiny_run, tmp_path, where):
    run_dir = copy_run(tiny_run, tmp_path / "run", checkpoint=True)
    (tmp_path / "taken").write_text("x")
    out = tmp_path / "taken" if where == "file" else tmp_path / "taken" / "explain"
    assert_one_error(cli("explain", run_dir, one_image(tiny_run), "--out", out, "--device", "cpu"), "--out", "taken")


def test_report_out_under_a_file(tiny_run, tmp_path):
    run_dir = copy_run(tiny_run, tmp_path / "run")
    (tmp_path / "taken").write_text("x")
    assert_one_error(cli("report", run_dir, "--out", tmp_path / "taken" / "report.html"), "taken")


def test_explain_limit_without_split(tiny_run, tmp_path):
    assert_one_error(cli("explain", tiny_run, "--limit", "3", "--out", tmp_path / "explain"), "--limit", "--split")


def test_explain_of_a_folder_that_is_not_a_run(tiny_run, tmp_path):
    (tmp_path / "notarun").mkdir()
    assert_one_error(cli("explain", tmp_path / "notarun", one_image(tiny_run), "--out", tmp_path / "explain"),
                     "notarun")


def test_explain_invalid_manifest_json(tiny_run, tmp_path):
    run_dir = copy_run(tiny_run, tmp_path / "run", checkpoint=True)
    (run_dir / "manifest.json").write_text("[1, 2")
    assert_one_error(cli("explain", run_dir, one_image(tiny_run), "--out", tmp_path / "explain", "--device", "cpu"),
                     "manifest.json")


def test_explain_of_a_missing_image(tiny_run, tmp_path):
    run_dir = copy_run(tiny_run, tmp_path / "run", checkpoint=True)
    assert_one_error(cli("explain", run_dir, tmp_path / "nosuch.png", "--out", tmp_path / "explain", "--device",
                         "cpu"), "nosuch.png")


@pytest.mark.parametrize("option, value, named", [
    ("--threshold", "2", "--threshold"), ("--ensemble", "nosuch", "nosuch"), ("--option", "nosuch=1", "nosuch")])
def test_explain_bad_option(tiny_run, tmp_path, option, value, named):
    run_dir = copy_run(tiny_run, tmp_path / "run", checkpoint=True)
    assert_one_error(cli("explain", run_dir, one_image(tiny_run), "--out", tmp_path / "explain", "--device", "cpu",
                         option, value), named)


def test_explain_unknown_label(tiny_run, tmp_path):
    run_dir = copy_run(tiny_run, tmp_path / "run", checkpoint=True)
    assert_one_error(cli("explain", run_dir, one_image(tiny_run), "--out", tmp_path / "explain", "--device", "cpu",
                         "--labels", "no such finding"), "no such finding")


# ---------------------------------------------------------------- the real process


@pytest.mark.parametrize("case", ["wrong-csv", "truncated-board", "garbage-plugins"])
def test_no_traceback_reaches_stderr(tiny_run, tmp_path, case):
    """The installed command as a user types it: one line on stderr, exit 1."""
    env = {k: v for k, v in os.environ.items() if k != ONLY_PLUGINS_ENV}
    if case == "wrong-csv":
        args = ["split", BENCH, "--csv", str(tmp_path / "nosuch.csv"), "--out", str(tmp_path / "s")]
        named = "nosuch.csv"
    elif case == "truncated-board":
        run_dir = copy_run(tiny_run, tmp_path / "run")
        truncate(run_dir / "leaderboard.parquet")
        args, named = ["compare", str(run_dir), "--n-boot", "5"], "leaderboard.parquet"
    else:
        env[ONLY_PLUGINS_ENV] = "garbage"
        args, named = ["run", BENCH, "--demo", "--out", str(tmp_path / "run")], BENCH
    done = subprocess.run([sys.executable, "-m", "mlbench", *args], capture_output=True, text=True, env=env,
                          cwd=tmp_path, timeout=120)
    assert done.returncode == 1, done.stderr
    assert "Traceback" not in done.stderr + done.stdout
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("Error: ") and named in lines[0], done.stderr
