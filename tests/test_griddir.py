"""GridDir owns the grid directory's layout; RunDir.finished() is the one meaning of "finished";
job records live with the executors, which do not import the grid (issue 20)."""

from __future__ import annotations

import json
import subprocess
import sys

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from click.testing import CliRunner

from mlbench.cli import main
from mlbench.results.griddir import GridDir, GridError, enclosing_grid
from mlbench.grid.status import grid_status
from mlbench.foundations.io import write_bytes, write_json
from mlbench.execution.jobs import jobs_dir, read_failure, write_failure
from mlbench.contracts.registry import get_registry
from mlbench.grid.remedies import KINDS, parse_remedy
from mlbench.report.collect import read_grid
from mlbench.results.rundir import RunDir
from cli_checks import assert_one_error

SPEC = {"benchmark": "padchest-specific", "remedies": ["uniform", "ml-ros"], "backbones": ["resnet10t"],
        "seeds": [0], "demo": True, "run_options": {}, "n_boot": 10}


def make_cell(run_dir, *, leaderboard: bool, finished: bool) -> RunDir:
    rundir = RunDir(run_dir)
    write_json(rundir.manifest_file, {"run_id": "r", "stages": {"split": {}}, "backbones": ["resnet10t"],
                                      **({"finished_at": "2024-01-01T00:00:00+00:00"} if finished else {})})
    if leaderboard:
        write_bytes(rundir.leaderboard_file, b"")  # finished() asks only whether it is there
    return rundir


def test_paths_of_a_grid_directory(tmp_path):
    grid = GridDir(tmp_path / "g")
    assert grid.spec_file == tmp_path / "g" / "grid.json"
    assert grid.cell_dir("ml-ros+val-f1", 2) == tmp_path / "g" / "cells" / "ml-ros+val-f1" / "seed-2"
    assert grid.cell_dir("../x y", 0).parent.name == ".._x_y"  # one folder, whatever the remedy's name
    assert grid.demo_dir == tmp_path / "g" / "shared" / "demo-data"
    assert grid.cache_dir == tmp_path / "g" / "shared" / "cache"
    assert grid.comparison_file == tmp_path / "g" / "comparison.parquet"
    assert jobs_dir(grid.path) == tmp_path / "g" / "jobs"
    # A cell is a cell only once the grid's spec is there: then its stored paths may lead up to the grid.
    cell = grid.cell_dir("uniform", 0)
    assert enclosing_grid(cell) is None and not grid.exists() and RunDir(cell).root() == cell
    grid.write_spec(SPEC)
    assert enclosing_grid(cell) == grid.path and grid.exists() and RunDir(cell).root() == grid.path
    assert grid.spec() == SPEC


def test_the_comparison_is_written_through_the_grid_directory(tmp_path):
    grid = GridDir(tmp_path / "g")
    assert not grid.looks_like_grid()
    grid.write_comparison(pa.table({"remedy": ["ml-ros"], "difference": [0.25]}))
    assert grid.looks_like_grid() and pq.read_table(grid.comparison_file).to_pydict() == {
        "remedy": ["ml-ros"], "difference": [0.25]}


@pytest.mark.parametrize("text, field", [("not json", "not valid JSON"), ("[1, 2]", "JSON object"),
                                         (json.dumps({**SPEC, "seeds": [5, 5]}), "'seeds'"),
                                         (json.dumps({k: v for k, v in SPEC.items() if k != "n_boot"}), "'n_boot'")])
def test_a_corrupt_spec_is_one_line_naming_the_file_and_field(tmp_path, text, field):
    grid = GridDir(tmp_path / "g")
    grid.path.mkdir()
    grid.spec_file.write_text(text)
    with pytest.raises(GridError, match=field) as caught:
        grid.spec()
    assert str(grid.spec_file) in str(caught.value) and "5, 5" not in str(caught.value)
    assert_one_error(CliRunner().invoke(main, ["grid", "status", str(grid.path)]), str(grid.spec_file), field)


def test_cells_on_disk_lists_only_seed_folders(tmp_path):
    grid = GridDir(tmp_path / "g")
    for remedy, seed in (("uniform", 1), ("uniform", 0), ("ml-ros", 0)):
        grid.cell_dir(remedy, seed).mkdir(parents=True)
    (grid.cells_dir / "ml-ros" / "notes").mkdir()
    write_bytes(grid.cells_dir / "ml-ros" / "seed-9", b"a file, not a cell")
    assert list(grid.cells_on_disk()) == [("ml-ros", "0", grid.cell_dir("ml-ros", 0)),
                                          ("uniform", "0", grid.cell_dir("uniform", 0)),
                                          ("uniform", "1", grid.cell_dir("uniform", 1))]


def test_finished_means_a_leaderboard_and_finished_at(tmp_path):
    assert not RunDir(tmp_path / "none").finished()
    assert not make_cell(tmp_path / "board-only", leaderboard=True, finished=False).finished()
    assert not make_cell(tmp_path / "stamp-only", leaderboard=False, finished=True).finished()
    assert make_cell(tmp_path / "both", leaderboard=True, finished=True).finished()


def test_status_and_report_share_one_meaning_of_finished(tmp_path):
    """A cell with a leaderboard but no finished_at (a killed re-run) is not done for the status nor the report."""
    grid = GridDir(tmp_path / "g")
    grid.write_spec(SPEC)
    make_cell(grid.cell_dir("uniform", 0), leaderboard=True, finished=True)
    make_cell(grid.cell_dir("ml-ros", 0), leaderboard=True, finished=False)
    states = {c.remedy: c.state for c in grid_status(grid.path)}
    assert states == {"uniform": "done", "ml-ros": "interrupted"}
    grid.write_comparison(pa.table({"remedy": ["ml-ros"]}))
    assert {c["remedy"]: c["finished"] for c in read_grid(grid.path).cells} == {"uniform": True, "ml-ros": False}


def test_a_failure_record_is_read_back_and_makes_the_cell_failed(tmp_path):
    grid = GridDir(tmp_path / "g")
    grid.write_spec(SPEC)
    cell = make_cell(grid.cell_dir("ml-ros", 0), leaderboard=False, finished=False)
    assert read_failure(cell.path) == ""
    write_failure(cell.path, {"error": "train:resnet10t job 7 failed: boom", "log_tail": "last line"})
    assert read_failure(cell.path) == "train:resnet10t job 7 failed: boom\nlast line"
    failed = {c.remedy: c for c in grid_status(grid.path)}["ml-ros"]
    assert failed.state == "failed" and "job 7 failed" in failed.detail


def test_executors_and_the_run_command_do_not_import_the_grid():
    code = ("import sys, mlbench.execution.executors, mlbench.cli.run; "
            "print(sorted(m for m in sys.modules if m in ('mlbench.grid.cells', 'mlbench.grid.status', 'mlbench.grid.remedies')))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


def test_remedy_kinds_come_from_one_table():
    registry = get_registry()
    remedy = parse_remedy("val-f1+class-balanced+ml-ros", registry)
    assert remedy.options() == {"sampler": "ml-ros", "loss": "class-balanced", "schedule": None, "adjuster": None,
                                "threshold_rule": "val-f1"}
    assert list(remedy.options()) == [kind.field for kind in KINDS]
    with pytest.raises(GridError, match="2 samplers \\(uniform, ml-ros\\) in one remedy; a remedy combines at most "
                                        "one sampler, one loss, one schedule, one post-hoc adjuster and one threshold "
                                        "rule"):
        parse_remedy("uniform+ml-ros", registry)
    with pytest.raises(GridError, match="'nosuch' is neither a sampler .*, a loss .*, a schedule .*, a post-hoc "
                                        "adjuster .* nor a threshold rule "
                                        "\\(fixed, val-f1\\)"):
        parse_remedy("nosuch", registry)
