"""``mlbench report`` on hostile or unfinished directories, and ``--out`` that must not destroy a run (issue 19).

What the page cannot do without (manifest, leaderboard, a training history) is one ``Error:`` line
naming the file and what was expected; what it can do without (split.parquet, skipped.parquet) is
left out with a note on the page and in the command's output. ``--out`` never lands on a run or
grid directory's own files and replaces only an mlbench report unless ``--force``.
"""

from __future__ import annotations

import json
import shutil
import warnings
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

import mlbench
from mlbench.foundations.errors import UserError
from mlbench.grid.cells import GridSpec
from mlbench.results.griddir import GRID_FILE
from mlbench.foundations.io import write_json
from mlbench.report import ReportError, ReportNote, is_report_file
from mlbench.report.html import MARKER
from mlbench.results.rundir import RunDir
from cli_checks import assert_one_error, cli


def report(*args):
    """``mlbench report ARGS``."""
    return cli("report", *args)

BENCH = "padchest-specific"
SECRET = "SECRET-CONTENT-7731"  # planted in hostile files: never shown


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory):
    import torch

    from mlbench.results.metrics import MetricWarning
    from mlbench.training.runner import RunOptions, run

    torch.set_num_threads(2)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", MetricWarning)
        result = run(RunOptions(benchmark=BENCH, demo=True, demo_options={"n_patients": 30, "image_size": 96},
                                image_size=32, max_epochs=1, backbones=("resnet10t",), ensembles=("ctp",), n_boot=10,
                                progress=False, workers=1, out=tmp_path_factory.mktemp("hostile") / "run"))
    return result.run_dir


@pytest.fixture
def run_copy(tiny_run, tmp_path):
    """The run's own files, without its cache, demo corpus and checkpoints (the report reads none of them)."""
    dest = tmp_path / "run"
    shutil.copytree(tiny_run, dest, ignore=shutil.ignore_patterns("cache", "demo-data", "*.pt"))
    return dest


def notes_of(result) -> list[str]:
    return [line for line in result.output.splitlines() if line.startswith("note: ")]


def test_report_error_is_a_user_error():
    assert issubclass(ReportError, UserError)


def test_a_clean_run_has_no_notes_and_carries_the_marker(run_copy, tmp_path):
    out = tmp_path / "report.html"
    result = report(run_copy, "--out", out)
    assert result.exit_code == 0, result.output
    assert notes_of(result) == [] and 'id="notes"' not in out.read_text()
    assert is_report_file(out) and MARKER in out.read_text()[:512]


# -- what the page can do without: a note on the page and in the output ----------------------------------
SPLIT_CASES = {
    "missing": (None, "no such file"),
    "not parquet": (SECRET.encode() * 20, "not a readable parquet file"),
    "no key columns": (pa.table({"x": [1, 2]}), "missing columns"),
    "labels not 0/1": ("sevens", "holds values other than 0 and 1"),
}


@pytest.mark.parametrize("case", list(SPLIT_CASES))
def test_a_missing_or_corrupt_split_is_a_note_on_the_page_and_in_the_output(run_copy, tmp_path, case):
    split = RunDir(run_copy).split_file
    content, expected = SPLIT_CASES[case]
    if content is None:
        split.unlink()
    elif isinstance(content, bytes):
        split.write_bytes(content)
    elif isinstance(content, pa.Table):
        pq.write_table(content, split)
    else:
        table = pq.read_table(split)
        column = table.column_names[-1]  # a label column
        pq.write_table(table.set_column(len(table.column_names) - 1, column, pa.array([7] * table.num_rows)), split)
    out = tmp_path / "report.html"
    result = report(run_copy, "--out", out)
    assert result.exit_code == 0 and "Traceback" not in result.output, result.output
    (note,) = notes_of(result)
    assert str(split) in note and expected in note and "expected" in note and SECRET not in result.output, note
    page = out.read_text()
    notes = page.split('id="notes"', 1)[1].split("</div>", 1)[0]
    assert "split.parquet" in notes and expected in notes and SECRET not in page
    assert "No usable split.parquet" in page and 'id="global-table"' in page  # the results are still there


SKIP_CASES = {
    "missing": (None, "no such file"),
    "not parquet": (SECRET.encode() * 20, "not a readable parquet file"),
    "other columns": (pa.table({"x": ["a"]}), "not the list of skipped items"),
}


@pytest.mark.parametrize("case", list(SKIP_CASES))
def test_a_missing_or_corrupt_skip_list_is_a_note(run_copy, tmp_path, case):
    skipped = RunDir(run_copy).skipped_file
    content, expected = SKIP_CASES[case]
    if content is None:
        skipped.unlink()
    elif isinstance(content, bytes):
        skipped.write_bytes(content)
    else:
        pq.write_table(content, skipped)
    out = tmp_path / "report.html"
    result = report(run_copy, "--out", out)
    assert result.exit_code == 0, result.output
    (note,) = notes_of(result)
    assert str(skipped) in note and expected in note and "manifest.json alone" in note, note
    page = out.read_text()
    assert expected in page.split('id="notes"', 1)[1] and SECRET not in page + result.output


def test_the_api_issues_each_note_as_a_warning(run_copy, tmp_path):
    RunDir(run_copy).split_file.unlink()
    with pytest.warns(ReportNote, match="split.parquet: no such file"):
        mlbench.write_report(run_copy, tmp_path / "r.html")
    seen = []
    mlbench.report.write_report(run_copy, tmp_path / "r.html", on_note=seen.append)
    assert len(seen) == 1 and "split.parquet" in seen[0]


# -- what it cannot do without: one line naming the file ----------------------------------------------
HISTORIES = {
    "a list": "[]",
    "history not a list": json.dumps({"history": SECRET}),
    "epoch not a number": json.dumps({"best_epoch": 0, "history": [{"epoch": SECRET, "train_loss": 1.0,
                                                                     "val_loss": 1.0}]}),
    "loss missing": json.dumps({"best_epoch": 0, "history": [{"epoch": 0, "train_loss": 1.0}]}),
    "best epoch text": json.dumps({"best_epoch": SECRET, "history": []}),
    "not JSON": SECRET + "{",
}


@pytest.mark.parametrize("case", list(HISTORIES))
def test_a_history_of_the_wrong_shape_is_one_line_naming_the_file(run_copy, tmp_path, case):
    history = RunDir(run_copy).history_file("resnet10t")
    history.write_text(HISTORIES[case])
    out = tmp_path / "report.html"
    last = assert_one_error(report(run_copy, "--out", out), str(history), "expected")
    assert SECRET not in last and not out.exists()


@pytest.mark.parametrize("field, value", [("skipped", []), ("stages", {"train": 5}), ("backbones", [SECRET, 3])])
def test_a_manifest_field_of_the_wrong_shape_is_one_line(run_copy, tmp_path, field, value):
    manifest = RunDir(run_copy).manifest()
    write_json(RunDir(run_copy).manifest_file, {**manifest, field: value})
    last = assert_one_error(report(run_copy, "--out", tmp_path / "r.html"), "manifest.json", f"field '{field}'")
    assert SECRET not in last


def write_grid_spec(grid_dir: Path) -> None:
    spec = GridSpec(benchmark=BENCH, out=grid_dir, remedies=["uniform", "class-balanced"], backbones=["resnet10t"],
                    demo=True, n_boot=10)
    write_json(grid_dir / GRID_FILE, spec.identity())


def test_an_unfinished_grid_is_named_as_a_grid(run_copy, tmp_path):
    grid_dir = tmp_path / "grid"
    write_grid_spec(grid_dir)
    (grid_dir / "cells" / "uniform").mkdir(parents=True)
    shutil.copytree(run_copy, grid_dir / "cells" / "uniform" / "seed-0")
    last = assert_one_error(report(grid_dir, "--out", tmp_path / "g.html"), "comparison.parquet", "unfinished",
                            f"mlbench grid status {grid_dir}")
    assert "expected a run directory" not in last
    neither = tmp_path / "neither"
    neither.mkdir()
    assert_one_error(report(neither, "--out", tmp_path / "n.html"), "manifest.json", "run directory", "grid directory",
                     GRID_FILE)


# -- --out -----------------------------------------------------------------------------------------
def test_out_never_replaces_a_run_directorys_own_files(run_copy, tmp_path):
    rundir = RunDir(run_copy)
    manifest = rundir.manifest_file.read_bytes()
    for target in (rundir.manifest_file, rundir.history_file("resnet10t"), rundir.leaderboard_file):
        before = target.read_bytes()
        for force in ((), ("--force",)):
            assert_one_error(report(run_copy, "--out", target, *force), f"--out {target}", "the run directory",
                             "must not replace")
            assert target.read_bytes() == before
    # Nor inside its own folders, there or not.
    for target in (rundir.default_demo_dir / "page.html", rundir.preprocess_dir / "page.html",
                   rundir.default_cache / "x.html"):
        assert_one_error(report(run_copy, "--out", target), "--out", "the run directory")
        assert not target.exists()
    # Another run directory's files are just as protected.
    other = tmp_path / "other"
    shutil.copytree(run_copy, other)
    assert_one_error(report(run_copy, "--out", RunDir(other).split_file, "--force"), "the run directory", str(other))
    # A link that leads onto the manifest is refused as well.
    link = tmp_path / "link.html"
    link.symlink_to(rundir.manifest_file)
    assert_one_error(report(run_copy, "--out", link, "--force"), "the run directory")
    assert rundir.manifest_file.read_bytes() == manifest and link.is_symlink()
    # A page beside its files is fine, and replacing our own page needs no --force.
    page = run_copy / "report.html"
    for _ in range(2):
        result = report(run_copy, "--out", page)
        assert result.exit_code == 0 and "Error" not in result.output, result.output
    assert is_report_file(page)


def test_out_never_replaces_a_grid_directorys_own_files(tmp_path):
    grid_dir = tmp_path / "grid"
    write_grid_spec(grid_dir)
    spec = (grid_dir / GRID_FILE).read_bytes()
    for target in (grid_dir / GRID_FILE, grid_dir / "comparison.parquet", grid_dir / "shared" / "cache" / "r.html"):
        assert_one_error(report(grid_dir, "--out", target, "--force"), f"--out {target}", "the grid directory")
    assert (grid_dir / GRID_FILE).read_bytes() == spec
    assert sorted(p.name for p in grid_dir.iterdir()) == [GRID_FILE]


def test_out_replaces_someone_elses_file_only_with_force(run_copy, tmp_path):
    mine = tmp_path / "notes.html"
    mine.write_text("<html>my notes</html>")
    assert_one_error(report(run_copy, "--out", mine), f"--out {mine}", "not an mlbench report", "--force")
    assert mine.read_text() == "<html>my notes</html>"
    with pytest.raises(ReportError, match="not an mlbench report"):
        mlbench.write_report(run_copy, mine)
    result = report(run_copy, "--out", mine, "--force")
    assert result.exit_code == 0, result.output
    assert is_report_file(mine)
    # A file that only mentions the marker deep inside is still not ours.
    quoting = tmp_path / "quoting.html"
    quoting.write_text("x" * 4096 + MARKER)
    assert not is_report_file(quoting)
    with pytest.raises(ReportError, match="is a folder"):
        mlbench.write_report(run_copy, tmp_path)
