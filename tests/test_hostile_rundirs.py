"""Our list of hostile run directories (issue 19): stored paths that lead outside read nothing there.

A run directory is something people download and share. Every path stored in one (the manifest's
label file, image folder and cache, the demo corpus's record) is followed only inside it; anything
else is refused in one line naming the stored path, and no message quotes a file's content. An
audit hook records every file Python opens, so "read nothing outside" is checked, not assumed.
"""

from __future__ import annotations

import json
import os
import shutil
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from mlbench.cli import main
from mlbench.results.rundir import RunDir, RunDirError
from cli_checks import assert_one_error, finished_tiny_run

BENCH = "padchest-specific"
SECRET = "root:SECRET-LINE:20228:0:99999:7:::"

_opened: list[str] | None = None  # the audit hook records only while a list is set


def _audit(event: str, args: tuple) -> None:
    if event == "open" and _opened is not None and args and isinstance(args[0], (str, bytes, os.PathLike)):
        _opened.append(os.fsdecode(args[0]))


sys.addaudithook(_audit)


def cli_reading(*args: str) -> tuple[object, list[str]]:
    """Run the command and return its result and every file path it opened."""
    global _opened
    _opened = []
    try:
        result = CliRunner().invoke(main, [str(a) for a in args], catch_exceptions=False)
        return result, _opened
    finally:
        _opened = None


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory):
    """One finished real demo run; its corpus and cache live inside it, as a downloaded one's would."""
    return finished_tiny_run(tmp_path_factory.mktemp("hostile") / "run")


@pytest.fixture()
def secret(tmp_path) -> Path:
    """A folder outside every run directory, holding a file whose first line must never be printed."""
    folder = tmp_path / "outside"
    folder.mkdir()
    (folder / "shadow").write_text(SECRET + "\nbin:*:20228:0:99999:7:::\n")
    (folder / "labels.csv").write_text("ImageID,ImageDir,PatientID,StudyID,Projection,Labels\n")
    return folder


@pytest.fixture()
def copied(tiny_run, tmp_path) -> Path:
    dest = tmp_path / "downloaded"
    shutil.copytree(tiny_run, dest, symlinks=True)
    return dest


def edit_manifest(run_dir: Path, change) -> None:
    path = run_dir / "manifest.json"
    data = json.loads(path.read_text())
    change(data)
    path.write_text(json.dumps(data))


def outside_reads(opened: list[str], folder: Path) -> list[str]:
    top = os.path.realpath(folder)
    return [p for p in opened if os.path.realpath(p).startswith(top)]


# ------------------------------------------------------------------ the manifest's stored paths

HOSTILE_CSV = {
    "relative ..": lambda secret, run: {"relative": os.path.relpath(secret / "shadow", run), "absolute": "/nowhere"},
    "absolute": lambda secret, run: {"relative": str(secret / "shadow"), "absolute": str(secret / "shadow")},
    "absolute fallback": lambda secret, run: {"relative": "gone/labels.csv", "absolute": str(secret / "shadow")},
    "old plain string": lambda secret, run: str(secret / "shadow"),
    "not a path": lambda secret, run: {"relative": 5},
}


@pytest.mark.parametrize("case", sorted(HOSTILE_CSV))
def test_submit_reads_no_label_file_outside_the_run_directory(copied, secret, tmp_path, case):
    stored = HOSTILE_CSV[case](secret, copied)
    edit_manifest(copied, lambda m: m["source"].__setitem__("csv", stored))
    result, opened = cli_reading("submit", copied, "--leaderboard", tmp_path / "board.parquet")
    line = assert_one_error(result, "--csv")
    assert "SECRET" not in result.output and "root:" not in result.output
    assert not outside_reads(opened, secret), opened
    assert not (tmp_path / "board.parquet").exists()
    # The absolute path is for people to read: the relative one, inside, is the only one followed.
    assert ("no such file" if case == "absolute fallback" else "manifest.json") in line


def test_a_symlink_inside_the_run_directory_that_leads_out_is_not_followed(copied, secret, tmp_path):
    (copied / "labels.csv").symlink_to(secret / "shadow")
    edit_manifest(copied, lambda m: m["source"].__setitem__("csv", {"relative": "labels.csv", "absolute": ""}))
    result, opened = cli_reading("submit", copied, "--leaderboard", tmp_path / "board.parquet")
    assert_one_error(result, "labels.csv", "outside")
    assert "SECRET" not in result.output
    assert not outside_reads(opened, secret), opened


def test_the_label_file_named_on_the_command_line_is_the_users_choice(copied, tmp_path):
    """Outside paths are fine when the user types them: submit with --csv/--images reads them."""
    manifest = json.loads((copied / "manifest.json").read_text())
    csv = RunDir(copied).resolve(manifest["source"]["csv"], "the label file", "--csv")
    images = RunDir(copied).resolve(manifest["source"]["images"], "the image folder", "--images")
    moved = tmp_path / "data-elsewhere"
    shutil.copytree(csv.parent, moved)
    edit_manifest(copied, lambda m: m["source"].__setitem__("csv", {"relative": "../../nowhere.csv"}))
    result, opened = cli_reading("submit", copied, "--leaderboard", tmp_path / "board.parquet",
                                 "--csv", moved / csv.name, "--images", moved / images.relative_to(csv.parent))
    assert result.exit_code == 0 and "split is canonical" in result.output, result.output
    assert any(os.path.realpath(p).startswith(os.path.realpath(moved)) for p in opened)


def test_explain_reads_no_cache_outside_the_run_directory(copied, secret, tmp_path):
    (secret / "config.json").write_text(json.dumps({"size": 32}))
    edit_manifest(copied, lambda m: m["cache"].__setitem__("path", {"relative": str(secret), "absolute": str(secret)}))
    (copied / "backbones").mkdir(exist_ok=True)
    result, opened = cli_reading("explain", copied, "--split", "test", "--limit", "1", "--out", tmp_path / "x",
                                 "--no-score")
    assert_one_error(result, "cache", "--cache")
    assert not outside_reads(opened, secret), opened


def test_explain_finds_no_box_file_beside_a_label_file_outside(copied, secret, tmp_path):
    """findings.csv beside the stored label file is looked for only when that file is inside the run."""
    (secret / "findings.csv").write_text("image_id,label,x0,y0,x1,y1\n")
    edit_manifest(copied, lambda m: m["source"].__setitem__("csv", {"relative": str(secret / "labels.csv")}))
    result, opened = cli_reading("explain", copied, "--split", "test", "--limit", "1", "--out", tmp_path / "x")
    assert result.exit_code == 0, result.output
    assert not outside_reads(opened, secret), opened


@pytest.mark.parametrize("command", ["compare", "report"])
def test_compare_and_report_read_nothing_outside_a_tampered_run(copied, secret, tmp_path, command):
    edit_manifest(copied, lambda m: m.update(source={"csv": {"relative": str(secret / "shadow")},
                                                     "images": {"relative": str(secret)}},
                                             cache={"path": {"relative": str(secret)}}))
    args = ["--out", tmp_path / "page.html"] if command == "report" else []
    result, opened = cli_reading(command, copied, *args)
    assert "SECRET" not in result.output
    assert not outside_reads(opened, secret), opened


# ------------------------------------------------------------------ the demo corpus's own record

@pytest.mark.parametrize("record", [
    {"csv": "../../outside/shadow", "images": "."},
    {"csv": "SECRET", "images": "/"},
    {"csv": 5, "images": "images"},
    "not json",
    [],
])
def test_a_repeated_demo_run_follows_no_corpus_record_outside_its_folder(copied, secret, record):
    source = copied / "demo-data" / "mlbench-source.json"
    if isinstance(record, dict) and record["csv"] == "../../outside/shadow":
        record = {**record, "csv": os.path.relpath(secret / "shadow", source.parent)}
    source.write_text(record if isinstance(record, str) else json.dumps(record))
    result, opened = cli_reading("run", BENCH, "--demo", "--out", copied, "--demo-option", "n_patients=40",
                                 "--demo-option", "image_size=96", "--image-size", "32", "--epochs", "1",
                                 "--backbones", "resnet10t", "--ensembles", "ctp", "--bootstrap", "10",
                                 "--workers", "1", "--quiet")
    assert_one_error(result, "mlbench-source.json")
    assert "SECRET" not in result.output and "root:" not in result.output
    assert not outside_reads(opened, secret), opened


# ------------------------------------------------------------------ messages never quote a file

def test_a_label_file_that_is_not_a_csv_is_not_quoted(secret, tmp_path):
    result, _ = cli_reading("split", BENCH, "--csv", secret / "shadow", "--out", tmp_path / "split")
    line = assert_one_error(result, "shadow", "missing required column")
    assert "root:" not in line and "SECRET" not in line and "the first line is not shown" in line


def test_a_real_csv_with_the_wrong_columns_names_them(tmp_path):
    path = tmp_path / "labels.csv"
    path.write_text("ImageID,PatientID,Something\nimg.png,P1,x\n")
    result, _ = cli_reading("split", BENCH, "--csv", path, "--out", tmp_path / "split")
    assert "found ImageID, PatientID, Something" in assert_one_error(result, "labels.csv", "Labels")


# ------------------------------------------------------------------ what is inside stays usable

def test_a_grid_cell_may_use_the_grids_shared_folder_and_nothing_above_it(tmp_path):
    grid = tmp_path / "grid"
    cell = grid / "cells" / "uniform" / "seed-0"
    cell.mkdir(parents=True)
    (grid / "shared" / "cache").mkdir(parents=True)
    (grid / "grid.json").write_text("{}")
    rundir = RunDir(cell)
    assert rundir.root() == grid
    assert rundir.resolve({"relative": "../../../shared/cache"}, "the cache", "--cache") == cell / "../../../shared/cache"
    with pytest.raises(RunDirError, match="outside"):
        rundir.resolve({"relative": "../../../../elsewhere"}, "the cache", "--cache")
    # Without grid.json beside cells/, the same folder is a run of its own: its parent is outside.
    (grid / "grid.json").unlink()
    with pytest.raises(RunDirError, match="outside"):
        RunDir(cell).resolve({"relative": "../../../shared/cache"}, "the cache", "--cache")


def test_a_moved_run_directory_still_finds_what_is_inside_it(copied, tmp_path):
    moved = tmp_path / "moved" / "again"
    moved.parent.mkdir()
    shutil.move(str(copied), str(moved))
    manifest = RunDir(moved).manifest()
    assert RunDir(moved).cache_path().is_dir()
    assert RunDir(moved).resolve(manifest["source"]["csv"], "the label file", "--csv").is_file()
